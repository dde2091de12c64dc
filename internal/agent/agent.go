// Package agent is `oauth2mail agent`: a long-running process of one user
// that holds the unlocked store (it reads the keyring once, at start, so it
// can then serve cron jobs that have no D-Bus), answers the commands of that
// user's processes over a unix socket, refreshes every account ahead of
// time, keeps refresh tokens from idling out, and tells the person once when
// a login is lost.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/helper"
)

// Handler runs one command for a client with the agent's broker and
// returns what the command would have printed, and the account it was for.
type Handler func(ctx context.Context, req *Request, b *helper.Broker) (resp *Response, account string)

// Agent serves one config and one state directory.
type Agent struct {
	Socket     string
	ConfigPath string // absolute
	StateDir   string
	Log        io.Writer // the agent's own log (stderr: the journal under systemd)
	Verbose    bool
	Handle     Handler
	// Broker hands out tokens; its Notice is the agent's notifier.
	Broker *helper.Broker
	// Configs, when set, is shared with Handle: the config is parsed once
	// per change, not per request and per scheduler pass.
	Configs *config.Cache

	stores  map[string]*cache.Store
	storeMu sync.Mutex

	mu      sync.Mutex
	conf    *config.File
	started time.Time
	lastUse map[string]time.Time
	retry   map[string]retry
	wake    chan struct{}
}

// retry is an account's backoff after a temporary refresh failure.
type retry struct {
	n  int
	at time.Time
}

// Minimum spacing of the agent's own refreshes of one account, so a
// provider that issues very short-lived tokens cannot spin it.
const minSpacing = 30 * time.Second

// Setup checks the config, remembers the keys of every account (the one
// time the keyring is asked) and reports each account on Log.
func (ag *Agent) Setup() error {
	// Before the first key or token is read into memory.
	if err := harden(); err != nil {
		ag.logf("could not disable core dumps: %v", err)
	}
	f, err := ag.loadConfig()
	if err != nil {
		return err
	}
	ag.conf = f
	ag.started = ag.now()
	ag.lastUse = map[string]time.Time{}
	ag.retry = map[string]retry{}
	ag.wake = make(chan struct{}, 1)
	ag.stores = map[string]*cache.Store{}
	newStore := ag.Broker.NewStore
	ag.Broker.NewStore = func(dir, kind string) *cache.Store {
		ag.storeMu.Lock()
		defer ag.storeMu.Unlock()
		s := ag.stores[kind]
		if s == nil || s.Dir != dir {
			s = newStore(dir, kind)
			s.KeepKeys()
			ag.stores[kind] = s
		}
		return s
	}
	for _, name := range f.Names() {
		a := f.Accounts[name]
		st, err := ag.load(a)
		switch {
		case errors.Is(err, cache.ErrNotFound) && helper.SelfContained(a):
			ag.logf("%s: no token yet; the first request gets one with the app's credential", name)
		case errors.Is(err, cache.ErrNotFound):
			ag.logf("%s: not logged in yet; run: oauth2mail login %s", name, name)
		case err != nil:
			ag.logf("%s: %v", name, err)
		case !st.LoginNeeded.IsZero():
			ag.logf("%s: needs a new login since %s: %s", name, st.LoginNeeded.Local().Format(time.DateTime), st.LoginNeededReason)
		default:
			ag.logf("%s: ready (%s store), access token expires %s", name, a.Store, st.Expiry.Local().Format(time.DateTime))
		}
	}
	return nil
}

func (ag *Agent) now() time.Time { return ag.Broker.Now() }

// load reads a's state through the agent's shared store.
func (ag *Agent) load(a *config.Account) (*cache.State, error) {
	return ag.Broker.NewStore(ag.StateDir, a.Store).Load(a.Name)
}

func (ag *Agent) loadConfig() (*config.File, error) {
	if ag.Configs != nil {
		return ag.Configs.Load(ag.ConfigPath)
	}
	return config.Load(ag.ConfigPath)
}

func (ag *Agent) logf(format string, args ...any) {
	fmt.Fprintf(ag.Log, "oauth2mail agent: "+format+"\n", args...)
}

func (ag *Agent) debugf(format string, args ...any) {
	if ag.Verbose {
		ag.logf(format, args...)
	}
}

// Run listens on the socket and keeps the accounts fresh until ctx ends.
// The socket is removed on return.
func (ag *Agent) Run(ctx context.Context) error {
	ln, err := listen(ag.Socket)
	if err != nil {
		return err
	}
	defer ln.Close()
	ag.logf("listening on %s (pid %d)", ag.Socket, os.Getpid())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { ag.schedule(ctx) })
	go func() {
		<-ctx.Done()
		ln.Listener.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			cancel()
			wg.Wait()
			return err
		}
		wg.Go(func() { ag.serve(ctx, c.(*net.UnixConn)) })
	}
	wg.Wait()
	ag.logf("stopped")
	return nil
}

// serve answers one connection: one request, one response.
func (ag *Agent) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	// Stopping the agent ends a client's wait at once.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	uid, pid, err := peer(c)
	if err != nil || uid != os.Getuid() {
		ag.logf("refused a connection from uid %d (pid %d): only uid %d may ask this agent%s", uid, pid, os.Getuid(), errSuffix(err))
		return
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var req Request
	if err := readMsg(c, maxRequest, &req); err != nil {
		ag.debugf("bad request from pid %d: %v", pid, err)
		return
	}
	// A refresh may take a while; the client bounds its own wait.
	c.SetDeadline(time.Now().Add(2*helper.LockTimeout + 10*time.Second))
	resp := ag.answer(ctx, &req)
	resp.V = Version
	if err := writeMsg(c, resp); err != nil {
		ag.debugf("pid %d went away before its answer: %v", pid, err)
	}
}

func errSuffix(err error) string {
	if err != nil {
		return " (" + err.Error() + ")"
	}
	return ""
}

func (ag *Agent) answer(ctx context.Context, req *Request) *Response {
	if req.V != Version {
		return &Response{Fallback: fmt.Sprintf("the agent speaks protocol %d, the client %d; restart the agent after an upgrade", Version, req.V)}
	}
	switch req.Op {
	case "ping":
		return &Response{PID: os.Getpid()}
	case "changed":
		// login or logout changed an account: reread the config, reschedule.
		ag.Reload()
		return &Response{}
	case "token", "xoauth2", "oauthbearer", "status":
	default:
		return &Response{Fallback: fmt.Sprintf("the agent does not run %q", req.Op)}
	}
	if req.Config != ag.ConfigPath || req.StateDir != ag.StateDir {
		return &Response{Fallback: fmt.Sprintf("the agent serves %s with state in %s", ag.ConfigPath, ag.StateDir)}
	}
	resp, account := ag.Handle(ctx, req, ag.Broker)
	if account != "" && req.Op != "status" {
		idleAfter := time.Duration(ag.Config().Agent.IdleAfter)
		ag.mu.Lock()
		idle := ag.now().Sub(ag.lastUse[account]) > idleAfter/2
		ag.lastUse[account] = ag.now()
		ag.mu.Unlock()
		if idle { // it may have been unscheduled while idle
			ag.poke()
		}
	}
	return resp
}

func (ag *Agent) poke() {
	select {
	case ag.wake <- struct{}{}:
	default:
	}
}

// Reload rereads the config and reschedules (SIGHUP).
func (ag *Agent) Reload() {
	ag.reload()
	ag.poke()
}

// Config is the config the agent works from.
func (ag *Agent) Config() *config.File {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	return ag.conf
}

// reload rereads the config; a broken one is reported and the last good
// one kept.
func (ag *Agent) reload() {
	f, err := ag.loadConfig()
	if err != nil {
		ag.logf("keeping the previous config: %v", err)
		return
	}
	ag.mu.Lock()
	ag.conf = f
	ag.mu.Unlock()
}

// schedule refreshes each account ahead of time and repeats lost-login
// notices. Between due times it sleeps: an idle agent uses no CPU.
func (ag *Agent) schedule(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-ag.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		next := ag.tick(ctx)
		d := max(next.Sub(ag.now()), time.Second)
		ag.debugf("next check in %s", d.Round(time.Second))
		timer.Reset(d)
	}
}

// tick does what is due now and returns when to look again.
func (ag *Agent) tick(ctx context.Context) time.Time {
	ag.reload()
	f := ag.Config()
	now := ag.now()
	next := now.Add(24 * time.Hour)
	for _, name := range f.Names() {
		if ctx.Err() != nil {
			return next
		}
		a := f.Accounts[name]
		due, act := ag.due(a, f.Agent, now)
		if due.IsZero() {
			continue
		}
		if !due.After(now) {
			act(ctx)
			if due, _ = ag.due(a, f.Agent, ag.now()); due.IsZero() {
				continue
			}
			if !due.After(ag.now()) { // the action could not help (lock timeout): not a busy loop
				due = ag.now().Add(minSpacing)
			}
		}
		if due.Before(next) {
			next = due
		}
	}
	return next
}

// due returns when account a next needs the agent and what to do then;
// zero when nothing is scheduled (not logged in, store unreadable: a
// login pokes the agent).
func (ag *Agent) due(a *config.Account, set config.Agent, now time.Time) (time.Time, func(context.Context)) {
	st, err := ag.load(a)
	if err != nil {
		return time.Time{}, nil
	}
	if !st.LoginNeeded.IsZero() {
		if ag.Broker.Notice == nil {
			return time.Time{}, nil
		}
		// The broker's interval, the one Remind applies.
		return st.Notified.Add(ag.Broker.NoticeEvery), func(ctx context.Context) {
			if err := ag.Broker.Remind(ctx, a); err != nil {
				ag.logf("%s: %v", a.Name, err)
			}
		}
	}
	// App-only accounts have no refresh token to keep alive, only an
	// access token to renew ahead of time while they are in use.
	app := a.Flow == config.FlowClientCredentials
	if st.RefreshToken == "" && (!app || st.AccessToken == "") {
		return time.Time{}, nil
	}
	keepAlive := time.Duration(set.KeepAlive)
	var due time.Time
	if !app {
		due = st.Issued().Add(keepAlive)
	}
	ag.mu.Lock()
	lastUse := later(ag.lastUse[a.Name], ag.started)
	r := ag.retry[a.Name]
	ag.mu.Unlock()
	if now.Sub(lastUse) < time.Duration(set.IdleAfter) {
		// In use: refresh a few minutes before the access token expires,
		// so callers never wait for the identity provider.
		if t := st.Expiry.Add(-helper.Lead(st)); due.IsZero() || t.Before(due) {
			due = t
		}
	}
	if due.IsZero() {
		return time.Time{}, nil
	}
	due = later(due, st.Issued().Add(minSpacing))
	if r.n > 0 {
		due = later(due, r.at)
	}
	return due, func(ctx context.Context) { ag.refresh(ctx, a, keepAlive) }
}

func (ag *Agent) refresh(ctx context.Context, a *config.Account, keepAlive time.Duration) {
	st, err := ag.Broker.KeepFresh(ctx, a, keepAlive)
	lost := false
	if err != nil {
		if now, lerr := ag.load(a); lerr == nil && !now.LoginNeeded.IsZero() {
			lost = true
		}
	}
	ag.mu.Lock()
	defer ag.mu.Unlock()
	switch {
	case err == nil:
		if r := ag.retry[a.Name]; r.n > 0 {
			ag.logf("%s: refreshed after %d failed attempts", a.Name, r.n)
		}
		delete(ag.retry, a.Name)
		ag.debugf("%s: access token good until %s", a.Name, st.Expiry.Local().Format(time.DateTime))
	case lost:
		ag.logf("%s: the login is lost: %v; run: oauth2mail login %s", a.Name, err, a.Name)
		delete(ag.retry, a.Name)
	default:
		r := ag.retry[a.Name]
		r.n++
		r.at = ag.now().Add(backoff(r.n))
		ag.retry[a.Name] = r
		ag.logf("%s: refresh failed (attempt %d), retrying in %s: %v", a.Name, r.n, r.at.Sub(ag.now()).Round(time.Second), err)
	}
}

// backoff after n failures: 15–30 s, doubling up to 15–30 minutes; the
// jitter keeps many accounts (or agents) from retrying in step.
func backoff(n int) time.Duration {
	d := 30 * time.Second << min(n-1, 6)
	d = min(d, 30*time.Minute)
	return d/2 + rand.N(d/2+1)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
