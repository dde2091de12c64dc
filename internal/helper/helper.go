// Package helper is the broker: "give me a valid token for this account".
// It loads the cached state, returns it while it has at least Skew left, and
// otherwise refreshes it once under the account's lock, persisting the
// rotated refresh token. It also runs logins, status and logout, the logic
// the commands share.
package helper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/flows"
)

// Skew is how long an access token must still be valid to be handed out: a
// mail client must never start a session with a token about to die. Tokens
// that live less than three times as long get a third of their lifetime.
const Skew = 5 * time.Minute

// LockTimeout bounds the wait for another process's refresh: its
// client_secret_command and IdP request, with room to spare.
const LockTimeout = SecretCommandTimeout + 2*flows.HTTPTimeout

// ErrLoginNeeded: there is no usable sign-in; a person must run login.
var ErrLoginNeeded = errors.New("login needed")

// Broker hands out tokens for the accounts of one config.
type Broker struct {
	StateDir string
	Log      io.Writer // --verbose lines and notices (stderr); never a secret
	Verbose  bool
	Now      func() time.Time

	// NewStore opens the store of an account; tests may replace it, the
	// agent shares one store (and its remembered keys) between requests.
	NewStore func(dir, kind string) *cache.Store

	// Notice tells the person that account needs them (a lost login); nil
	// means nobody is told. It runs at most once per NoticeEvery for one
	// episode, after the account's lock is released.
	Notice      func(a *config.Account, st *cache.State)
	NoticeEvery time.Duration

	// HTTPClient, when set, is used for every request to the identity
	// provider (tests hand in one that trusts their fake authority, or
	// with a short timeout: see flows.NewHTTPClient); nil: flows' default.
	HTTPClient *http.Client

	locks *sync.Map // account -> chan struct{}: one refresher per process, shared by With
}

// New returns a Broker writing notices to log.
func New(stateDir string, log io.Writer, verbose bool) *Broker {
	return &Broker{StateDir: stateDir, Log: log, Verbose: verbose, Now: time.Now, NewStore: cache.New, locks: new(sync.Map)}
}

// With returns a copy of b that logs to log; the copies share b's stores
// and in-process locks (the agent makes one per request).
func (b *Broker) With(log io.Writer, verbose bool) *Broker {
	c := *b
	c.Log, c.Verbose = log, verbose
	return &c
}

func (b *Broker) store(a *config.Account) *cache.Store { return b.NewStore(b.StateDir, a.Store) }

// idp returns ctx carrying b's HTTPClient, if any, for x/oauth2's flows.
func (b *Broker) idp(ctx context.Context) context.Context {
	if b.HTTPClient == nil {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, b.HTTPClient)
}

func (b *Broker) logf(format string, args ...any) {
	if b.Verbose {
		fmt.Fprintf(b.Log, "oauth2mail: "+format+"\n", args...)
	}
}

// life is how long st's access token was issued for; 0 when unknown.
func life(st *cache.State) time.Duration {
	if iss := st.Issued(); !iss.IsZero() {
		return max(st.Expiry.Sub(iss), 0)
	}
	return 0
}

// skew is how much life st's access token must have left to be handed out.
func skew(st *cache.State) time.Duration {
	if l := life(st); l > 0 && l/3 < Skew {
		return l / 3
	}
	return Skew
}

// Lead is how long before expiry the agent refreshes st's access token: a
// few minutes more than the skew, at most half the token's life.
func Lead(st *cache.State) time.Duration {
	lead := skew(st) + 3*time.Minute
	if half := life(st) / 2; half > 0 && half < lead {
		lead = half
	}
	return lead
}

func (b *Broker) fresh(st *cache.State) bool {
	return st.AccessToken != "" && !st.Expiry.IsZero() && st.Expiry.Sub(b.Now()) >= skew(st)
}

// Token returns state holding an access token valid for at least the skew,
// refreshing it when needed. It never starts a login.
func (b *Broker) Token(ctx context.Context, a *config.Account) (*cache.State, error) {
	return b.refresh(ctx, a, b.fresh)
}

// KeepFresh refreshes ahead of need: when the access token is within Lead
// of its expiry, or when the refresh token has not been used for keepAlive
// (Microsoft forgets one unused for 90 days). The agent calls it.
func (b *Broker) KeepFresh(ctx context.Context, a *config.Account, keepAlive time.Duration) (*cache.State, error) {
	return b.refresh(ctx, a, func(st *cache.State) bool {
		now := b.Now()
		return b.fresh(st) && st.Expiry.Sub(now) > Lead(st) && now.Sub(st.Issued()) < keepAlive
	})
}

// refresh returns the stored state while good says it is, and otherwise
// refreshes it once under the account's lock.
func (b *Broker) refresh(ctx context.Context, a *config.Account, good func(*cache.State) bool) (st *cache.State, err error) {
	s := b.store(a)
	if st, err = b.load(s, a); err != nil {
		return nil, err
	}
	if good(st) {
		b.logf("%s: cached access token (%d bytes), expires %s (in %s)", a.Name, len(st.AccessToken), st.Expiry.Format(time.RFC3339), st.Expiry.Sub(b.Now()).Round(time.Second))
		return st, nil
	}
	var notice func()
	defer func() { // after the unlock below
		if notice != nil {
			notice()
		}
	}()
	unlock, err := b.lock(ctx, s, a.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Someone may have refreshed while we waited for the lock.
	if st, err = b.load(s, a); err != nil {
		return nil, err
	}
	if good(st) {
		b.logf("%s: another process refreshed the token while we waited", a.Name)
		return st, nil
	}
	var tok *oauth2.Token
	if a.Flow == config.FlowClientCredentials {
		// The store must take the token before the IdP is asked for it:
		// a certificate account in cron without D-Bus would otherwise get
		// a token, lose it and ask again at every call.
		if err := s.Check(a.Name); err != nil {
			return nil, err
		}
		tok, err = b.appToken(ctx, a, st)
	} else {
		tok, st, err = b.redeem(ctx, s, a, st, good)
		if err == nil && tok == nil { // a good token appeared on disk
			return st, nil
		}
	}
	if err != nil {
		if needsPerson(err) {
			notice = b.markLost(s, a, st, err)
		}
		return nil, err
	}
	b.update(st, tok, false)
	if err := s.Save(a.Name, st); err != nil {
		return nil, err
	}
	return st, nil
}

// load reads the account's state. An app-only account whose credential is
// in the config starts from an empty state: it needs no login.
func (b *Broker) load(s *cache.Store, a *config.Account) (*cache.State, error) {
	st, err := s.Load(a.Name)
	if errors.Is(err, cache.ErrNotFound) && SelfContained(a) {
		return &cache.State{ClientID: a.ClientID}, nil
	}
	if err != nil {
		return nil, b.loadErr(err)
	}
	return st, nil
}

// redeem uses st's refresh token. It returns a nil token and the state
// read from disk when that turned out good.
func (b *Broker) redeem(ctx context.Context, s *cache.Store, a *config.Account, st *cache.State, good func(*cache.State) bool) (*oauth2.Token, *cache.State, error) {
	if st.RefreshToken == "" {
		return nil, st, fmt.Errorf("%s: the access token expired and there is no refresh token: %w", a.Name, ErrLoginNeeded)
	}
	conf := flows.OAuthConfig(a)
	b.logf("%s: access token expires %s; refreshing at %s", a.Name, st.Expiry.Format(time.RFC3339), conf.Endpoint.TokenURL)
	ctx = b.idp(ctx)
	tok, err := flows.Refresh(ctx, conf, st.RefreshToken)
	if err != nil && needsPerson(err) {
		// Another process (one that ignores our lock: an older version, a
		// copy of the state on a network disk) may have rotated the
		// refresh token under us: look once more before giving up.
		if again, lerr := s.Load(a.Name); lerr == nil && again.RefreshToken != st.RefreshToken {
			b.logf("%s: the refresh token changed on disk meanwhile; trying the new one", a.Name)
			st = again
			if good(st) {
				return nil, st, nil
			}
			tok, err = flows.Refresh(ctx, conf, st.RefreshToken)
		}
	}
	return tok, st, err
}

// needsPerson reports whether err is an IdP refusal that retrying cannot fix.
func needsPerson(err error) bool {
	var fe *flows.Error
	if !errors.As(err, &fe) {
		return false
	}
	switch fe.Kind {
	case flows.KindLogin, flows.KindBlocked, flows.KindDeclined, flows.KindConfig:
		return true
	}
	return false
}

// markLost records, under the lock, that account's login is lost, keeping
// its tokens. It returns the notice to give once the lock is released, or
// nil when this episode was announced less than NoticeEvery ago.
func (b *Broker) markLost(s *cache.Store, a *config.Account, st *cache.State, cause error) func() {
	if st.LoginNeeded.IsZero() {
		st.LoginNeeded = b.Now()
		st.Notified = time.Time{}
	}
	st.LoginNeededReason = cause.Error()
	notice := b.dueNotice(a, st)
	if err := s.Save(a.Name, st); err != nil {
		b.logf("%s: could not record the lost login: %v", a.Name, err)
	}
	return notice
}

// dueNotice stamps st as notified and returns the notice to give, when
// there is a Notice and this episode was not announced in the last
// NoticeEvery; otherwise nil. The caller saves st.
func (b *Broker) dueNotice(a *config.Account, st *cache.State) func() {
	now := b.Now()
	if b.Notice == nil || !st.Notified.IsZero() && now.Sub(st.Notified) < b.NoticeEvery {
		return nil
	}
	st.Notified = now
	cp := *st
	return func() { b.Notice(a, &cp) }
}

// Remind repeats the notice of a lost login when NoticeEvery has passed
// since the last one; the agent calls it.
func (b *Broker) Remind(ctx context.Context, a *config.Account) error {
	s := b.store(a)
	unlock, err := b.lock(ctx, s, a.Name)
	if err != nil {
		return err
	}
	var notice func()
	func() {
		defer unlock()
		st, lerr := s.Load(a.Name)
		if lerr != nil || st.LoginNeeded.IsZero() {
			return
		}
		if notice = b.dueNotice(a, st); notice == nil {
			return
		}
		if err = s.Save(a.Name, st); err != nil {
			notice = nil
		}
	}()
	if notice != nil {
		notice()
	}
	return err
}

// lock takes the account's refresh lock, waiting at most LockTimeout: first
// within this process (the agent serves many callers at once), then the
// file lock shared with other processes.
func (b *Broker) lock(ctx context.Context, s *cache.Store, account string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, LockTimeout)
	defer cancel()
	v, _ := b.locks.LoadOrStore(s.Dir+"\x00"+account, make(chan struct{}, 1))
	local := v.(chan struct{})
	select {
	case local <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the lock of %s: %w", account, ctx.Err())
	}
	unlock, err := s.Lock(ctx, account)
	if err != nil {
		<-local
		return nil, err
	}
	return func() { unlock(); <-local }, nil
}

// update folds a token response into st; the new refresh token replaces the
// old one whenever the IdP sent one (rotation).
func (b *Broker) update(st *cache.State, tok *oauth2.Token, login bool) {
	now := b.Now()
	st.AccessToken = tok.AccessToken
	st.TokenType = tok.TokenType
	var note string
	st.Expiry, note = flows.Lifetime(tok, now)
	if note != "" {
		b.logf("%s", note)
	}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		st.Scope = s
	}
	if tok.RefreshToken != "" && tok.RefreshToken != st.RefreshToken {
		st.RefreshToken = tok.RefreshToken
		st.RefreshTokenFrom = now
		b.logf("refresh token rotated (%d bytes)", len(tok.RefreshToken))
	}
	if login {
		st.LoginAt = now
	} else {
		st.LastRefresh = now
	}
	st.LoginNeeded, st.LoginNeededReason, st.Notified = time.Time{}, "", time.Time{}
	b.logf("new access token (%d bytes), expires %s", len(st.AccessToken), st.Expiry.Format(time.RFC3339))
}

func (b *Broker) loadErr(err error) error {
	if errors.Is(err, cache.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrLoginNeeded, err)
	}
	return err
}

// LoginOptions choose and tune the interactive flow.
type LoginOptions struct {
	Flow   string // config.FlowBrowser, config.FlowDevice or "" for the account's
	NoOpen bool
	Secret string    // app-only accounts: the client secret to store
	Out    io.Writer // instructions for the person (stderr)
}

// ChooseFlow resolves "auto": the browser when a display is available (and
// the provider has an authorization endpoint), the device flow otherwise.
func ChooseFlow(a *config.Account, requested string) string {
	flow := requested
	if flow == "" || a.Flow == config.FlowClientCredentials {
		flow = a.Flow
	}
	if flow != config.FlowAuto {
		return flow
	}
	ep := flows.OAuthConfig(a).Endpoint
	switch {
	case ep.DeviceAuthURL == "" || a.Provider == config.ProviderGoogle:
		// Google's device flow does not allow the mail scope.
		return config.FlowBrowser
	case ep.AuthURL == "":
		return config.FlowDevice
	case flows.HasDisplay():
		return config.FlowBrowser
	}
	return config.FlowDevice
}

// Login runs an interactive flow and stores the result. The store is checked
// before the person is asked to do anything, and existing state is replaced
// only once the new sign-in has succeeded; an unreadable old file is moved
// aside, never deleted.
func (b *Broker) Login(ctx context.Context, a *config.Account, opt LoginOptions) (*cache.State, error) {
	s := b.store(a)
	// Whatever is stored now will be replaced. An old state that cannot be
	// read (corrupt, key lost, or sealed by a store that is unreachable now,
	// e.g. the keyring after switching to store = "file") is moved aside
	// after the sign-in, never deleted. The target store must work before
	// the person is asked to do anything.
	_, err := s.Load(a.Name)
	replace := err != nil && !errors.Is(err, cache.ErrNotFound)
	if err := s.Check(a.Name); err != nil {
		return nil, err
	}
	conf := flows.OAuthConfig(a)
	st := &cache.State{TokenURL: conf.Endpoint.TokenURL, ClientID: a.ClientID}
	var tok *oauth2.Token
	switch ChooseFlow(a, opt.Flow) {
	case config.FlowClientCredentials:
		// No person signs in: check the credential by getting a token,
		// and store the secret only once it proved right.
		switch {
		case NeedsStoredSecret(a) && opt.Secret == "":
			return nil, errors.New("login: no client secret given")
		case NeedsStoredSecret(a):
			st.ClientSecret = opt.Secret
		case opt.Secret != "":
			return nil, &CredentialError{Account: a.Name, Msg: "the config gives this app's credential (certificate, client_secret_command or client_secret), so no secret is stored", Fix: "run oauth2mail login " + a.Name + " without --secret-stdin, or remove that setting to store the secret instead"}
		}
		tok, err = b.appToken(ctx, a, st)
	case config.FlowDevice:
		tok, err = flows.Device(b.idp(ctx), conf, opt.Out)
	default:
		tok, err = flows.Browser(b.idp(ctx), conf, flows.BrowserOptions{
			RedirectHost: a.RedirectHost, RedirectURI: a.RedirectURI, LoginHint: a.Email, NoOpen: opt.NoOpen, Out: opt.Out, Verbose: b.Verbose,
		})
	}
	if err != nil {
		return nil, err
	}
	b.update(st, tok, true)
	if st.RefreshToken == "" && a.Flow != config.FlowClientCredentials {
		fmt.Fprintf(opt.Out, "oauth2mail: warning: %s sent no refresh token (is offline_access among the scopes?); you will have to log in again when this token expires\n", a.Name)
	}
	unlock, err := b.lock(ctx, s, a.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if replace {
		if moved, err := s.Quarantine(a.Name); err == nil {
			fmt.Fprintf(opt.Out, "oauth2mail: the old unreadable state was moved to %s\n", moved)
		}
	}
	err = s.Save(a.Name, st)
	if errors.Is(err, cache.ErrCorrupt) { // the key itself is unreadable
		if err = s.ResetKey(a.Name); err == nil {
			err = s.Save(a.Name, st)
		}
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Logout forgets the account's tokens and key.
// It takes the refresh lock, so a refresh in flight cannot undo it.
func (b *Broker) Logout(ctx context.Context, a *config.Account) error {
	s := b.store(a)
	unlock, err := b.lock(ctx, s, a.Name)
	if err != nil {
		return err
	}
	defer unlock()
	return s.Delete(a.Name)
}

// Status is what `status` reports for one account. It holds no secret.
type Status struct {
	Account          string     `json:"account"`
	Provider         string     `json:"provider"`
	Email            string     `json:"email"`
	Store            string     `json:"store"`
	Flow             string     `json:"flow"`
	State            string     `json:"state"` // ok, expired, login-needed, store-unavailable, corrupt
	AccessExpiry     *time.Time `json:"access_token_expiry,omitempty"`
	AccessTokenBytes int        `json:"access_token_bytes,omitempty"`
	HasRefreshToken  bool       `json:"has_refresh_token"`
	RefreshTokenAge  string     `json:"-"` // relative: the table only; scripts have refresh_token_from
	RefreshTokenFrom *time.Time `json:"refresh_token_from,omitempty"`
	LoginAt          *time.Time `json:"login_at,omitempty"`
	LastRefresh      *time.Time `json:"last_refresh,omitempty"`
	LoginNeededSince *time.Time `json:"login_needed_since,omitempty"`
	Detail           string     `json:"detail,omitempty"`
	Err              error      `json:"-"`
}

// Status reads an account's state without touching the network.
func (b *Broker) Status(a *config.Account) Status {
	st := Status{Account: a.Name, Provider: a.Provider, Email: a.Email, Store: a.Store, Flow: a.Flow}
	s, err := b.store(a).Load(a.Name)
	switch {
	case errors.Is(err, cache.ErrNotFound) && SelfContained(a):
		st.State, st.Detail = "expired", "no token yet; the next request gets one with the app's credential"
		return st
	case errors.Is(err, cache.ErrNotFound):
		st.State, st.Detail, st.Err = "login-needed", "not logged in", fmt.Errorf("%w: %w", ErrLoginNeeded, err)
		return st
	case errors.Is(err, cache.ErrCorrupt):
		st.State, st.Detail, st.Err = "corrupt", err.Error(), err
		return st
	case err != nil:
		st.State, st.Detail, st.Err = "store-unavailable", err.Error(), err
		return st
	}
	tp := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC().Truncate(time.Second)
		return &t
	}
	st.AccessExpiry, st.LoginAt, st.LastRefresh, st.RefreshTokenFrom = tp(s.Expiry), tp(s.LoginAt), tp(s.LastRefresh), tp(s.RefreshTokenFrom)
	st.LoginNeededSince = tp(s.LoginNeeded)
	st.AccessTokenBytes = len(s.AccessToken)
	st.HasRefreshToken = s.RefreshToken != ""
	if !s.RefreshTokenFrom.IsZero() {
		st.RefreshTokenAge = b.Now().Sub(s.RefreshTokenFrom).Round(time.Second).String()
	}
	switch {
	case !s.LoginNeeded.IsZero():
		st.State, st.Detail = "login-needed", s.LoginNeededReason
		st.Err = fmt.Errorf("%s: %w since %s: %s", a.Name, ErrLoginNeeded, s.LoginNeeded.Local().Format("2006-01-02 15:04"), s.LoginNeededReason)
	case b.fresh(s):
		st.State = "ok"
	case st.HasRefreshToken:
		st.State = "expired"
		st.Detail = "access token expired or about to; the next request refreshes it"
	case a.Flow == config.FlowClientCredentials:
		st.State = "expired"
		st.Detail = "access token expired or about to; the next request gets a new one with the app's credential"
	default:
		st.State, st.Detail, st.Err = "login-needed", "access token expired and there is no refresh token", ErrLoginNeeded
	}
	return st
}
