//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

// The crash tests run the real program as separate OS processes: the test
// binary itself, which TestMain (testscript.RunMain) has copied into a
// directory on $PATH under the name "oauth2mail" and which then runs main1.

const crashClientID = "11111111-2222-3333-4444-555555555555"

// crashEnv is one account "work" (Microsoft, store = "file") logged in to
// a fake identity platform from a throwaway home, and the environment that
// reaches it.
type crashEnv struct {
	t     *testing.T
	idp   *fakeidp.Server
	bin   string   // the oauth2mail program
	env   []string // environment of the child processes
	home  string   // the throwaway home, also the children's working directory
	state string   // the state directory

	// Connections open to the IdP and token requests being served: a
	// killed client's request may still be in the IdP's hands when the
	// client has already been reaped.
	conns, busy atomic.Int64
	// When the IdP last finished a request (Unix nanoseconds).
	served atomic.Int64
}

// newCrashEnv starts the IdP, writes the config, points this process's
// environment at the throwaway home (t.Setenv, so the in-process login sees
// it too) and logs in.
func newCrashEnv(t *testing.T, strict bool) *crashEnv {
	t.Helper()
	bin, err := exec.LookPath("oauth2mail")
	if err != nil {
		t.Fatalf("the test binary as oauth2mail: %v", err)
	}
	h := &crashEnv{t: t, bin: bin}
	h.idp = fakeidp.NewHandler(fakeidp.Options{ClientID: crashClientID, DefaultUser: "me@contoso.com", StrictRotation: strict})
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.busy.Add(1)
		defer h.busy.Add(-1)
		h.idp.ServeHTTP(w, r)
		h.served.Store(time.Now().UnixNano())
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			h.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			h.conns.Add(-1)
		}
	}
	// One request per connection: no idle keep-alive connection (of the
	// in-process login, say) hides whether a dead client's request is done.
	ts.Config.SetKeepAlivesEnabled(false)
	ts.Start()
	t.Cleanup(ts.Close)
	h.idp.SetURL(ts.URL)

	home := t.TempDir()
	h.home = home
	conf := filepath.Join(home, ".config", "oauth2mail", "config.toml")
	if err := os.MkdirAll(filepath.Dir(conf), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(`[accounts.work]
provider       = "microsoft"
email          = "me@contoso.com"
client_id      = "`+crashClientID+`"
authority_host = "`+ts.URL+`"
store          = "file"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(home, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	vars := [][2]string{
		{"HOME", home},
		{"XDG_CONFIG_HOME", filepath.Join(home, ".config")},
		{"XDG_STATE_HOME", filepath.Join(home, ".local", "state")},
		{"XDG_RUNTIME_DIR", run},
		{"OAUTH2MAIL_CONFIG", ""},
		{"OAUTH2MAIL_AGENT", "off"}, // the direct path: each process refreshes itself
		{"DBUS_SESSION_BUS_ADDRESS", ""},
		{"DISPLAY", ""},
		{"WAYLAND_DISPLAY", ""},
		{"BROWSER", ""},
	}
	// Only what is named here reaches the children: never the user's
	// keyring, agent or config. A later entry of h.env overrides an earlier
	// one (exec.Cmd keeps the last value of a name).
	h.env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}
	if d := os.Getenv("GOCOVERDIR"); d != "" {
		h.env = append(h.env, "GOCOVERDIR="+d)
	}
	// Under -race the children are race binaries, which sleep a second
	// at exit (atexit_sleep_ms) unless told otherwise; that second would
	// swamp the life of a refresh. A GORACE of the caller's still wins.
	h.env = append(h.env, "GORACE="+strings.TrimSpace("atexit_sleep_ms=0 "+os.Getenv("GORACE")))
	for _, kv := range vars {
		t.Setenv(kv[0], kv[1])
		h.env = append(h.env, kv[0]+"="+kv[1])
	}
	h.state = cache.DefaultDir()
	if !strings.HasPrefix(h.state, home) {
		t.Fatalf("state directory %s is outside the throwaway home", h.state)
	}
	h.login()
	return h
}

// login signs in in-process with the device flow.
func (h *crashEnv) login() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	if code := run(ctx, []string{"login", "work", "--device"}, nil, io.Discard, &stderr); code != 0 {
		h.t.Fatalf("login exited %d: %s", code, stderr.String())
	}
}

func (h *crashEnv) store() *cache.Store { return cache.New(h.state, "file") }

// load reads the state as a new process would.
func (h *crashEnv) load() (*cache.State, error) { return h.store().Load("work") }

// expire makes the stored access token stale by any rule (its expiry is in
// the past), so the next `token` refreshes under the lock.
func (h *crashEnv) expire() {
	h.t.Helper()
	st, err := h.load()
	if err != nil {
		h.t.Fatalf("load: %v", err)
	}
	past := time.Now().Add(-time.Minute)
	if st.Expiry.Before(past) {
		return
	}
	st.Expiry = past
	if err := h.store().Save("work", st); err != nil {
		h.t.Fatalf("save: %v", err)
	}
}

// command is `oauth2mail token work` with stdout and stderr captured.
func (h *crashEnv) command(ctx context.Context, env []string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, h.bin, "token", "work")
	cmd.Env = env
	cmd.Dir = h.home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// quiesce waits until the IdP has no connection open and no request in
// hand, and has stayed so for a few milliseconds.
func (h *crashEnv) quiesce() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var idle time.Time
	for {
		if h.conns.Load() == 0 && h.busy.Load() == 0 {
			if idle.IsZero() {
				idle = time.Now()
			} else if time.Since(idle) >= 3*time.Millisecond {
				return
			}
		} else {
			idle = time.Time{}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the IdP still has %d connections and %d requests 10s after the client died", h.conns.Load(), h.busy.Load())
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// tempFiles lists what the state directory holds besides the state, the key
// and the lock, split into atomicfile temp files and anything else.
func (h *crashEnv) tempFiles() (temps, other []string) {
	h.t.Helper()
	des, err := os.ReadDir(h.state)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, de := range des {
		name := de.Name()
		switch {
		case name == "work.json.enc" || name == "work.key" || name == "work.lock":
		case strings.HasPrefix(name, ".work.") && strings.HasSuffix(name, ".tmp"):
			temps = append(temps, name)
		default:
			other = append(other, name)
		}
	}
	return temps, other
}

// runToken runs one unkilled `oauth2mail token work` on a stale token and
// checks it succeeds promptly, printing the token it stored.
func (h *crashEnv) runToken() time.Duration {
	h.t.Helper()
	h.expire()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, stdout, stderr := h.command(ctx, h.env)
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		h.t.Fatalf("oauth2mail token work after %s: %v: %s", took.Round(time.Millisecond), err, stderr.String())
	}
	// LockTimeout is a minute: a lock left held by a killed process would
	// show as a wait of that order.
	if took > 10*time.Second {
		h.t.Errorf("oauth2mail token work took %s", took)
	}
	st, err := h.load()
	if err != nil {
		h.t.Fatalf("load after an unkilled run: %v", err)
	}
	if got := strings.TrimSpace(stdout.String()); got == "" || got != st.AccessToken {
		h.t.Errorf("an unkilled run printed %d bytes, not the stored access token (%d bytes)", len(got), len(st.AccessToken))
	}
	return took
}

// killedBySIGKILL tells whether the process died of SIGKILL (rather than
// exiting on its own before the signal came).
func killedBySIGKILL(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Where a kill landed, judged from the IdP's counters and the stored
// refresh token once the IdP is quiet.
const (
	landBeforeRequest = iota // killed before the refresh request reached the IdP
	landRoundTrip            // killed while the IdP held the request (it issued nothing)
	landUnsaved              // the IdP issued new tokens; the new state never reached the disk
	landSaved                // killed after the rotated state was renamed into place
	landExited               // the process had already exited 0
	numLandings
)

var landNames = [numLandings]string{
	"before the request", "during the IdP round trip", "after the IdP answered, before the rename",
	"after the rename", "after exit",
}

type killFigures struct {
	iterations, followUps int
	land                  [numLandings]int
	rotated               int              // runs after which the stored refresh token was a new one
	temps                 [numLandings]int // temp files left, by landing
	lost                  [numLandings]int // kills after which the IdP refused the stored refresh token
	deadAnswered          int              // landUnsaved kills sent before the IdP had finished answering
	life                  time.Duration    // median life of an unkilled process, less the IdP's delay
	maxFollowUp           time.Duration
	other                 []string
}

func (f *killFigures) running() int { return f.iterations - f.land[landExited] }

func (f *killFigures) log(t *testing.T, took time.Duration) {
	t.Logf("%d kills in %s; an unkilled refresh lives %s plus the IdP's delay (0-30ms), kills spread over 5/4 of that", f.iterations, took.Round(time.Millisecond), f.life.Round(time.Millisecond))
	t.Logf("kills that landed while the process ran: %d of %d (%.0f%%)", f.running(), f.iterations, 100*float64(f.running())/float64(f.iterations))
	for l := range numLandings {
		t.Logf("  %-42s %4d  (temp files left: %d, login lost: %d)", landNames[l]+":", f.land[l], f.temps[l], f.lost[l])
		if l == landUnsaved {
			t.Logf("    of which the IdP finished answering only after the kill: %d", f.deadAnswered)
		}
	}
	t.Logf("runs that stored a rotated refresh token: %d (%d killed after the rename, %d exited)", f.rotated, f.land[landSaved], f.land[landExited])
	t.Logf("unkilled follow-up runs: %d, slowest %s", f.followUps, f.maxFollowUp.Round(time.Millisecond))
	if len(f.other) > 0 {
		t.Logf("other files in the state directory: %q", f.other)
	}
}

// killLoop runs n iterations: a `token` child on a stale token, SIGKILLed
// after a random delay spread over its whole life, then the state checked.
// With strict rotation a lost login is counted and the account logged in
// again; without, it is an error.
func killLoop(t *testing.T, h *crashEnv, n int, strict bool) *killFigures {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t.Logf("seed %#x", seed)
	const maxDelay = 30 * time.Millisecond
	f := &killFigures{iterations: n}

	// The life of an unkilled process, from Start to Wait, less the IdP's
	// delay: each kill falls in [0, 5/4 of this plus the run's delay).
	var lives []time.Duration
	for range 9 {
		d := time.Duration(rng.Int64N(int64(maxDelay) + 1))
		h.idp.SetTokenDelay(d)
		lives = append(lives, h.runToken()-d)
	}
	slices.Sort(lives)
	f.life = lives[len(lives)/2]

	seenTemps := map[string]bool{}
	for i := range n {
		h.expire()
		before, err := h.load()
		if err != nil {
			t.Fatalf("iteration %d: load before: %v", i, err)
		}
		s0 := h.idp.Stats()
		delay := time.Duration(rng.Int64N(int64(maxDelay) + 1))
		h.idp.SetTokenDelay(delay)
		killAt := time.Duration(rng.Int64N(int64(max(f.life+delay, time.Millisecond) * 5 / 4)))

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd, _, stderr := h.command(ctx, h.env)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(killAt)
		killTime := time.Now().UnixNano()
		// Not reaped yet: a process that already exited is a zombie, the
		// signal is a no-op and Wait reports its exit status.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("iteration %d: kill: %v", i, err)
		}
		werr := cmd.Wait()
		cancel()
		killed := killedBySIGKILL(cmd.ProcessState)
		if !killed && werr != nil {
			t.Fatalf("iteration %d: oauth2mail token work failed on its own: %v: %s", i, werr, stderr.String())
		}
		h.quiesce()
		s1 := h.idp.Stats()

		// (a) The state still decrypts.
		after, err := h.load()
		if err != nil {
			t.Fatalf("iteration %d (kill after %s): the state no longer loads: %v", i, killAt, err)
		}
		rotated := after.RefreshToken != before.RefreshToken
		land := landExited
		switch {
		case !killed:
		case rotated:
			land = landSaved
		case s1.RefreshOK > s0.RefreshOK:
			land = landUnsaved
			if h.served.Load() > killTime {
				f.deadAnswered++
			}
		case s1.Refreshes > s0.Refreshes:
			land = landRoundTrip
		default:
			land = landBeforeRequest
		}
		f.land[land]++
		if rotated {
			f.rotated++
		}
		if !killed && !rotated {
			t.Errorf("iteration %d: the process exited 0 without storing a rotated refresh token", i)
		}

		// (b) The stored refresh token still works.
		if !h.idp.AcceptsRefreshToken(after.RefreshToken) {
			f.lost[land]++
			if !strict {
				t.Fatalf("iteration %d (kill after %s, %s): the IdP refuses the stored refresh token", i, killAt, landNames[land])
			}
			h.login()
		}

		// (c) What the kill left behind.
		temps, other := h.tempFiles()
		for _, name := range temps {
			if seenTemps[name] {
				continue
			}
			seenTemps[name] = true
			f.temps[land]++
			if fi, err := os.Stat(filepath.Join(h.state, name)); err == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("temp file %s has mode %o", name, fi.Mode().Perm())
			}
		}
		for _, name := range other {
			if !slices.Contains(f.other, name) {
				f.other = append(f.other, name)
				if strings.Contains(name, "unreadable") {
					t.Errorf("iteration %d: something moved an unreadable state or key aside: %s", i, name)
				}
			}
		}

		// (d) The dead process's lock is free: an unkilled run refreshes
		// (it must take the lock) and exits 0 promptly.
		if i%5 == 4 {
			f.followUps++
			f.maxFollowUp = max(f.maxFollowUp, h.runToken())
		}
	}
	return f
}

// A mail client may be killed at any moment, also while it refreshes. With
// Microsoft's rotation (the old refresh token stays valid), no kill may
// corrupt the state, lose the sign-in or leave the lock held.
func TestKillDuringRefresh(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	t.Run("microsoft", func(t *testing.T) {
		h := newCrashEnv(t, false)
		// Tokens issued from now on live 1s, stale by any rule; expire()
		// makes sure of it before each run anyway.
		h.idp.SetAccessTokenLifetime(time.Second)
		start := time.Now()
		f := killLoop(t, h, n, false)
		f.log(t, time.Since(start))
		if f.running()*4 < n {
			t.Errorf("only %d of %d kills landed while the process ran (want at least 25%%)", f.running(), n)
		}
	})
	// With strict rotation (the IdP revokes a refresh token once it has
	// rotated it) a kill between the IdP's answer and the rename loses the
	// sign-in. This measures how often; it asserts nothing about it.
	t.Run("strict-rotation", func(t *testing.T) {
		if os.Getenv("OAUTH2MAIL_KILL_STRICT") != "1" {
			t.Skip("set OAUTH2MAIL_KILL_STRICT=1 to measure lost logins under strict rotation")
		}
		h := newCrashEnv(t, true)
		h.idp.SetAccessTokenLifetime(time.Second)
		start := time.Now()
		f := killLoop(t, h, n, true)
		f.log(t, time.Since(start))
		lost := 0
		for _, l := range f.lost {
			lost += l
		}
		t.Logf("strict rotation: %d of %d kills lost the sign-in (%.1f%%)", lost, n, 100*float64(lost)/float64(n))
	})
}

// stampedeCase prepares one way for the 100 clients to reach their tokens.
// prepare runs once the account is logged in, its token stale and the IdP
// slow; it may start helpers (stopping them with t.Cleanup) and returns the
// environment of the clients.
type stampedeCase struct {
	name    string
	prepare func(t *testing.T, h *crashEnv) []string
}

// 100 mail clients ask at once for an expired token: one refresh, one
// token, everyone served.
func TestStampede100(t *testing.T) {
	for _, c := range []stampedeCase{
		{"direct", func(t *testing.T, h *crashEnv) []string { return h.env }},
		{"agent", startCrashAgent},
	} {
		t.Run(c.name, func(t *testing.T) { stampede(t, 100, c.prepare) })
	}
}

func stampede(t *testing.T, n int, prepare func(*testing.T, *crashEnv) []string) {
	h := newCrashEnv(t, false)
	h.expire()
	h.idp.SetAccessTokenLifetime(time.Hour)
	h.idp.SetTokenDelay(300 * time.Millisecond)
	env := prepare(t, h)
	before := h.idp.Stats()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	startAt := time.Now()
	for i := range n {
		cmd, stdout, stderr := h.command(ctx, env)
		wg.Go(func() {
			<-ready
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, stderr.String())
			}
			outs[i] = stdout.String()
		})
	}
	close(ready)
	wg.Wait()
	took := time.Since(startAt)

	after := h.idp.Stats()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("process %d: %v", i, errs[i])
		}
	}
	st, err := h.load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	want := st.AccessToken + "\n"
	same := 0
	for i := range n {
		if outs[i] == want {
			same++
		}
	}
	if same != n {
		t.Errorf("%d of %d processes printed the stored access token", same, n)
	}
	if got := after.Refreshes - before.Refreshes; got != 1 {
		t.Errorf("the IdP saw %d refreshes, want 1", got)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("the stampede hit its 2-minute deadline")
	}
	t.Logf("%d processes in %s, %d refresh(es)", n, took.Round(time.Millisecond), after.Refreshes-before.Refreshes)
}

// startCrashAgent runs `oauth2mail agent` for the rest of the test and
// returns the environment that sends clients to it.
func startCrashAgent(t *testing.T, h *crashEnv) []string {
	sock := filepath.Join(h.home, "run", "agent.sock")
	cmd := exec.Command(h.bin, "agent", "--socket", sock)
	cmd.Env = h.env
	startAgentProcess(t, cmd, sock)
	return append(h.env, "OAUTH2MAIL_AGENT="+sock)
}

// startAgentProcess starts cmd, an `oauth2mail agent`, waits until it
// listens on sock, and stops it (SIGINT) when the test ends; its log is
// shown if the test failed.
func startAgentProcess(t *testing.T, cmd *exec.Cmd, sock string) {
	t.Helper()
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent socket after 10s: %s", log.String())
		}
	}
}
