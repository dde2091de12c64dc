// Package fakeidp is an in-process fake of the Microsoft identity platform
// v2.0 endpoints (login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize,
// /devicecode and /token) plus an RFC 7662 introspection endpoint, for
// oauth2mail's CLI (testscript) and end-to-end tests.
//
// It speaks the public-client dialect that oauth2mail meets in production:
// authorization code with PKCE S256 and a loopback redirect, the device
// authorization grant, rotating refresh tokens, and errors shaped exactly
// like Entra ID's (error, error_description with the AADSTS prefix and the
// Trace ID / Correlation ID / Timestamp trailer, error_codes, timestamp,
// trace_id, correlation_id, error_uri, suberror, claims). Tests steer it
// through Go methods (Revoke, FailNext, SetDeviceScript, ...) or, when it
// runs standalone (cmd/fakeidp), through a small HTTP control API under
// /_fake/.
//
// Tokens are random and opaque, sized like Outlook.com's (about 1.5 KB
// access tokens, about 700-byte refresh tokens), so that callers exercise
// real line limits. The fake never logs token values.
//
// It is stricter than Entra ID where leniency would hide a client bug: the
// authorize request must carry state, a S256 code_challenge and
// offline_access, and any client credential (Authorization header,
// client_secret, client_assertion) is refused as from a public client.
// Where Microsoft's exact answer is not documented, the description says
// what the fake decided in a trailing "[fake: ...]" note.
package fakeidp

import (
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	ClientID            string        // accepted client_id; "" accepts any
	DefaultUser         string        // login used when the authorize request has no login_hint; default "me@contoso.com"
	AccessTokenLifetime time.Duration // expires_in of issued access tokens; default 3599s
	DeviceInterval      int           // "interval" in device responses, seconds; default 1
	StrictRotation      bool          // when true a refresh token is accepted only if it is the newest one of its grant
}

// Stats counts what the fake has seen. Attempts are counted even when the
// request is then failed by FailNext.
type Stats struct {
	Refreshes         int // refresh_token grant requests
	RefreshOK         int // ... that succeeded
	AuthCodes         int // authorization_code grant requests
	AuthCodeOK        int // ... that succeeded
	DeviceCodes       int // requests to the devicecode endpoint
	DevicePolls       int // device_code grant requests
	DeviceOK          int // ... that returned tokens
	PollsAfterSuccess int // device_code polls for a code that had already returned tokens
	BasicAuthAttempts int // token requests refused because they carried client credentials (Authorization header, client_secret or client_assertion)
	Introspections    int // requests to /introspect

	ClientCredentials   int // client_credentials grant requests
	ClientCredentialsOK int // ... that returned a token
}

// Default option values.
const (
	DefaultUser                = "me@contoso.com"
	DefaultAccessTokenLifetime = 3599 * time.Second
	DefaultDeviceInterval      = 1
)

// Server is a fake Microsoft identity platform. All methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:PORT, without a trailing
	// slash. Endpoints are URL+"/"+tenant+"/oauth2/v2.0/token" and so on.
	// New and SetURL set it; treat it as read-only.
	URL string

	opt   Options
	ts    *httptest.Server
	mux   *http.ServeMux
	debug *log.Logger // nil unless FAKEIDP_DEBUG=1

	mu             sync.Mutex
	base           string // copy of URL read by handlers
	stats          Stats
	tooFastPolls   int
	atLifetime     time.Duration
	tokenDelay     time.Duration
	deviceScript   []string
	manualApproval bool
	deny           *denial
	fail           failure
	lastAuthorize  url.Values
	lastTenant     string

	codes   map[string]*authCode
	devices map[string]*device // by device_code
	users   map[string]*device // by normalised user_code
	rts     map[string]*refreshToken
	ats     map[string]*accessToken

	apps map[string]App   // confidential apps by client ID (AddApp)
	tls  *httptest.Server // StartTLS's listener, nil until then
}

type denial struct{ code, desc string }

type failure struct {
	n           int
	status      int
	ctype, body string
}

// grant is one sign-in: the consent a user gave a client, from which access
// and refresh tokens are minted.
type grant struct {
	login     string
	clientID  string
	tenant    string
	consented []string // scopes from the authorize / devicecode request
	issued    time.Time
	newestRT  string
}

type refreshToken struct {
	g       *grant
	issued  time.Time
	revoked int // AADSTS code of the revocation, 0 if valid
}

type accessToken struct {
	g       *grant
	scope   string
	issued  time.Time
	expires time.Time
	revoked int
}

// New starts a Server on an httptest listener bound to 127.0.0.1.
// Call Close when done.
func New(opt Options) *Server {
	s := NewHandler(opt)
	s.ts = httptest.NewServer(s)
	s.SetURL(s.ts.URL)
	return s
}

// NewHandler returns a Server without a listener, for the standalone
// command: serve it with s.ServeHTTP and tell it its address with SetURL.
// Until SetURL is called, URLs it hands out (verification_uri) are derived
// from the request's Host header.
func NewHandler(opt Options) *Server {
	if opt.DefaultUser == "" {
		opt.DefaultUser = DefaultUser
	}
	if opt.AccessTokenLifetime <= 0 {
		opt.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opt.DeviceInterval <= 0 {
		opt.DeviceInterval = DefaultDeviceInterval
	}
	s := &Server{
		opt:        opt,
		atLifetime: opt.AccessTokenLifetime,
		codes:      make(map[string]*authCode),
		devices:    make(map[string]*device),
		users:      make(map[string]*device),
		rts:        make(map[string]*refreshToken),
		ats:        make(map[string]*accessToken),
	}
	if os.Getenv("FAKEIDP_DEBUG") == "1" {
		s.debug = log.New(os.Stderr, "fakeidp: ", log.Ltime|log.Lmicroseconds)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{tenant}/oauth2/v2.0/authorize", s.handleAuthorize)
	mux.HandleFunc("/{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode)
	mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("/{tenant}/v2.0/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("/introspect", s.handleIntrospect)
	mux.HandleFunc("/devicelogin", s.handleDeviceLogin)
	mux.HandleFunc("/_fake/{op}", s.handleControl)
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.debug != nil {
		// Paths and grant types only: never query strings or bodies,
		// which carry codes and tokens.
		s.debug.Printf("%s %s", r.Method, r.URL.Path)
	}
	s.mux.ServeHTTP(w, r)
}

// SetURL sets the base URL the server is reachable at (no trailing slash
// needed).
func (s *Server) SetURL(base string) {
	base = strings.TrimRight(base, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.URL = base
	s.base = base
}

// Close shuts the listener down (if New started one).
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
	s.mu.Lock()
	t := s.tls
	s.mu.Unlock()
	if t != nil {
		t.Close()
	}
}

func (s *Server) baseURL(r *http.Request) string {
	s.mu.Lock()
	b := s.base
	s.mu.Unlock()
	if b == "" || r.TLS != nil {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		b = scheme + r.Host
	}
	return b
}

func (s *Server) debugf(format string, args ...any) {
	if s.debug != nil {
		s.debug.Printf(format, args...)
	}
}

// SetDeviceScript sets the responses the next device flow (the next
// devicecode request) gives to its polls before it succeeds, one step per
// poll: "authorization_pending", "slow_down", "authorization_declined",
// "expired_token", "bad_verification_code". The last three end the flow:
// every later poll gets the same error. When the list is used up the code
// is approved for Options.DefaultUser, unless ManualDeviceApproval(true) is
// in effect. It panics on an unknown step.
func (s *Server) SetDeviceScript(steps ...string) {
	for _, st := range steps {
		if !validStep(st) {
			panic("fakeidp: unknown device script step " + `"` + st + `"`)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deviceScript = append([]string(nil), steps...)
}

// ManualDeviceApproval, when on, keeps device codes pending (after their
// script) until ApproveDevice is called.
func (s *Server) ManualDeviceApproval(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manualApproval = on
}

// DenyAuthorize makes the next authorize request (one with a valid
// redirect_uri) redirect back with error=errCode&error_description=desc
// (and the request's state). errCode "" clears a pending denial.
func (s *Server) DenyAuthorize(errCode, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errCode == "" {
		s.deny = nil
		return
	}
	s.deny = &denial{errCode, desc}
}

// Revoke invalidates every refresh and access token issued so far. A
// refresh with one of them then gets HTTP 400 with the error Entra ID
// sends for the AADSTS code aadsts (e.g. 70000, 700082, 70008, 50173,
// 70043, 65001, 53003, 50076, 50079, 50057, 700084, 7000112; an unknown
// code gets invalid_grant with a generic description; 0 means 70000), and
// the access tokens introspect as inactive. Tokens issued later are valid.
func (s *Server) Revoke(aadsts int) {
	if aadsts <= 0 {
		aadsts = 70000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.rts {
		if rt.revoked == 0 {
			rt.revoked = aadsts
		}
	}
	for _, at := range s.ats {
		if at.revoked == 0 {
			at.revoked = aadsts
		}
	}
}

// FailNext makes the next n token-endpoint requests (any grant) get
// exactly this response: status (0 means 503), Content-Type contentType
// (none if "") and body. The requests are still counted in Stats. n <= 0
// cancels.
func (s *Server) FailNext(n, status int, contentType, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		s.fail = failure{}
		return
	}
	if status < 100 || status > 999 {
		status = http.StatusServiceUnavailable
	}
	s.fail = failure{n: n, status: status, ctype: contentType, body: body}
}

// SetTokenDelay makes the token endpoint sleep d before answering each
// request (to make concurrent refreshes overlap).
func (s *Server) SetTokenDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenDelay = d
}

// SetAccessTokenLifetime sets the lifetime (expires_in) of access tokens
// issued from now on; d <= 0 restores the Options value.
func (s *Server) SetAccessTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		d = s.opt.AccessTokenLifetime
	}
	s.atLifetime = d
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// TooFastPolls counts device_code polls that came sooner than the interval
// the client had been told (including the 5 s added by each slow_down,
// with 20% tolerance). Such polls are answered normally.
func (s *Server) TooFastPolls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tooFastPolls
}

// AcceptsRefreshToken reports whether a refresh with rt would succeed now
// (ignoring FailNext and client_id).
func (s *Server) AcceptsRefreshToken(rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rts[rt]
	if !ok || r.revoked != 0 {
		return false
	}
	return !s.opt.StrictRotation || r.g.newestRT == rt
}

// ValidAccessToken reports whether at is a known, unexpired, unrevoked
// access token (what /introspect calls active).
func (s *Server) ValidAccessToken(at string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.activeAccessToken(at, time.Now())
	return ok
}

func (s *Server) activeAccessToken(at string, now time.Time) (*accessToken, bool) {
	a, ok := s.ats[at]
	if !ok || a.revoked != 0 || !now.Before(a.expires) {
		return nil, false
	}
	return a, true
}

// LastAuthorize returns a copy of the query of the last authorize request,
// or nil if there was none.
func (s *Server) LastAuthorize() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneValues(s.lastAuthorize)
}

// LastTenant returns the {tenant} path segment of the last request to an
// authorize, devicecode or token endpoint.
func (s *Server) LastTenant() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastTenant
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vv := range v {
		c[k] = append([]string(nil), vv...)
	}
	return c
}
