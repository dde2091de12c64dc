package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
	"github.com/oauth2mail/oauth2mail/internal/flows"
	"github.com/oauth2mail/oauth2mail/internal/helper"
	"github.com/oauth2mail/oauth2mail/internal/testutil"
)

// fixture is an agent (not running: tests call due, tick and refresh, or
// start Run themselves) with a fake clock, a fake IdP and file-store
// accounts in a temporary directory.
type fixture struct {
	t        *testing.T
	idp      *fakeidp.Server
	ag       *Agent
	log      *testutil.SyncBuffer
	confPath string
	stateDir string
	t0       time.Time

	mu      sync.Mutex
	now     time.Time
	life    time.Duration // lifetime of the access tokens the IdP issues, on the fake clock
	notices []string      // account: reason, per Broker.Notice call
}

const agentConf = `notify_every = "1h"
keepalive = "2d"
idle_after = "3h"
`

// newFixture writes a config with agentToml as its [agent] table and the
// named accounts (none logged in), and returns the agent before Setup.
func newFixture(t *testing.T, agentToml string, accounts ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, log: &testutil.SyncBuffer{}, life: time.Hour}
	f.idp = fakeidp.New(fakeidp.Options{StrictRotation: true})
	t.Cleanup(f.idp.Close)
	dir := t.TempDir()
	f.confPath = filepath.Join(dir, "config.toml")
	f.stateDir = filepath.Join(dir, "state")
	f.writeConfig(agentToml, accounts...)
	// The fake clock starts at the real time (the IdP's token lifetimes
	// are counted on the real clock) and only moves when a test moves it.
	f.t0 = time.Now().Truncate(time.Second).Add(time.Second)
	f.now = f.t0
	b := helper.New(f.stateDir, f.log, true)
	b.Now = f.clock
	b.Notice = func(a *config.Account, st *cache.State) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.notices = append(f.notices, a.Name+": "+st.LoginNeededReason)
	}
	b.NoticeEvery = time.Hour // as notify_every in agentConf
	f.ag = &Agent{ConfigPath: f.confPath, StateDir: f.stateDir, Log: f.log, Verbose: true, Broker: b}
	f.setLife(time.Hour)
	return f
}

func (f *fixture) writeConfig(agentToml string, accounts ...string) {
	f.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\n%s\n", agentToml)
	for _, name := range accounts {
		if strings.HasPrefix(name, "app") { // app-only, on the fake's https side
			base, _ := f.idp.StartTLS()
			fmt.Fprintf(&b, "[accounts.%s]\nprovider = \"microsoft\"\nflow = \"client-credentials\"\ntenant = \"contoso.com\"\nemail = \"%s@contoso.com\"\nclient_id = %q\nclient_secret = %q\nstore = \"file\"\nauthority_host = %q\n\n", name, name, testAppID, testAppSecret, base)
			continue
		}
		fmt.Fprintf(&b, "[accounts.%s]\nprovider = \"microsoft\"\nemail = \"%s@contoso.com\"\nclient_id = \"c\"\nstore = \"file\"\nauthority_host = %q\n\n", name, name, f.idp.URL)
	}
	if err := os.WriteFile(f.confPath, []byte(b.String()), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) setup() {
	f.t.Helper()
	if err := f.ag.Setup(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// set moves the fake clock to t and tells the IdP to issue tokens that
// expire f.life after t.
func (f *fixture) set(t time.Time) {
	// Times computed from an expiry the IdP client took from time.Now
	// carry a monotonic reading; the clock gives wall times only, as
	// the state on disk holds.
	t = t.Round(0)
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
	f.idp.SetAccessTokenLifetime(max((f.life + time.Until(t)).Round(time.Second), time.Second))
}

func (f *fixture) setLife(d time.Duration) {
	f.life = d
	f.set(f.clock())
}

func (f *fixture) noticeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.notices)
}

// store is what a separate oauth2mail process would open.
func (f *fixture) store() *cache.Store { return cache.New(f.stateDir, cache.KindFile) }

// login signs name in at the IdP (authorization code with PKCE, without a
// browser) and stores the tokens as issued now on the fake clock, with an
// access token that expires after expiresIn.
func (f *fixture) login(name string, expiresIn time.Duration) *cache.State {
	f.t.Helper()
	a := &config.Account{Name: name, Provider: config.ProviderMicrosoft, ClientID: "c", AuthorityHost: f.idp.URL, Tenant: config.DefaultTenant}
	conf := flows.OAuthConfig(a)
	conf.RedirectURL = "http://127.0.0.1:9/callback"
	verifier := oauth2.GenerateVerifier()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		f.t.Fatalf("authorize answered %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		f.t.Fatal(err)
	}
	now := f.clock()
	st := &cache.State{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: now.Add(expiresIn), RefreshToken: tok.RefreshToken,
		TokenURL: conf.Endpoint.TokenURL, ClientID: "c", LoginAt: now, RefreshTokenFrom: now,
	}
	if err := f.store().Save(name, st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) state(name string) *cache.State {
	f.t.Helper()
	st, err := f.store().Load(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// due is what the agent schedules for name at now.
func (f *fixture) due(name string, now time.Time) time.Time {
	f.t.Helper()
	conf := f.ag.Config()
	due, act := f.ag.due(conf.Accounts[name], conf.Agent, now)
	if due.IsZero() != (act == nil) {
		f.t.Fatalf("due(%s) = %v with action %v", name, due, act != nil)
	}
	return due
}

// tickAt runs one scheduler pass at t and checks that what it returns is
// in the future: an agent that acted never comes back at once.
func (f *fixture) tickAt(t time.Time) time.Time {
	f.t.Helper()
	f.set(t)
	next := f.ag.tick(context.Background())
	if !next.After(t) {
		f.t.Fatalf("tick at %s returned %s, not after now (the agent would spin)", f.rel(t), f.rel(next))
	}
	return next
}

// rel shows t relative to the start of the test.
func (f *fixture) rel(t time.Time) string { return "T0+" + t.Sub(f.t0).String() }

func (f *fixture) refreshes() (attempts, ok int) {
	s := f.idp.Stats()
	return s.Refreshes, s.RefreshOK
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// near reports whether a and b are within tol.
func near(a, b time.Time, tol time.Duration) bool {
	d := a.Sub(b)
	return -tol <= d && d <= tol
}

func TestDueInUseRefreshesLeadBeforeExpiry(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	first := f.login("work", time.Hour)
	f.setup()
	if lead := helper.Lead(first); lead != 8*time.Minute {
		t.Fatalf("Lead of a 60-minute token = %s, want 8m (skew 5m + 3m)", lead)
	}
	want := first.Expiry.Add(-8 * time.Minute)
	if due := f.due("work", f.t0); !due.Equal(want) {
		t.Fatalf("due = %s, want %s (8 minutes before expiry)", f.rel(due), f.rel(want))
	}
	// Not yet: nothing happens, and the agent comes back at the due time.
	if next := f.tickAt(want.Add(-time.Second)); !next.Equal(want) {
		t.Errorf("tick before the due time returned %s, want %s", f.rel(next), f.rel(want))
	}
	if n, _ := f.refreshes(); n != 0 {
		t.Fatalf("%d refreshes before the due time", n)
	}

	at := want.Add(time.Second)
	next := f.tickAt(at)
	if n, ok := f.refreshes(); n != 1 || ok != 1 {
		t.Fatalf("refreshes = %d (%d ok) at the due time, want 1", n, ok)
	}
	st := f.state("work")
	if !st.LastRefresh.Equal(at) || st.RefreshToken == first.RefreshToken || st.AccessToken == first.AccessToken {
		t.Errorf("after the refresh: last refresh %s, tokens rotated %v/%v", f.rel(st.LastRefresh), st.RefreshToken != first.RefreshToken, st.AccessToken != first.AccessToken)
	}
	if !f.idp.AcceptsRefreshToken(st.RefreshToken) {
		t.Error("the stored refresh token is not the newest one")
	}
	if !near(st.Expiry, at.Add(time.Hour), 5*time.Second) {
		t.Fatalf("new expiry %s, want about %s", f.rel(st.Expiry), f.rel(at.Add(time.Hour)))
	}
	if want := st.Expiry.Add(-helper.Lead(st)); !next.Equal(want) {
		t.Errorf("next = %s, want %s (Lead before the new expiry)", f.rel(next), f.rel(want))
	}
}

// The agent acts when its timer fires at the due time, which for an
// account in use is exactly Lead before expiry.
func TestRefreshAtExactDueTime(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	first := f.login("work", time.Hour)
	f.setup()
	due := f.due("work", f.t0)
	f.set(due)
	next := f.ag.tick(context.Background())
	n, _ := f.refreshes()
	if n == 0 || !next.After(due) {
		t.Fatalf("at exactly its due time (expiry %s - Lead %s) the account is not refreshed (KeepFresh keeps a token with exactly Lead left: helper.go `st.Expiry.Sub(now) >= Lead(st)`), and tick returns the same instant again (next %s); refreshes %d",
			f.rel(first.Expiry), helper.Lead(first), f.rel(next), n)
	}
}

func TestIdleAccountOnlyKeptAlive(t *testing.T) {
	f := newFixture(t, `notify_every = "1h"
keepalive = "2d"
idle_after = "30m"`, "work")
	first := f.login("work", time.Hour)
	f.setup()
	// Just after the start every account counts as in use.
	if due, want := f.due("work", f.t0.Add(29*time.Minute)), first.Expiry.Add(-8*time.Minute); !due.Equal(want) {
		t.Errorf("due while in use = %s, want %s", f.rel(due), f.rel(want))
	}
	keepAlive := f.t0.Add(48 * time.Hour)
	if due := f.due("work", f.t0.Add(31*time.Minute)); !due.Equal(keepAlive) {
		t.Errorf("due once idle = %s, want the keepalive %s", f.rel(due), f.rel(keepAlive))
	}
	// The access token expires; an idle account is left alone until the
	// refresh token needs exercising.
	// (A pass looks again at least once a day.)
	for _, at := range []time.Duration{31 * time.Minute, 2 * time.Hour, 47 * time.Hour} {
		if next, want := f.tickAt(f.t0.Add(at)), minTime(keepAlive, f.t0.Add(at+24*time.Hour)); !next.Equal(want) {
			t.Errorf("tick at T0+%s returned %s, want %s", at, f.rel(next), f.rel(want))
		}
	}
	if n, _ := f.refreshes(); n != 0 {
		t.Fatalf("%d refreshes of an idle account before its keepalive", n)
	}
	next := f.tickAt(keepAlive)
	if n, ok := f.refreshes(); n != 1 || ok != 1 {
		t.Fatalf("refreshes = %d (%d ok) at the keepalive, want 1", n, ok)
	}
	if st := f.state("work"); !st.LastRefresh.Equal(keepAlive) || !next.Equal(keepAlive.Add(24*time.Hour)) {
		t.Errorf("after the keepalive refresh: last refresh %s, next %s; want %s and %s", f.rel(st.LastRefresh), f.rel(next), f.rel(keepAlive), f.rel(keepAlive.Add(24*time.Hour)))
	}
	if due := f.due("work", keepAlive); !due.Equal(keepAlive.Add(48 * time.Hour)) {
		t.Errorf("due after the keepalive refresh = %s, want %s", f.rel(due), f.rel(keepAlive.Add(48*time.Hour)))
	}

	// A request brings the account back into use, and wakes the scheduler.
	f.ag.Handle = func(ctx context.Context, req *Request, b *helper.Broker) (*Response, string) {
		return &Response{Stdout: "ok\n"}, "work"
	}
	use := keepAlive.Add(time.Minute)
	f.set(use)
	req := &Request{V: Version, Op: "status", Config: f.confPath, StateDir: f.stateDir}
	f.ag.answer(context.Background(), req)
	if len(f.ag.wake) != 0 || !f.due("work", use).Equal(keepAlive.Add(48*time.Hour)) {
		t.Error("a status request counted as use")
	}
	req.Op = "token"
	if resp := f.ag.answer(context.Background(), req); resp.Stdout != "ok\n" || resp.Fallback != "" {
		t.Fatalf("answer = %+v", resp)
	}
	if len(f.ag.wake) != 1 {
		t.Error("the first request after a long idle did not wake the scheduler")
	}
	st := f.state("work")
	if due, want := f.due("work", use), st.Expiry.Add(-helper.Lead(st)); !due.Equal(want) {
		t.Errorf("due after a request = %s, want %s (Lead before expiry)", f.rel(due), f.rel(want))
	}
}

func TestDueTwoMinuteToken(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	f.setLife(2 * time.Minute)
	first := f.login("work", 2*time.Minute)
	f.setup()
	if lead := helper.Lead(first); lead != time.Minute {
		t.Fatalf("Lead of a 2-minute token = %s, want 1m (half its life)", lead)
	}
	if due := f.due("work", f.t0); !due.Equal(f.t0.Add(time.Minute)) {
		t.Fatalf("due = %s, want T0+1m0s (60 s before expiry)", f.rel(due))
	}
	var at time.Time
	next := f.t0.Add(time.Minute)
	for i := range 5 {
		at = next.Add(time.Second)
		next = f.tickAt(at)
		if n, ok := f.refreshes(); n != i+1 || ok != i+1 {
			t.Fatalf("after %d due times: %d refreshes (%d ok)", i+1, n, ok)
		}
		st := f.state("work")
		if lead := helper.Lead(st); !next.Equal(st.Expiry.Add(-lead)) || lead < 59*time.Second || lead > 61*time.Second || !near(next, at.Add(time.Minute), 3*time.Second) {
			t.Fatalf("at %s: next = %s with expiry %s (Lead %s), want 60 s before expiry", f.rel(at), f.rel(next), f.rel(st.Expiry), helper.Lead(st))
		}
		if !st.LastRefresh.Equal(at) {
			t.Fatalf("last refresh %s, want %s", f.rel(st.LastRefresh), f.rel(at))
		}
	}
}

func TestBackoffAfterTemporaryFailure(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	first := f.login("work", time.Hour)
	f.setup()
	now := f.due("work", f.t0).Add(time.Second)
	f.idp.FailNext(1, http.StatusServiceUnavailable, "text/plain", "busy")
	next := f.tickAt(now)
	if n, ok := f.refreshes(); n != 1 || ok != 0 {
		t.Fatalf("refreshes = %d (%d ok), want one failed attempt", n, ok)
	}
	if r := f.ag.retry["work"]; r.n != 1 || !r.at.Equal(next) {
		t.Errorf("retry = %+v, want attempt 1 at %s", r, f.rel(next))
	}
	if d := next.Sub(now); d < 15*time.Second || d > 30*time.Second {
		t.Errorf("first retry after %s, want 15s-30s", d)
	}
	if st := f.state("work"); !st.LoginNeeded.IsZero() || st.RefreshToken != first.RefreshToken {
		t.Error("a temporary failure changed the stored state")
	}
	if !strings.Contains(f.log.String(), "refresh failed (attempt 1)") {
		t.Errorf("log = %q", f.log.String())
	}
	// Nothing happens before the retry time.
	if again := f.tickAt(next.Add(-time.Second)); !again.Equal(next) {
		t.Errorf("tick before the retry returned %s, want %s", f.rel(again), f.rel(next))
	}
	if n, _ := f.refreshes(); n != 1 {
		t.Fatalf("%d attempts before the retry time", n)
	}

	now = next
	f.idp.FailNext(1, http.StatusServiceUnavailable, "text/plain", "busy")
	next = f.tickAt(now)
	if r := f.ag.retry["work"]; r.n != 2 {
		t.Errorf("retry = %+v after the second failure", r)
	}
	if d := next.Sub(now); d < 30*time.Second || d > 60*time.Second {
		t.Errorf("second retry after %s, want 30s-60s", d)
	}

	now = next
	next = f.tickAt(now)
	if n, ok := f.refreshes(); n != 3 || ok != 1 {
		t.Fatalf("refreshes = %d (%d ok), want the third to succeed", n, ok)
	}
	if _, ok := f.ag.retry["work"]; ok {
		t.Error("a success did not reset the backoff")
	}
	if !strings.Contains(f.log.String(), "refreshed after 2 failed attempts") {
		t.Errorf("log = %q", f.log.String())
	}
	if !near(next, now.Add(52*time.Minute), 5*time.Second) {
		t.Errorf("next after the success = %s, want about %s", f.rel(next), f.rel(now.Add(52*time.Minute)))
	}
}

func TestBackoffRange(t *testing.T) {
	for n := 1; n <= 64; n++ {
		d := min(30*time.Second<<min(n-1, 6), 30*time.Minute)
		seen := map[time.Duration]bool{}
		for range 50 {
			b := backoff(n)
			if b < d/2 || b > d {
				t.Fatalf("backoff(%d) = %s, want %s-%s", n, b, d/2, d)
			}
			seen[b] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d) always %v: no jitter", n, seen)
		}
	}
	if b := backoff(1); b < 15*time.Second {
		t.Errorf("backoff(1) = %s", b)
	}
}

// A provider that keeps failing is asked a bounded number of times.
func TestPersistentFailureBounded(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	f.login("work", time.Hour)
	f.setup()
	f.idp.FailNext(1000, http.StatusServiceUnavailable, "text/plain", "busy")
	now := f.due("work", f.t0).Add(time.Second)
	end := now.Add(3 * time.Hour)
	ticks := 0
	for now.Before(end) {
		now = later(f.tickAt(now), now.Add(time.Second))
		ticks++
	}
	// 15-30 s, 30-60 s, 1-2 m, 2-4 m, 4-8 m, 8-16 m, then 15-30 m.
	n, _ := f.refreshes()
	if n < 8 || n > 20 {
		t.Errorf("%d attempts in 3 hours of failures, want about 10", n)
	}
	if ticks > n+1 {
		t.Errorf("%d scheduler passes for %d attempts", ticks, n)
	}
	if r := f.ag.retry["work"]; r.n != n {
		t.Errorf("failure count %d after %d attempts", r.n, n)
	}
}

func TestLostLoginNotifiedOncePerInterval(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	first := f.login("work", time.Hour)
	f.setup()
	// A temporary failure first, then the refresh token is refused.
	f.idp.FailNext(1, http.StatusServiceUnavailable, "text/plain", "busy")
	lost := f.tickAt(f.due("work", f.t0).Add(time.Second))
	if f.ag.retry["work"].n != 1 {
		t.Fatal("the temporary failure was not counted")
	}
	f.idp.Revoke(70043)
	next := f.tickAt(lost)
	st := f.state("work")
	if !st.LoginNeeded.Equal(lost) || !strings.Contains(st.LoginNeededReason, "AADSTS70043") {
		t.Fatalf("after a revoked refresh: login needed %s, reason %q", f.rel(st.LoginNeeded), st.LoginNeededReason)
	}
	if st.RefreshToken != first.RefreshToken || st.AccessToken != first.AccessToken {
		t.Error("the lost login's tokens were not kept")
	}
	if f.noticeCount() != 1 || !strings.HasPrefix(f.notices[0], "work: ") || !strings.Contains(f.notices[0], "AADSTS70043") {
		t.Fatalf("notices = %q, want one for work", f.notices)
	}
	if _, ok := f.ag.retry["work"]; ok {
		t.Error("a lost login keeps the backoff of temporary failures")
	}
	if !strings.Contains(f.log.String(), "the login is lost") {
		t.Errorf("log = %q", f.log.String())
	}
	if !next.Equal(lost.Add(time.Hour)) {
		t.Errorf("next = %s, want %s (notified + notify_every)", f.rel(next), f.rel(lost.Add(time.Hour)))
	}
	if f.tickAt(lost.Add(30 * time.Minute)); f.noticeCount() != 1 {
		t.Errorf("%d notices half an interval later", f.noticeCount())
	}
	// Run the scheduler for ten hours: one notice an hour, no more
	// attempts at the IdP.
	now := lost.Add(30 * time.Minute)
	end := lost.Add(10*time.Hour + 30*time.Minute)
	ticks := 0
	for now.Before(end) {
		now = later(f.tickAt(now), now.Add(time.Second))
		ticks++
	}
	if got := f.noticeCount(); got != 11 {
		t.Errorf("%d notices in 10.5 hours with notify_every 1h, want 11", got)
	}
	if ticks != 11 {
		t.Errorf("%d scheduler passes in 10 hours, want 11", ticks)
	}
	if n, _ := f.refreshes(); n != 2 {
		t.Errorf("%d refresh attempts, want only the failed one and the one that found the login lost", n)
	}
	// A second pass at the same instant does not notify again.
	f.tickAt(now)
	if got := f.noticeCount(); got != 12 {
		t.Errorf("%d notices after the pass at the 11th hour, want 12", got)
	}
	f.set(now)
	f.ag.tick(context.Background())
	if got := f.noticeCount(); got != 12 {
		t.Errorf("a repeated pass at one instant notified %d more times", got-12)
	}
	if st := f.state("work"); !st.LoginNeeded.Equal(lost) {
		t.Errorf("login needed since %s, want %s", f.rel(st.LoginNeeded), f.rel(lost))
	}
}

// notify_every is read from the config at every pass (SIGHUP reloads it),
// but Broker.Remind applies the Broker's NoticeEvery, set once at start.
func TestNotifyEveryChangedByReload(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	f.login("work", time.Hour)
	f.setup()
	f.ag.Broker.NoticeEvery = 24 * time.Hour // the agent started with the default
	f.idp.Revoke(70043)
	lost := f.due("work", f.t0).Add(time.Second)
	f.tickAt(lost)
	f.set(lost.Add(time.Hour))
	next := f.ag.tick(context.Background())
	f.set(lost.Add(time.Hour + time.Second))
	next2 := f.ag.tick(context.Background())
	if !next.After(lost.Add(time.Hour)) || !next2.After(lost.Add(time.Hour+time.Second)) {
		t.Fatalf("with notify_every = 1h in the (reloaded) config and Broker.NoticeEvery = 24h, Remind declines and the account stays due at %s: tick returns %s, then %s (in the past), so the scheduler wakes every second until 24h have passed",
			f.rel(lost.Add(time.Hour)), f.rel(next), f.rel(next2))
	}
}

func TestNothingScheduledWithoutLogin(t *testing.T) {
	f := newFixture(t, agentConf, "never")
	f.setup()
	if !strings.Contains(f.log.String(), "never: not logged in yet; run: oauth2mail login never") {
		t.Errorf("Setup log = %q", f.log.String())
	}
	if due := f.due("never", f.t0); !due.IsZero() {
		t.Errorf("due = %s for an account never logged in", f.rel(due))
	}
	for _, at := range []time.Duration{0, time.Hour, 30 * 24 * time.Hour} {
		if next := f.tickAt(f.t0.Add(at)); !next.Equal(f.t0.Add(at + 24*time.Hour)) {
			t.Errorf("tick at T0+%s = %s, want a day later", at, f.rel(next))
		}
	}
	if s := f.idp.Stats(); s.Refreshes+s.AuthCodes+s.DevicePolls != 0 {
		t.Errorf("IdP traffic for an account never logged in: %+v", s)
	}

	// No refresh token, an unreadable state, or a lost login nobody can be
	// told about: nothing to do either.
	st := f.login("never", time.Hour)
	st.RefreshToken = ""
	f.store().Save("never", st)
	if due := f.due("never", f.t0); !due.IsZero() {
		t.Errorf("due = %s without a refresh token", f.rel(due))
	}
	st = f.login("never", time.Hour)
	st.LoginNeeded, st.LoginNeededReason = f.t0, "revoked"
	f.store().Save("never", st)
	notice := f.ag.Broker.Notice
	f.ag.Broker.Notice = nil
	if due := f.due("never", f.t0); !due.IsZero() {
		t.Errorf("due = %s for a lost login without a notifier", f.rel(due))
	}
	f.ag.Broker.Notice = notice
	if err := os.WriteFile(f.store().Path("never"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if due := f.due("never", f.t0); !due.IsZero() {
		t.Errorf("due = %s for an unreadable state", f.rel(due))
	}
}

func TestTickEarliestAcrossAccounts(t *testing.T) {
	f := newFixture(t, agentConf, "a", "b", "c", "d")
	a := f.login("a", time.Hour)
	b := f.login("b", 20*time.Minute)
	f.login("d", 90*time.Minute)
	f.setup()
	dueA, dueB := a.Expiry.Add(-8*time.Minute), b.Expiry.Add(-8*time.Minute)
	if next := f.tickAt(f.t0); !next.Equal(dueB) {
		t.Fatalf("tick = %s, want b's %s", f.rel(next), f.rel(dueB))
	}
	next := f.tickAt(dueB.Add(time.Second))
	if n, _ := f.refreshes(); n != 1 {
		t.Fatalf("%d refreshes, want b's only", n)
	}
	if !next.Equal(dueA) {
		t.Errorf("after b's refresh tick = %s, want a's %s", f.rel(next), f.rel(dueA))
	}
	if st := f.state("b"); !st.LastRefresh.Equal(dueB.Add(time.Second)) {
		t.Errorf("b last refreshed %s", f.rel(st.LastRefresh))
	}
	if st := f.state("a"); !st.LastRefresh.IsZero() {
		t.Error("a was refreshed before its time")
	}
}

// A provider that issues one-second tokens cannot make the agent spin: the
// agent's own refreshes of an account are at least 30 s apart.
func TestNoBusyLoopWithOneSecondTokens(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	f.setLife(time.Second)
	f.login("work", time.Second)
	f.setup()
	now, end := f.t0, f.t0.Add(10*time.Minute)
	ticks := 0
	last := f.t0 // the login
	for now.Before(end) {
		next := f.tickAt(now)
		if st := f.state("work"); !st.Issued().Equal(last) {
			if d := st.Issued().Sub(last); d < minSpacing {
				t.Fatalf("refreshed %s after the previous token", d)
			}
			last = st.Issued()
		}
		now = later(next, now.Add(time.Second)) // as schedule sleeps
		ticks++
	}
	n, ok := f.refreshes()
	if n != ok || n < 19 || n > 21 {
		t.Errorf("%d refreshes (%d ok) in 10 minutes of 1-second tokens, want 20 (one per 30 s)", n, ok)
	}
	if ticks > n+2 {
		t.Errorf("%d scheduler passes for %d refreshes", ticks, n)
	}
}

func TestReloadKeepsLastGoodConfig(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	f.setup()
	if err := os.WriteFile(f.confPath, []byte("[accounts.x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.ag.Reload()
	if _, ok := f.ag.Config().Accounts["work"]; !ok {
		t.Error("a broken config replaced the last good one")
	}
	if !strings.Contains(f.log.String(), "keeping the previous config") {
		t.Errorf("log = %q", f.log.String())
	}
	f.tickAt(f.t0) // still schedules from the good config
	f.writeConfig(agentConf, "work", "home")
	f.ag.Reload()
	if _, ok := f.ag.Config().Accounts["home"]; !ok {
		t.Error("Reload did not read the new config")
	}
}

const (
	testAppID     = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testAppSecret = "app-secret~Value.0123456789"
)

// An app-only account in use is renewed Lead before its expiry like any
// other, though it has no refresh token; idle, it is left alone (there is
// no refresh token to keep alive).
func TestAppOnlyRenewedAhead(t *testing.T) {
	f := newFixture(t, agentConf, "app")
	f.idp.AddApp(fakeidp.App{ClientID: testAppID, Secret: testAppSecret})
	f.ag.Broker.HTTPClient = f.idp.TLSClient()
	f.setup()
	if due := f.due("app", f.t0); !due.IsZero() {
		t.Fatalf("due = %s with no token yet, want nothing (the first request gets one)", f.rel(due))
	}
	conf := f.ag.Config()
	first, err := f.ag.Broker.Token(context.Background(), conf.Accounts["app"])
	if err != nil {
		t.Fatal(err)
	}
	want := first.Expiry.Add(-helper.Lead(first))
	if due := f.due("app", f.t0); !near(due, want, time.Second) {
		t.Fatalf("due = %s, want %s (Lead before expiry)", f.rel(due), f.rel(want))
	}
	f.tickAt(want.Add(time.Second))
	if n := f.idp.Stats().ClientCredentialsOK; n != 2 {
		t.Fatalf("%d app tokens after the due time, want 2 (the first and the renewal)", n)
	}
	if st := f.state("app"); st.AccessToken == first.AccessToken || st.RefreshToken != "" {
		t.Errorf("after the renewal: new access token %v, refresh token %d bytes", st.AccessToken != first.AccessToken, len(st.RefreshToken))
	}
	// Idle for longer than idle_after: nothing is scheduled.
	if due := f.due("app", f.t0.Add(4*time.Hour)); !due.IsZero() {
		t.Errorf("idle app-only account due at %s, want nothing", f.rel(due))
	}
}
