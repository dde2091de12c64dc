package fakeidp

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// authCodeLifetime is how long an authorization code can be redeemed.
const authCodeLifetime = 10 * time.Minute

type authCode struct {
	clientID    string
	redirectURI string // exactly as sent to /authorize
	challenge   string
	scopes      []string
	login       string
	tenant      string
	nonce       string
	expires     time.Time
	used        bool
}

// challengeRE matches BASE64URL(SHA256(verifier)): 43 unpadded characters.
var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// checkRedirectURI applies Entra ID's rules for a public client's loopback
// redirect: http or https, host localhost or 127.0.0.1 (not [::1]), any
// port, any path, no user info or fragment, at most 256 characters.
func checkRedirectURI(raw string) (*url.URL, bool) {
	if raw == "" || len(raw) > 256 {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, false
	}
	if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" {
		return nil, false
	}
	if p := u.Port(); p != "" {
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
	}
	return u, true
}

// authorizeError is an error sent back to the redirect URI.
type authorizeError struct {
	err  string
	code int
	msg  string
}

// handleAuthorize is GET (or POST) /{tenant}/oauth2/v2.0/authorize. There
// is no sign-in page: a valid request is approved at once for login_hint
// (or Options.DefaultUser) and redirected back with a code.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.ParseForm()
	q := r.Form

	s.mu.Lock()
	s.lastAuthorize = cloneValues(q)
	s.lastTenant = tenant
	s.mu.Unlock()

	clientID := q.Get("client_id")
	switch {
	case clientID == "":
		s.errorPage(w, r, 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	case s.opt.ClientID != "" && clientID != s.opt.ClientID:
		s.errorPage(w, r, 700016, errUnknownClient(clientID, tenant).msg)
		return
	}
	rawRedirect := q.Get("redirect_uri")
	if rawRedirect == "" {
		s.errorPage(w, r, 900144, "The request body must contain the following parameter: 'redirect_uri'.")
		return
	}
	redirect, ok := checkRedirectURI(rawRedirect)
	if !ok {
		s.errorPage(w, r, 50011, fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this. [fake: only http(s)://localhost or http(s)://127.0.0.1, any port, are registered]", rawRedirect, clientID))
		return
	}

	mode := q.Get("response_mode")
	switch mode {
	case "", "query", "fragment", "form_post":
	default:
		mode = "query"
		s.redirectError(w, r, redirect, mode, q.Get("state"), authorizeError{"invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. [fake: response_mode must be query, fragment or form_post]"})
		return
	}

	s.mu.Lock()
	deny := s.deny
	s.deny = nil
	s.mu.Unlock()
	if deny != nil {
		params := url.Values{"error": {deny.code}}
		if deny.desc != "" {
			params.Set("error_description", deny.desc)
		}
		if st := q.Get("state"); st != "" {
			params.Set("state", st)
		}
		s.redirect(w, r, redirect, mode, params)
		return
	}

	scopes := splitScopes(q.Get("scope"))
	if e := checkAuthorizeParams(q, scopes); e != nil {
		s.redirectError(w, r, redirect, mode, q.Get("state"), *e)
		return
	}

	login := q.Get("login_hint")
	if login == "" {
		login = s.opt.DefaultUser
	}
	code := newAuthCode()
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID:    clientID,
		redirectURI: rawRedirect,
		challenge:   q.Get("code_challenge"),
		scopes:      scopes,
		login:       login,
		tenant:      tenant,
		nonce:       q.Get("nonce"),
		expires:     time.Now().Add(authCodeLifetime),
	}
	s.mu.Unlock()
	s.redirect(w, r, redirect, mode, url.Values{"code": {code}, "state": {q.Get("state")}})
}

// checkAuthorizeParams checks what oauth2mail must always send. Entra ID
// itself tolerates a missing state, PKCE "plain" and a missing
// offline_access; the fake does not, to catch such mistakes.
func checkAuthorizeParams(q url.Values, scopes []string) *authorizeError {
	switch rt := q.Get("response_type"); {
	case rt == "":
		return &authorizeError{"invalid_request", 900144, "The request body must contain the following parameter: 'response_type'."}
	case rt != "code":
		return &authorizeError{"unsupported_response_type", 700054, fmt.Sprintf("response_type '%s' is not enabled for the application. [fake: only response_type=code is supported]", rt)}
	}
	if len(scopes) == 0 {
		return &authorizeError{"invalid_request", 900144, "The request body must contain the following parameter: 'scope'."}
	}
	if !hasScope(scopes, "offline_access") {
		return &authorizeError{"invalid_scope", 70011, "The provided value for the input parameter 'scope' isn't valid. [fake: offline_access is required, or no refresh token would be issued]"}
	}
	if q.Get("code_challenge") == "" {
		return &authorizeError{"invalid_request", 90014, "The required field 'code_challenge' is missing from the credential. Ensure that you have all the necessary parameters for the login request. [fake: PKCE with S256 is required]"}
	}
	if m := q.Get("code_challenge_method"); m != "S256" {
		if m == "" {
			m = "(missing, meaning plain)"
		}
		return &authorizeError{"invalid_request", 9002313, fmt.Sprintf("Invalid request. Request is malformed or invalid. [fake: code_challenge_method %s; only S256 is accepted]", m)}
	}
	if !challengeRE.MatchString(q.Get("code_challenge")) {
		return &authorizeError{"invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [fake: code_challenge must be 43 base64url characters, the S256 hash of the verifier]"}
	}
	if q.Get("state") == "" {
		return &authorizeError{"invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [fake: state is required]"}
	}
	return nil
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirect *url.URL, mode, state string, e authorizeError) {
	trace, corr := ids(r)
	params := url.Values{
		"error":             {e.err},
		"error_description": {description(e.code, e.msg, trace, corr, time.Now().UTC().Format(timestampLayout))},
		"error_uri":         {errorURI(e.code)},
	}
	if state != "" {
		params.Set("state", state)
	}
	s.debugf("  -> redirect %s AADSTS%d", e.err, e.code)
	s.redirect(w, r, redirect, mode, params)
}

// redirect sends params back to the client's redirect URI in the
// requested response_mode. A redirect URI without a path gets "/", as
// Entra ID does.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, redirect *url.URL, mode string, params url.Values) {
	u := *redirect
	if u.Path == "" {
		u.Path = "/"
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	switch mode {
	case "form_post":
		var b strings.Builder
		b.WriteString("<!DOCTYPE html>\n<html><head><title>Working...</title></head><body onload=\"document.forms[0].submit()\">\n")
		fmt.Fprintf(&b, "<form method=\"POST\" name=\"hiddenform\" action=\"%s\">\n", html.EscapeString(u.String()))
		for k, vv := range params {
			for _, v := range vv {
				fmt.Fprintf(&b, "<input type=\"hidden\" name=\"%s\" value=\"%s\" />\n", html.EscapeString(k), html.EscapeString(v))
			}
		}
		b.WriteString("<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\" /></noscript>\n</form></body></html>\n")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(b.String()))
		return
	case "fragment":
		u.Fragment = ""
		u.RawFragment = ""
		http.Redirect(w, r, u.String()+"#"+params.Encode(), http.StatusFound)
		return
	}
	q := u.Query()
	for k, vv := range params {
		q[k] = vv
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// errorPage is what Entra ID shows in the browser when it cannot redirect
// back (unknown client, unregistered redirect URI).
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	trace, corr := ids(r)
	ts := time.Now().UTC().Format(timestampLayout)
	s.debugf("  -> error page AADSTS%d", code)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><title>Sign in to your account</title></head><body>
<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error">AADSTS%d: %s</p>
<table>
<tr><td>Request Id</td><td>%s</td></tr>
<tr><td>Correlation Id</td><td>%s</td></tr>
<tr><td>Timestamp</td><td>%s</td></tr>
</table>
</body></html>
`, code, html.EscapeString(msg), trace, corr, ts)
}

// handleDeviceLogin is the verification_uri: a form where a user code can
// be approved for a login (the fake has no passwords).
func (s *Server) handleDeviceLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	msg := ""
	if r.Method == http.MethodPost {
		r.ParseForm()
		if err := s.ApproveDevice(r.PostForm.Get("otc"), r.PostForm.Get("login")); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			msg = "<p id=\"error\">" + html.EscapeString(err.Error()) + "</p>"
		} else {
			msg = "<p id=\"done\">You have signed in to oauth2mail on your device. You may now close this window.</p>"
		}
	}
	fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><title>Enter code</title></head><body>
<h1>Enter code</h1>
%s
<form method="POST" action="/devicelogin">
<p>Enter the code displayed on your app or device: <input name="otc" autocomplete="off"></p>
<p>Sign in as: <input name="login" placeholder="%s"></p>
<input type="submit" value="Next">
</form>
</body></html>
`, msg, html.EscapeString(s.opt.DefaultUser))
}
