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
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/flows"
)

// Skew is how long an access token must still be valid to be handed out: a
// mail client must never start a session with a token about to die.
const Skew = 5 * time.Minute

// LockTimeout bounds the wait for another process's refresh.
const LockTimeout = 2 * flows.HTTPTimeout

// ErrLoginNeeded: there is no usable sign-in; a person must run login.
var ErrLoginNeeded = errors.New("login needed")

// Broker hands out tokens for the accounts of one config.
type Broker struct {
	StateDir string
	Log      io.Writer // --verbose lines and notices (stderr); never a secret
	Verbose  bool
	Now      func() time.Time

	// NewStore opens the store of an account; tests may replace it.
	NewStore func(dir, kind string) *cache.Store
}

// New returns a Broker writing notices to log.
func New(stateDir string, log io.Writer, verbose bool) *Broker {
	return &Broker{StateDir: stateDir, Log: log, Verbose: verbose, Now: time.Now, NewStore: cache.New}
}

func (b *Broker) store(a *config.Account) *cache.Store { return b.NewStore(b.StateDir, a.Store) }

func (b *Broker) logf(format string, args ...any) {
	if b.Verbose {
		fmt.Fprintf(b.Log, "oauth2mail: "+format+"\n", args...)
	}
}

func (b *Broker) fresh(st *cache.State) bool {
	return st.AccessToken != "" && !st.Expiry.IsZero() && st.Expiry.Sub(b.Now()) >= Skew
}

// Token returns state holding an access token valid for at least Skew,
// refreshing it when needed. It never starts a login.
func (b *Broker) Token(ctx context.Context, a *config.Account) (*cache.State, error) {
	s := b.store(a)
	st, err := s.Load(a.Name)
	if err != nil {
		return nil, b.loadErr(err)
	}
	if b.fresh(st) {
		b.logf("%s: cached access token (%d bytes), expires %s (in %s)", a.Name, len(st.AccessToken), st.Expiry.Format(time.RFC3339), st.Expiry.Sub(b.Now()).Round(time.Second))
		return st, nil
	}
	unlock, err := lock(ctx, s, a.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Someone may have refreshed while we waited for the lock.
	if st, err = s.Load(a.Name); err != nil {
		return nil, b.loadErr(err)
	}
	if b.fresh(st) {
		b.logf("%s: another process refreshed the token while we waited", a.Name)
		return st, nil
	}
	if st.RefreshToken == "" {
		return nil, fmt.Errorf("%s: the access token expired and there is no refresh token: %w", a.Name, ErrLoginNeeded)
	}
	conf := flows.OAuthConfig(a)
	b.logf("%s: access token expires %s; refreshing at %s", a.Name, st.Expiry.Format(time.RFC3339), conf.Endpoint.TokenURL)
	tok, err := flows.Refresh(ctx, conf, st.RefreshToken)
	if err != nil {
		return nil, err
	}
	b.update(st, tok, false)
	if err := s.Save(a.Name, st); err != nil {
		return nil, err
	}
	return st, nil
}

// lock takes the account's refresh lock, waiting at most LockTimeout.
func lock(ctx context.Context, s *cache.Store, account string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, LockTimeout)
	defer cancel()
	return s.Lock(ctx, account)
}

// update folds a token response into st; the new refresh token replaces the
// old one whenever the IdP sent one (rotation).
func (b *Broker) update(st *cache.State, tok *oauth2.Token, login bool) {
	now := b.Now()
	st.AccessToken = tok.AccessToken
	st.TokenType = tok.TokenType
	st.Expiry = tok.Expiry
	if st.Expiry.IsZero() {
		// No expires_in: assume the token is short-lived and refresh next time.
		st.Expiry = now
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
	Out    io.Writer // instructions for the person (stderr)
}

// ChooseFlow resolves "auto": the browser when a display is available (and
// the provider has an authorization endpoint), the device flow otherwise.
func ChooseFlow(a *config.Account, requested string) string {
	flow := requested
	if flow == "" {
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
	var tok *oauth2.Token
	switch ChooseFlow(a, opt.Flow) {
	case config.FlowDevice:
		tok, err = flows.Device(ctx, conf, opt.Out)
	default:
		tok, err = flows.Browser(ctx, conf, flows.BrowserOptions{
			RedirectHost: a.RedirectHost, LoginHint: a.Email, NoOpen: opt.NoOpen, Out: opt.Out, Verbose: b.Verbose,
		})
	}
	if err != nil {
		return nil, err
	}
	st := &cache.State{TokenURL: conf.Endpoint.TokenURL, ClientID: a.ClientID}
	b.update(st, tok, true)
	if st.RefreshToken == "" {
		fmt.Fprintf(opt.Out, "oauth2mail: warning: %s sent no refresh token (is offline_access among the scopes?); you will have to log in again when this token expires\n", a.Name)
	}
	unlock, err := lock(ctx, s, a.Name)
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
	unlock, err := lock(ctx, s, a.Name)
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
	State            string     `json:"state"` // ok, expired, login-needed, store-unavailable, corrupt
	AccessExpiry     *time.Time `json:"access_token_expiry,omitempty"`
	AccessTokenBytes int        `json:"access_token_bytes,omitempty"`
	HasRefreshToken  bool       `json:"has_refresh_token"`
	RefreshTokenAge  string     `json:"refresh_token_age,omitempty"`
	RefreshTokenFrom *time.Time `json:"refresh_token_from,omitempty"`
	LoginAt          *time.Time `json:"login_at,omitempty"`
	LastRefresh      *time.Time `json:"last_refresh,omitempty"`
	Detail           string     `json:"detail,omitempty"`
	Err              error      `json:"-"`
}

// Status reads an account's state without touching the network.
func (b *Broker) Status(a *config.Account) Status {
	st := Status{Account: a.Name, Provider: a.Provider, Email: a.Email, Store: a.Store}
	s, err := b.store(a).Load(a.Name)
	switch {
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
		t = t.Local().Truncate(time.Second)
		return &t
	}
	st.AccessExpiry, st.LoginAt, st.LastRefresh, st.RefreshTokenFrom = tp(s.Expiry), tp(s.LoginAt), tp(s.LastRefresh), tp(s.RefreshTokenFrom)
	st.AccessTokenBytes = len(s.AccessToken)
	st.HasRefreshToken = s.RefreshToken != ""
	if !s.RefreshTokenFrom.IsZero() {
		st.RefreshTokenAge = b.Now().Sub(s.RefreshTokenFrom).Round(time.Second).String()
	}
	switch {
	case b.fresh(s):
		st.State = "ok"
	case st.HasRefreshToken:
		st.State = "expired"
		st.Detail = "access token expired or about to; the next request refreshes it"
	default:
		st.State, st.Detail, st.Err = "login-needed", "access token expired and there is no refresh token", ErrLoginNeeded
	}
	return st
}
