package fakeidp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

const (
	testClient = "11111111-2222-3333-4444-555555555555"
	imap       = "https://outlook.office.com/IMAP.AccessAsUser.All"
	pop        = "https://outlook.office.com/POP.AccessAsUser.All"
	smtp       = "https://outlook.office.com/SMTP.Send"
	wantScope  = imap + " " + pop + " " + smtp
	redirect   = "http://localhost:53682"
)

var outlookScopes = []string{imap, pop, smtp, "offline_access", "openid", "profile", "email"}

func newServer(t *testing.T, opt fakeidp.Options) *fakeidp.Server {
	t.Helper()
	if opt.ClientID == "" {
		opt.ClientID = testClient
	}
	s := fakeidp.New(opt)
	t.Cleanup(s.Close)
	return s
}

// config is what oauth2mail builds for Microsoft: AuthStyleInParams, as a
// public client must.
func config(s *fakeidp.Server, tenant string) *oauth2.Config {
	base := s.URL + "/" + tenant + "/oauth2/v2.0"
	return &oauth2.Config{
		ClientID: testClient,
		Endpoint: oauth2.Endpoint{
			AuthURL:       base + "/authorize",
			TokenURL:      base + "/token",
			DeviceAuthURL: base + "/devicecode",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		RedirectURL: redirect,
		Scopes:      outlookScopes,
	}
}

// noFollow stops at the redirect back to the loopback listener.
var noFollow = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// authorize plays the browser: it GETs authURL and returns the response
// (a 302 to the loopback redirect, or an error page).
func authorize(t *testing.T, authURL string) *http.Response {
	t.Helper()
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// redirected returns the query of the loopback redirect.
func redirected(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: got status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

// login runs the auth code + PKCE flow with x/oauth2 and returns the token.
func login(t *testing.T, s *fakeidp.Server, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	state := "st-" + oauth2.GenerateVerifier()
	q := redirected(t, authorize(t, conf.AuthCodeURL(state, append(opts, oauth2.S256ChallengeOption(verifier))...)))
	if got := q.Get("state"); got != state {
		t.Fatalf("state: got %q, want %q", got, state)
	}
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

// msError is Entra ID's error body.
type msError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror"`
	Claims           string `json:"claims"`
}

func (e msError) code() int {
	if len(e.ErrorCodes) == 0 {
		return 0
	}
	return e.ErrorCodes[0]
}

// retrieveError unwraps x/oauth2's *RetrieveError and decodes its body.
func retrieveError(t *testing.T, err error) (*oauth2.RetrieveError, msError) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got error %v (%T), want *oauth2.RetrieveError", err, err)
	}
	var me msError
	if re.Response.Header.Get("Content-Type") == "application/json; charset=utf-8" {
		if err := json.Unmarshal(re.Body, &me); err != nil {
			t.Fatalf("error body: %v", err)
		}
	}
	return re, me
}

var (
	descRE  = regexp.MustCompile(`^AADSTS(\d+): .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)
	tsRE    = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)
	uuidRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	b64urlR = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// checkShape verifies an error body looks exactly like Entra ID's.
func checkShape(t *testing.T, me msError, wantErr string, wantCode int) {
	t.Helper()
	if me.Error != wantErr {
		t.Errorf("error: got %q, want %q", me.Error, wantErr)
	}
	if me.code() != wantCode || len(me.ErrorCodes) != 1 {
		t.Errorf("error_codes: got %v, want [%d]", me.ErrorCodes, wantCode)
	}
	m := descRE.FindStringSubmatch(me.ErrorDescription)
	if m == nil || m[1] != itoa(wantCode) {
		t.Errorf("error_description: got %q, want AADSTS%d: ...\\r\\nTrace ID: ...", me.ErrorDescription, wantCode)
	}
	if !tsRE.MatchString(me.Timestamp) || !uuidRE.MatchString(me.TraceID) || !uuidRE.MatchString(me.CorrelationID) {
		t.Errorf("timestamp/trace_id/correlation_id: got %q %q %q", me.Timestamp, me.TraceID, me.CorrelationID)
	}
	if !strings.Contains(me.ErrorDescription, "Trace ID: "+me.TraceID+"\r\n") || !strings.HasSuffix(me.ErrorDescription, "Timestamp: "+me.Timestamp) {
		t.Errorf("error_description trailer does not repeat trace_id %s and timestamp %s", me.TraceID, me.Timestamp)
	}
	if want := "https://login.microsoftonline.com/error?code=" + itoa(wantCode); me.ErrorURI != want {
		t.Errorf("error_uri: got %q, want %q", me.ErrorURI, want)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// rawPost posts a form and decodes a JSON answer into v (if not nil).
func rawPost(t *testing.T, u string, form url.Values, hdr map[string]string, v any) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("POST %s: %v in %q", u, err, body)
		}
	}
	return resp
}

func claims(t *testing.T, idToken string) map[string]any {
	t.Helper()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("id_token: got %d parts, want header.payload. (alg none)", len(parts))
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(hdr), `"alg":"none"`) {
		t.Errorf("id_token header: got %s, want alg none", hdr)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthCodePKCE(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	tok := login(t, s, conf, oauth2.SetAuthURLParam("login_hint", "alice@contoso.com"), oauth2.SetAuthURLParam("nonce", "n-0S6"))

	if got := s.LastTenant(); got != "organizations" {
		t.Errorf("LastTenant: got %q, want organizations", got)
	}
	last := s.LastAuthorize()
	if got := last.Get("code_challenge_method"); got != "S256" {
		t.Errorf("LastAuthorize code_challenge_method: got %q, want S256", got)
	}
	if got := last.Get("login_hint"); got != "alice@contoso.com" {
		t.Errorf("LastAuthorize login_hint: got %q", got)
	}
	if !strings.HasPrefix(tok.AccessToken, "EwB") || len(tok.AccessToken) < 1500 || !b64urlR.MatchString(tok.AccessToken) {
		t.Errorf("access token: got %d chars starting %.3q, want EwB + ~1500 base64url", len(tok.AccessToken), tok.AccessToken)
	}
	if !strings.HasPrefix(tok.RefreshToken, "M.C5") || len(tok.RefreshToken) < 700 {
		t.Errorf("refresh token: got %d chars starting %.4q, want M.C5 + ~700", len(tok.RefreshToken), tok.RefreshToken)
	}
	if tok.TokenType != "Bearer" {
		t.Errorf("token_type: got %q, want Bearer", tok.TokenType)
	}
	if got := tok.Extra("scope"); got != wantScope {
		t.Errorf("scope: got %q, want %q", got, wantScope)
	}
	if tok.ExpiresIn != 3599 || tok.Extra("ext_expires_in") != float64(3599) {
		t.Errorf("expires_in, ext_expires_in: got %d, %v, want 3599", tok.ExpiresIn, tok.Extra("ext_expires_in"))
	}
	if d := time.Until(tok.Expiry); d < 3590*time.Second || d > 3600*time.Second {
		t.Errorf("Expiry in %v, want ~3599s", d)
	}
	idt, _ := tok.Extra("id_token").(string)
	c := claims(t, idt)
	for k, want := range map[string]any{
		"preferred_username": "alice@contoso.com", "email": "alice@contoso.com", "aud": testClient, "nonce": "n-0S6",
	} {
		if c[k] != want {
			t.Errorf("id_token %s: got %v, want %v", k, c[k], want)
		}
	}
	if tid, _ := c["tid"].(string); !uuidRE.MatchString(tid) || c["iss"] != "https://login.microsoftonline.com/"+tid+"/v2.0" {
		t.Errorf("id_token tid, iss: got %v, %v", c["tid"], c["iss"])
	}
	if oid, _ := c["oid"].(string); !uuidRE.MatchString(oid) {
		t.Errorf("id_token oid: got %v", c["oid"])
	}
	if !s.ValidAccessToken(tok.AccessToken) || !s.AcceptsRefreshToken(tok.RefreshToken) {
		t.Errorf("ValidAccessToken, AcceptsRefreshToken: got false for fresh tokens")
	}
	if got, want := s.Stats(), (fakeidp.Stats{AuthCodes: 1, AuthCodeOK: 1}); got != want {
		t.Errorf("Stats: got %+v, want %+v", got, want)
	}
}

func TestAuthCodeNoOpenID(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{DefaultUser: "bob@outlook.com"})
	conf := config(s, "consumers")
	conf.Scopes = []string{imap, "offline_access"}
	tok := login(t, s, conf)
	if got := tok.Extra("id_token"); got != nil {
		t.Errorf("id_token without openid: got %.20q..., want none", got)
	}
	if got := tok.Extra("scope"); got != imap {
		t.Errorf("scope: got %q, want %q", got, imap)
	}
}

func TestAuthorizeRedirects(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // RFC 7636 appendix B
	base := url.Values{
		"client_id":             {testClient},
		"response_type":         {"code"},
		"redirect_uri":          {redirect},
		"scope":                 {strings.Join(outlookScopes, " ")},
		"state":                 {"a b+c/=&ü"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	tests := []struct {
		name      string
		set       map[string]string // "" deletes
		wantErr   string            // "" means a code
		wantCode  int
		wantLoc   string // prefix of Location
		wantState bool
	}{
		{name: "ok", wantLoc: redirect + "/?", wantState: true},
		{name: "ok 127.0.0.1 with path", set: map[string]string{"redirect_uri": "http://127.0.0.1:8400/cb"}, wantLoc: "http://127.0.0.1:8400/cb?", wantState: true},
		{name: "ok https localhost no port", set: map[string]string{"redirect_uri": "https://localhost"}, wantLoc: "https://localhost/?", wantState: true},
		{name: "plain PKCE", set: map[string]string{"code_challenge_method": "plain"}, wantErr: "invalid_request", wantCode: 9002313, wantState: true},
		{name: "no method", set: map[string]string{"code_challenge_method": ""}, wantErr: "invalid_request", wantCode: 9002313, wantState: true},
		{name: "no challenge", set: map[string]string{"code_challenge": ""}, wantErr: "invalid_request", wantCode: 90014, wantState: true},
		{name: "short challenge", set: map[string]string{"code_challenge": "abc"}, wantErr: "invalid_request", wantCode: 9002313, wantState: true},
		{name: "no state", set: map[string]string{"state": ""}, wantErr: "invalid_request", wantCode: 9002313},
		{name: "no offline_access", set: map[string]string{"scope": imap}, wantErr: "invalid_scope", wantCode: 70011, wantState: true},
		{name: "no scope", set: map[string]string{"scope": ""}, wantErr: "invalid_request", wantCode: 900144, wantState: true},
		{name: "implicit", set: map[string]string{"response_type": "token"}, wantErr: "unsupported_response_type", wantCode: 700054, wantState: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := cloneValues(base)
			for k, v := range tt.set {
				if v == "" {
					q.Del(k)
				} else {
					q.Set(k, v)
				}
			}
			resp := authorize(t, s.URL+"/common/oauth2/v2.0/authorize?"+q.Encode())
			got := redirected(t, resp)
			if loc := resp.Header.Get("Location"); tt.wantLoc != "" && !strings.HasPrefix(loc, tt.wantLoc) {
				t.Errorf("Location: got %.40q..., want prefix %q", loc, tt.wantLoc)
			}
			if st := got.Get("state"); (st == base.Get("state")) != tt.wantState {
				t.Errorf("state: got %q, want echoed=%v", st, tt.wantState)
			}
			if tt.wantErr == "" {
				if got.Get("code") == "" || got.Get("error") != "" {
					t.Errorf("got error=%q %q, want a code", got.Get("error"), got.Get("error_description"))
				}
				return
			}
			if got.Get("code") != "" {
				t.Errorf("got a code, want error %s", tt.wantErr)
			}
			if got.Get("error") != tt.wantErr {
				t.Errorf("error: got %q, want %q", got.Get("error"), tt.wantErr)
			}
			if m := descRE.FindStringSubmatch(got.Get("error_description")); m == nil || m[1] != itoa(tt.wantCode) {
				t.Errorf("error_description: got %q, want AADSTS%d: ...", got.Get("error_description"), tt.wantCode)
			}
			if want := "https://login.microsoftonline.com/error?code=" + itoa(tt.wantCode); got.Get("error_uri") != want {
				t.Errorf("error_uri: got %q, want %q", got.Get("error_uri"), want)
			}
		})
	}
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vv := range v {
		c[k] = append([]string(nil), vv...)
	}
	return c
}

func TestAuthorizeErrorPages(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	tests := []struct {
		name     string
		clientID string
		redirect string
		wantCode string
	}{
		{"remote host", testClient, "http://example.com:8080/", "AADSTS50011"},
		{"localhost lookalike", testClient, "http://localhost.example.com/", "AADSTS50011"},
		{"ipv6 loopback", testClient, "http://[::1]:8080/", "AADSTS50011"},
		{"custom scheme", testClient, "ms-app://localhost/", "AADSTS50011"},
		{"fragment", testClient, "http://localhost:1/#x", "AADSTS50011"},
		{"no redirect", testClient, "", "AADSTS900144"},
		{"unknown client", "someone-else", redirect, "AADSTS700016"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *conf
			c.ClientID, c.RedirectURL = tt.clientID, tt.redirect
			resp, err := noFollow.Get(c.AuthCodeURL("state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("got status %d Location %q, want 400 page", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(string(body), tt.wantCode+": ") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("page: got %q, want HTML with %s", body, tt.wantCode)
			}
		})
	}
}

func TestDenyAuthorize(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	authURL := conf.AuthCodeURL("xyz", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	s.DenyAuthorize("access_denied", "AADSTS65004: User declined to consent to access the app.")
	q := redirected(t, authorize(t, authURL))
	if q.Get("error") != "access_denied" || q.Get("error_description") != "AADSTS65004: User declined to consent to access the app." || q.Get("state") != "xyz" || q.Get("code") != "" {
		t.Errorf("denied redirect: got %v", q)
	}
	if q := redirected(t, authorize(t, authURL)); q.Get("code") == "" {
		t.Errorf("second authorize: got %v, want a code (denial is one-shot)", q)
	}
	s.DenyAuthorize("interaction_required", "x")
	s.DenyAuthorize("", "")
	if q := redirected(t, authorize(t, authURL)); q.Get("code") == "" {
		t.Errorf("after DenyAuthorize(\"\"): got %v, want a code", q)
	}
}

func TestFormPost(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	resp, err := noFollow.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_mode", "form_post")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`action="` + redirect + `/"`, `name="code" value="M.C5`, `name="state" value="st"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("form_post page: got %q, want it to contain %q", body, want)
		}
	}
}

func TestExchangeErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	tests := []struct {
		name     string
		mutate   func(conf *oauth2.Config, code, verifier *string)
		wantErr  string
		wantCode int
	}{
		{"wrong verifier", func(_ *oauth2.Config, _, v *string) { *v = oauth2.GenerateVerifier() }, "invalid_grant", 501481},
		{"other redirect", func(c *oauth2.Config, _, _ *string) { c.RedirectURL = redirect + "/" }, "invalid_grant", 500112},
		{"unknown code", func(_ *oauth2.Config, code, _ *string) { *code = "M.C5_nope" }, "invalid_grant", 70000},
		{"unknown client", func(c *oauth2.Config, _, _ *string) { c.ClientID = "other" }, "unauthorized_client", 700016},
		{"no verifier", func(_ *oauth2.Config, _, v *string) { *v = "" }, "invalid_request", 900144},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := config(s, "organizations")
			verifier := oauth2.GenerateVerifier()
			code := redirected(t, authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))).Get("code")
			tt.mutate(conf, &code, &verifier)
			var opts []oauth2.AuthCodeOption
			if verifier != "" {
				opts = append(opts, oauth2.VerifierOption(verifier))
			}
			_, err := conf.Exchange(context.Background(), code, opts...)
			re, me := retrieveError(t, err)
			if re.ErrorCode != tt.wantErr || re.Response.StatusCode != 400 {
				t.Errorf("got %d %q, want 400 %q", re.Response.StatusCode, re.ErrorCode, tt.wantErr)
			}
			checkShape(t, me, tt.wantErr, tt.wantCode)
		})
	}

	t.Run("code reuse", func(t *testing.T) {
		conf := config(s, "organizations")
		verifier := oauth2.GenerateVerifier()
		code := redirected(t, authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))).Get("code")
		if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("first Exchange: %v", err)
		}
		_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		_, me := retrieveError(t, err)
		checkShape(t, me, "invalid_grant", 54005)
	})
}

func TestPublicClientRefusesCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		style     oauth2.AuthStyle
		secret    string
		wantOK    bool
		wantBasic int
	}{
		{"params", oauth2.AuthStyleInParams, "", true, 0},
		{"header", oauth2.AuthStyleInHeader, "", false, 1},
		{"secret in params", oauth2.AuthStyleInParams, "s3cret", false, 1},
		// Auto-detect tries the header first, is refused, then succeeds in params.
		{"autodetect", oauth2.AuthStyleAutoDetect, "", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, fakeidp.Options{})
			conf := config(s, "organizations")
			conf.Endpoint.AuthStyle = tt.style
			conf.ClientSecret = tt.secret
			verifier := oauth2.GenerateVerifier()
			code := redirected(t, authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))).Get("code")
			_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
			if tt.wantOK {
				if err != nil {
					t.Errorf("Exchange: got %v, want success", err)
				}
			} else {
				re, me := retrieveError(t, err)
				if re.Response.StatusCode != 401 {
					t.Errorf("status: got %d, want 401", re.Response.StatusCode)
				}
				checkShape(t, me, "invalid_client", 700025)
			}
			if got := s.Stats().BasicAuthAttempts; got != tt.wantBasic {
				t.Errorf("BasicAuthAttempts: got %d, want %d", got, tt.wantBasic)
			}
		})
	}
}

// refresh refreshes rt with x/oauth2's TokenSource.
func refresh(conf *oauth2.Config, rt string) (*oauth2.Token, error) {
	return conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		strict      bool
		wantOldOK   bool
		wantOKCount int
	}{
		{"lenient like Entra ID", false, true, 2},
		{"strict", true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, fakeidp.Options{StrictRotation: tt.strict})
			conf := config(s, "common")
			first := login(t, s, conf)

			second, err := refresh(conf, first.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
				t.Errorf("refresh did not rotate the tokens")
			}
			if got := second.Extra("scope"); got != wantScope {
				t.Errorf("refreshed scope: got %q, want %q", got, wantScope)
			}
			if second.Extra("id_token") == nil {
				t.Errorf("refresh of an openid grant: got no id_token")
			}
			if got := s.AcceptsRefreshToken(first.RefreshToken); got != tt.wantOldOK {
				t.Errorf("AcceptsRefreshToken(old): got %v, want %v", got, tt.wantOldOK)
			}

			_, err = refresh(conf, first.RefreshToken)
			if tt.wantOldOK {
				if err != nil {
					t.Errorf("refresh with the old RT: got %v, want success", err)
				}
			} else {
				re, me := retrieveError(t, err)
				if re.ErrorCode != "invalid_grant" {
					t.Errorf("old RT: got %q, want invalid_grant", re.ErrorCode)
				}
				checkShape(t, me, "invalid_grant", 70000)
				if me.Suberror != "bad_token" {
					t.Errorf("suberror: got %q, want bad_token", me.Suberror)
				}
			}
			if _, err := refresh(conf, second.RefreshToken); err != nil && !tt.wantOldOK {
				t.Errorf("refresh with the newest RT: %v", err)
			}
			st := s.Stats()
			if st.Refreshes != 3 || st.RefreshOK != tt.wantOKCount+1 {
				t.Errorf("Refreshes, RefreshOK: got %d, %d, want 3, %d", st.Refreshes, st.RefreshOK, tt.wantOKCount+1)
			}
		})
	}
}

func TestRefreshScope(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	tok := login(t, s, conf)
	tests := []struct {
		name      string
		scope     string
		wantScope string
		wantCode  int
	}{
		{"subset", smtp + " offline_access", smtp, 0},
		{"default", "https://outlook.office.com/.default", wantScope, 0},
		{"other resource", "https://graph.microsoft.com/Mail.Read", "", 65001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body map[string]any
			resp := rawPost(t, conf.Endpoint.TokenURL, url.Values{
				"client_id": {testClient}, "grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {tt.scope},
			}, nil, &body)
			if tt.wantCode != 0 {
				if resp.StatusCode != 400 || body["error"] != "invalid_grant" || body["suberror"] != "consent_required" {
					t.Errorf("got %d %v %v, want 400 invalid_grant consent_required", resp.StatusCode, body["error"], body["suberror"])
				}
				return
			}
			if resp.StatusCode != 200 || body["scope"] != tt.wantScope {
				t.Errorf("got %d scope %v, want 200 %q", resp.StatusCode, body["scope"], tt.wantScope)
			}
			if _, ok := body["id_token"]; ok {
				t.Errorf("refresh with a scope without openid: got an id_token")
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code         int
		wantErr      string
		wantSuberror string
	}{
		{70000, "invalid_grant", "bad_token"},
		{700082, "invalid_grant", ""},
		{50173, "invalid_grant", "bad_token"},
		{70043, "invalid_grant", ""},
		{65001, "invalid_grant", "consent_required"},
		{53003, "invalid_grant", ""},
		{50076, "invalid_grant", "basic_action"},
		{7000112, "unauthorized_client", ""},
		{12345, "invalid_grant", ""},
	}
	for _, tt := range tests {
		t.Run(itoa(tt.code), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, fakeidp.Options{})
			conf := config(s, "organizations")
			tok := login(t, s, conf)
			s.Revoke(tt.code)

			if s.AcceptsRefreshToken(tok.RefreshToken) || s.ValidAccessToken(tok.AccessToken) {
				t.Errorf("after Revoke: AcceptsRefreshToken or ValidAccessToken still true")
			}
			_, err := refresh(conf, tok.RefreshToken)
			re, me := retrieveError(t, err)
			if re.ErrorCode != tt.wantErr || re.Response.StatusCode != 400 {
				t.Errorf("got %d %q, want 400 %q", re.Response.StatusCode, re.ErrorCode, tt.wantErr)
			}
			if !strings.HasPrefix(re.ErrorDescription, "AADSTS"+itoa(tt.code)+": ") {
				t.Errorf("ErrorDescription: got %q", re.ErrorDescription)
			}
			checkShape(t, me, tt.wantErr, tt.code)
			if me.Suberror != tt.wantSuberror {
				t.Errorf("suberror: got %q, want %q", me.Suberror, tt.wantSuberror)
			}
			if tt.code == 53003 && !strings.Contains(me.Claims, "capolids") {
				t.Errorf("claims: got %q, want a capolids challenge", me.Claims)
			}
			var intro map[string]any
			rawPost(t, s.URL+"/introspect", url.Values{"token": {tok.AccessToken}}, nil, &intro)
			if intro["active"] != false {
				t.Errorf("introspect revoked token: got %v", intro)
			}
			// A new sign-in works again.
			tok2 := login(t, s, conf)
			if _, err := refresh(conf, tok2.RefreshToken); err != nil {
				t.Errorf("refresh after a new login: %v", err)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	tok := login(t, s, conf)

	s.FailNext(2, 503, "text/html", "<html>Service Unavailable</html>")
	for i := range 2 {
		_, err := refresh(conf, tok.RefreshToken)
		re, _ := retrieveError(t, err)
		if re.Response.StatusCode != 503 || string(re.Body) != "<html>Service Unavailable</html>" || re.Response.Header.Get("Content-Type") != "text/html" {
			t.Errorf("refresh %d: got %d %q %q, want the injected 503", i, re.Response.StatusCode, re.Response.Header.Get("Content-Type"), re.Body)
		}
	}
	if _, err := refresh(conf, tok.RefreshToken); err != nil {
		t.Errorf("third refresh: %v, want success", err)
	}

	s.FailNext(1, 500, "", "")
	resp := rawPost(t, conf.Endpoint.TokenURL, url.Values{"grant_type": {"refresh_token"}}, nil, nil)
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "" {
		t.Errorf("FailNext with no content type: got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := s.Stats(); got.Refreshes != 4 || got.RefreshOK != 1 {
		t.Errorf("Refreshes, RefreshOK: got %d, %d, want 4, 1", got.Refreshes, got.RefreshOK)
	}
}

func TestConcurrentRefreshOverlap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		strict bool
		wantOK int
	}{
		{"lenient", false, 2},
		{"strict", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, fakeidp.Options{StrictRotation: tt.strict})
			conf := config(s, "organizations")
			tok := login(t, s, conf)
			s.SetTokenDelay(500 * time.Millisecond)
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok := 0
			start := time.Now()
			for range 2 {
				wg.Go(func() {
					if _, err := refresh(conf, tok.RefreshToken); err == nil {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if ok != tt.wantOK {
				t.Errorf("successful concurrent refreshes: got %d, want %d", ok, tt.wantOK)
			}
			// One after the other they would take 1 s.
			if d := time.Since(start); d < 500*time.Millisecond || d > 900*time.Millisecond {
				t.Errorf("two delayed refreshes took %v, want them to overlap (~500ms)", d)
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	tokenURL := s.URL + "/contoso.onmicrosoft.com/oauth2/v2.0/token"
	tests := []struct {
		name     string
		method   string
		ctype    string
		form     url.Values
		wantErr  string
		wantCode int
	}{
		{"GET", "GET", "", nil, "invalid_request", 900561},
		{"JSON body", "POST", "application/json", url.Values{"grant_type": {"refresh_token"}}, "invalid_request", 900144},
		{"no grant_type", "POST", "", url.Values{"client_id": {testClient}}, "invalid_request", 900144},
		{"no client_id", "POST", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "invalid_request", 900144},
		{"password grant", "POST", "", url.Values{"grant_type": {"password"}, "client_id": {testClient}}, "unsupported_grant_type", 70003},
		{"client credentials", "POST", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}}, "invalid_client", 7000218},
		{"unknown refresh token", "POST", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {testClient}, "refresh_token": {"M.C5junk"}}, "invalid_grant", 70000},
		{"no refresh token", "POST", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {testClient}}, "invalid_request", 900144},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tokenURL, strings.NewReader(tt.form.Encode()))
			ct := tt.ctype
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("client-request-id", "0c2d3a8e-1111-4222-8333-444455556666")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantStatus := 400
			if tt.wantErr == "invalid_client" {
				wantStatus = 401
			}
			if resp.StatusCode != wantStatus || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("got %d %q, want %d JSON", resp.StatusCode, resp.Header.Get("Content-Type"), wantStatus)
			}
			var me msError
			if err := json.Unmarshal(body, &me); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			checkShape(t, me, tt.wantErr, tt.wantCode)
			if me.CorrelationID != "0c2d3a8e-1111-4222-8333-444455556666" {
				t.Errorf("correlation_id: got %q, want the client-request-id echoed", me.CorrelationID)
			}
		})
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	tok := login(t, s, conf, oauth2.SetAuthURLParam("login_hint", "carol@contoso.com"))

	s.SetAccessTokenLifetime(time.Millisecond)
	short := login(t, s, conf)
	s.SetAccessTokenLifetime(0)
	if short.ExpiresIn != 1 {
		t.Errorf("expires_in for a 1ms lifetime: got %d, want 1 (never 0)", short.ExpiresIn)
	}
	time.Sleep(5 * time.Millisecond)

	tests := []struct {
		name       string
		token      string
		how        string // post, get, bearer
		wantActive bool
	}{
		{"post with basic auth", tok.AccessToken, "post", true},
		{"get", tok.AccessToken, "get", true},
		{"bearer", tok.AccessToken, "bearer", true},
		{"refresh token", tok.RefreshToken, "post", false},
		{"unknown", "EwBnope", "post", false},
		{"empty", "", "post", false},
		{"expired", short.AccessToken, "post", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req *http.Request
			switch tt.how {
			case "post":
				req, _ = http.NewRequest("POST", s.URL+"/introspect", strings.NewReader(url.Values{"token": {tt.token}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("dovecot", "secret")
			case "get":
				req, _ = http.NewRequest("GET", s.URL+"/introspect?token="+url.QueryEscape(tt.token), nil)
			case "bearer":
				req, _ = http.NewRequest("GET", s.URL+"/introspect", nil)
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if got["active"] != tt.wantActive {
				t.Fatalf("active: got %v, want %v", got["active"], tt.wantActive)
			}
			if !tt.wantActive {
				if len(got) != 1 {
					t.Errorf("inactive answer: got %v, want only active:false", got)
				}
				return
			}
			for k, want := range map[string]any{"username": "carol@contoso.com", "sub": "carol@contoso.com", "email": "carol@contoso.com", "client_id": testClient, "scope": wantScope} {
				if got[k] != want {
					t.Errorf("%s: got %v, want %v", k, got[k], want)
				}
			}
			if exp, _ := got["exp"].(float64); int64(exp) < tok.Expiry.Unix()-1 || int64(exp) > tok.Expiry.Unix()+1 {
				t.Errorf("exp: got %v, want ~%d", got["exp"], tok.Expiry.Unix())
			}
		})
	}
	if got := s.Stats().Introspections; got != len(tests) {
		t.Errorf("Introspections: got %d, want %d", got, len(tests))
	}
}

// deviceCode asks for a device code with a raw POST (x/oauth2 drops "message").
func deviceCode(t *testing.T, conf *oauth2.Config) map[string]any {
	t.Helper()
	var da map[string]any
	resp := rawPost(t, conf.Endpoint.DeviceAuthURL, url.Values{"client_id": {conf.ClientID}, "scope": {strings.Join(conf.Scopes, " ")}}, nil, &da)
	if resp.StatusCode != 200 {
		t.Fatalf("devicecode: got %d %v", resp.StatusCode, da)
	}
	return da
}

func poll(t *testing.T, conf *oauth2.Config, deviceCode string) (int, map[string]any) {
	t.Helper()
	var body map[string]any
	resp := rawPost(t, conf.Endpoint.TokenURL, url.Values{
		"client_id": {conf.ClientID}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode},
	}, nil, &body)
	return resp.StatusCode, body
}

var userCodeRE = regexp.MustCompile(`^[A-Z0-9]{9}$`)

func TestDeviceFlowXOAuth2(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	s.SetDeviceScript("authorization_pending", "slow_down")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if !userCodeRE.MatchString(da.UserCode) || da.VerificationURI != s.URL+"/devicelogin" || da.Interval != 1 {
		t.Errorf("DeviceAuth: got user_code %q verification_uri %q interval %d", da.UserCode, da.VerificationURI, da.Interval)
	}
	if d := time.Until(da.Expiry); d < 890*time.Second || d > 900*time.Second {
		t.Errorf("expiry in %v, want ~900s", d)
	}
	start := time.Now()
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	// 1 s, pending, 1 s, slow_down, 1+5 s, success.
	if d := time.Since(start); d < 7*time.Second || d > 10*time.Second {
		t.Errorf("device flow took %v, want ~8s", d)
	}
	if c := claims(t, tok.Extra("id_token").(string)); c["preferred_username"] != fakeidp.DefaultUser {
		t.Errorf("preferred_username: got %v, want %s", c["preferred_username"], fakeidp.DefaultUser)
	}
	if got := tok.Extra("scope"); got != wantScope {
		t.Errorf("scope: got %q", got)
	}
	if got, want := s.Stats(), (fakeidp.Stats{DeviceCodes: 1, DevicePolls: 3, DeviceOK: 1}); got != want {
		t.Errorf("Stats: got %+v, want %+v", got, want)
	}
	if got := s.TooFastPolls(); got != 0 {
		t.Errorf("TooFastPolls: got %d, want 0 for x/oauth2", got)
	}

	// A client that keeps polling after its token is caught.
	status, body := poll(t, conf, da.DeviceCode)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("poll after success: got %d %v, want 400 invalid_grant", status, body["error"])
	}
	if got := s.Stats().PollsAfterSuccess; got != 1 {
		t.Errorf("PollsAfterSuccess: got %d, want 1", got)
	}
}

func TestDeviceCodeResponse(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{DeviceInterval: 5})
	conf := config(s, "consumers")
	da := deviceCode(t, conf)
	uc, _ := da["user_code"].(string)
	if !userCodeRE.MatchString(uc) {
		t.Errorf("user_code: got %q, want 9 upper-case letters and digits", uc)
	}
	wantMsg := "To sign in, use a web browser to open the page " + s.URL + "/devicelogin and enter the code " + uc + " to authenticate."
	if da["message"] != wantMsg {
		t.Errorf("message: got %q, want %q", da["message"], wantMsg)
	}
	if da["expires_in"] != float64(900) || da["interval"] != float64(5) || da["verification_uri"] != s.URL+"/devicelogin" {
		t.Errorf("got %v", da)
	}
	if _, ok := da["verification_uri_complete"]; ok {
		t.Errorf("verification_uri_complete: Microsoft does not send it")
	}

	tests := []struct {
		name     string
		form     url.Values
		wantErr  string
		wantCode int
	}{
		{"no offline_access", url.Values{"client_id": {testClient}, "scope": {imap}}, "invalid_scope", 70011},
		{"no scope", url.Values{"client_id": {testClient}}, "invalid_request", 900144},
		{"unknown client", url.Values{"client_id": {"nobody"}, "scope": {"offline_access " + imap}}, "unauthorized_client", 700016},
		{"secret", url.Values{"client_id": {testClient}, "scope": {"offline_access"}, "client_secret": {"x"}}, "invalid_client", 700025},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var me msError
			rawPost(t, conf.Endpoint.DeviceAuthURL, tt.form, nil, &me)
			checkShape(t, me, tt.wantErr, tt.wantCode)
		})
	}
}

func TestDeviceScriptSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		step     string
		wantCode int
		final    bool // every later poll gets the same error
	}{
		{"authorization_pending", 70016, false},
		{"slow_down", 70016, false},
		{"authorization_declined", 65004, true},
		{"expired_token", 70019, true},
		{"bad_verification_code", 70018, true},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			s := newServer(t, fakeidp.Options{})
			conf := config(s, "organizations")
			s.SetDeviceScript(tt.step)
			dc := deviceCode(t, conf)["device_code"].(string)

			status, body := poll(t, conf, dc)
			if status != 400 || body["error"] != tt.step || body["error_codes"].([]any)[0] != float64(tt.wantCode) {
				t.Errorf("first poll: got %d %v %v, want 400 %s [%d]", status, body["error"], body["error_codes"], tt.step, tt.wantCode)
			}
			status, body = poll(t, conf, dc)
			if tt.final {
				if status != 400 || body["error"] != tt.step {
					t.Errorf("second poll: got %d %v, want %s again", status, body["error"], tt.step)
				}
			} else if status != 200 || body["access_token"] == nil {
				t.Errorf("second poll: got %d %v, want tokens", status, body["error"])
			}
			if got := s.TooFastPolls(); got != 2 {
				t.Errorf("TooFastPolls: got %d, want 2 (polled without waiting)", got)
			}
		})
	}

	t.Run("unknown device code", func(t *testing.T) {
		s := newServer(t, fakeidp.Options{})
		status, body := poll(t, config(s, "organizations"), "DAQABIQEAAABnope")
		if status != 400 || body["error"] != "bad_verification_code" {
			t.Errorf("got %d %v, want bad_verification_code", status, body["error"])
		}
	})
	t.Run("other tenant", func(t *testing.T) {
		s := newServer(t, fakeidp.Options{})
		dc := deviceCode(t, config(s, "organizations"))["device_code"].(string)
		status, body := poll(t, config(s, "common"), dc)
		if status != 400 || body["error"] != "bad_verification_code" {
			t.Errorf("got %d %v, want bad_verification_code", status, body["error"])
		}
	})
}

func TestManualDeviceApproval(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	s.ManualDeviceApproval(true)
	da := deviceCode(t, conf)
	dc, uc := da["device_code"].(string), da["user_code"].(string)

	for range 2 {
		if status, body := poll(t, conf, dc); status != 400 || body["error"] != "authorization_pending" {
			t.Fatalf("before approval: got %d %v, want authorization_pending", status, body["error"])
		}
	}
	if got := s.PendingUserCodes(); len(got) != 1 || got[0] != uc {
		t.Errorf("PendingUserCodes: got %v, want [%s]", got, uc)
	}
	if err := s.ApproveDevice("NOPE12345", ""); err == nil {
		t.Errorf("ApproveDevice(unknown): got nil error")
	}
	if err := s.ApproveDevice(strings.ToLower(uc[:4]+"-"+uc[4:]), "dave@contoso.com"); err != nil {
		t.Fatalf("ApproveDevice: %v", err)
	}
	status, body := poll(t, conf, dc)
	if status != 200 {
		t.Fatalf("after approval: got %d %v", status, body["error"])
	}
	if c := claims(t, body["id_token"].(string)); c["preferred_username"] != "dave@contoso.com" {
		t.Errorf("preferred_username: got %v", c["preferred_username"])
	}
	if err := s.ApproveDevice(uc, ""); err == nil {
		t.Errorf("ApproveDevice(redeemed): got nil error")
	}
	if got := s.PendingUserCodes(); len(got) != 0 {
		t.Errorf("PendingUserCodes after success: got %v", got)
	}
}

func TestDeviceLoginPage(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	conf := config(s, "organizations")
	s.ManualDeviceApproval(true)
	da := deviceCode(t, conf)
	resp, err := http.PostForm(s.URL+"/devicelogin", url.Values{"otc": {da["user_code"].(string)}, "login": {"erin@contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /devicelogin: got %d", resp.StatusCode)
	}
	if status, _ := poll(t, conf, da["device_code"].(string)); status != 200 {
		t.Errorf("poll after page approval: got %d, want 200", status)
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	// NewHandler + SetURL, as the standalone command uses it.
	s := fakeidp.NewHandler(fakeidp.Options{ClientID: testClient, StrictRotation: true})
	ts := httptest.NewServer(s)
	defer ts.Close()
	s.SetURL(ts.URL + "/")
	if s.URL != ts.URL {
		t.Fatalf("URL: got %q, want %q", s.URL, ts.URL)
	}
	conf := config(s, "organizations")

	ctl := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+"/_fake/"+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	tok := login(t, s, conf)

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		check      func(t *testing.T)
	}{
		{"lifetime", "POST", "lifetime?seconds=120", "", 200, func(t *testing.T) {
			if got := login(t, s, conf).ExpiresIn; got != 120 {
				t.Errorf("expires_in: got %d, want 120", got)
			}
		}},
		{"fail", "POST", "fail?n=1&status=429&ctype=application/json", `{"error":"temporarily_unavailable"}`, 200, func(t *testing.T) {
			_, err := refresh(conf, tok.RefreshToken)
			re, _ := retrieveError(t, err)
			if re.Response.StatusCode != 429 || re.ErrorCode != "temporarily_unavailable" {
				t.Errorf("got %d %q, want the injected 429", re.Response.StatusCode, re.ErrorCode)
			}
		}},
		{"device script", "POST", "device-script?steps=authorization_declined", "", 200, func(t *testing.T) {
			dc := deviceCode(t, conf)["device_code"].(string)
			if _, body := poll(t, conf, dc); body["error"] != "authorization_declined" {
				t.Errorf("poll: got %v, want authorization_declined", body["error"])
			}
		}},
		{"bad step", "POST", "device-script?steps=nope", "", 400, nil},
		{"manual approval", "POST", "manual-approval?on=1", "", 200, nil},
		{"approve", "POST", "approve?user_code=NOPE&login=x", "", 404, nil},
		{"approve pending", "POST", "", "", 0, func(t *testing.T) {
			da := deviceCode(t, conf)
			_, pending := ctl("GET", "pending", "")
			if !strings.Contains(pending, da["user_code"].(string)) {
				t.Errorf("pending: got %s, want %s in it", pending, da["user_code"])
			}
			if status, _ := ctl("POST", "approve?user_code="+da["user_code"].(string)+"&login=frank@contoso.com", ""); status != 200 {
				t.Errorf("approve: got %d", status)
			}
			if status, body := poll(t, conf, da["device_code"].(string)); status != 200 {
				t.Errorf("poll after approve: got %d %v", status, body["error"])
			}
		}},
		{"deny", "POST", "deny?error=access_denied&description=AADSTS65004:+declined", "", 200, func(t *testing.T) {
			q := redirected(t, authorize(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
			if q.Get("error") != "access_denied" || q.Get("error_description") != "AADSTS65004: declined" {
				t.Errorf("got %v", q)
			}
		}},
		{"revoke", "POST", "revoke?aadsts=50173", "", 200, func(t *testing.T) {
			_, err := refresh(conf, tok.RefreshToken)
			_, me := retrieveError(t, err)
			if me.code() != 50173 {
				t.Errorf("error_codes: got %v, want [50173]", me.ErrorCodes)
			}
		}},
		{"revoke bad", "POST", "revoke?aadsts=x", "", 400, nil},
		{"stats wrong method", "POST", "stats", "", 405, nil},
		{"unknown", "POST", "nope", "", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				status, body := ctl(tt.method, tt.path, tt.body)
				if status != tt.wantStatus {
					t.Fatalf("%s /_fake/%s: got %d %q, want %d", tt.method, tt.path, status, body, tt.wantStatus)
				}
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}

	status, body := ctl("GET", "stats", "")
	var st struct {
		fakeidp.Stats
		TooFastPolls int
		LastTenant   string
	}
	if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil {
		t.Fatalf("stats: got %d %q %v", status, body, err)
	}
	if st.Stats != s.Stats() || st.LastTenant != "organizations" || st.Refreshes != 2 || st.DeviceCodes != 2 {
		t.Errorf("stats: got %+v, want %+v with 2 refreshes and 2 device codes", st, s.Stats())
	}
	if status, body := ctl("GET", "last-authorize", ""); status != 200 || !strings.Contains(body, `"client_id":["`+testClient+`"]`) {
		t.Errorf("last-authorize: got %d %s", status, body)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	resp, err := http.Get(s.URL + "/consumers/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	json.NewDecoder(resp.Body).Decode(&d)
	if d["token_endpoint"] != s.URL+"/consumers/oauth2/v2.0/token" || d["issuer"] != "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0" {
		t.Errorf("discovery: got %v", d)
	}
}

// Secrets lists every code and token the fake issued, used or not, and the
// registered app secrets; never a user code.
func TestSecrets(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	s.AddApp(fakeidp.App{ClientID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Secret: "app-secret~Value.0123456789"})
	conf := config(s, "organizations")

	verifier := oauth2.GenerateVerifier()
	code := redirected(t, authorize(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))).Get("code")
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	da, err := conf.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	got := s.Secrets()
	want := []string{code, tok.AccessToken, tok.RefreshToken, refreshed.AccessToken, refreshed.RefreshToken, da.DeviceCode, "app-secret~Value.0123456789"}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("Secrets lacks %.8q... (%d chars)", w, len(w))
		}
	}
	if len(got) != len(want) || slices.Contains(got, da.UserCode) {
		t.Errorf("Secrets: got %d values, want exactly these %d (no user code)", len(got), len(want))
	}
}
