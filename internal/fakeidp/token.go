package fakeidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Grant types.
const (
	grantAuthCode      = "authorization_code"
	grantDevice        = "urn:ietf:params:oauth:grant-type:device_code"
	grantDeviceShort   = "device_code" // what MSAL sends; Entra ID accepts it
	grantRefresh       = "refresh_token"
	grantClientCreds   = "client_credentials"
	formContentType    = "application/x-www-form-urlencoded"
	maxTokenFormLength = 1 << 20
)

type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// postForm returns the urlencoded request body; a body of another
// content type reads as empty, so the request fails for a missing
// grant_type as it would at Entra ID.
func postForm(r *http.Request) url.Values {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != formContentType {
		return url.Values{}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxTokenFormLength)
	if err := r.ParseForm(); err != nil {
		return url.Values{}
	}
	return r.PostForm
}

// handleToken is POST /{tenant}/oauth2/v2.0/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	var form url.Values
	if r.Method == http.MethodPost {
		form = postForm(r)
	}
	grantType := form.Get("grant_type")
	hasSecret := r.Header.Get("Authorization") != "" || form.Get("client_secret") != "" || form.Get("client_assertion") != ""
	s.debugf("  grant_type=%q", grantType)

	// Count the attempt and take a FailNext slot in arrival order.
	s.mu.Lock()
	s.lastTenant = tenant
	switch grantType {
	case grantRefresh:
		s.stats.Refreshes++
	case grantAuthCode:
		s.stats.AuthCodes++
	case grantDevice, grantDeviceShort:
		s.stats.DevicePolls++
	case grantClientCreds:
		s.stats.ClientCredentials++
	}
	if hasSecret {
		s.stats.BasicAuthAttempts++
	}
	delay := s.tokenDelay
	fail, failing := s.fail, s.fail.n > 0
	if failing {
		s.fail.n--
	}
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if failing {
		if fail.ctype != "" {
			w.Header().Set("Content-Type", fail.ctype)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing either
		}
		s.debugf("  -> FailNext %d", fail.status)
		w.WriteHeader(fail.status)
		w.Write([]byte(fail.body))
		return
	}

	if r.Method != http.MethodPost {
		s.writeError(w, r, errNotPost(r.Method))
		return
	}
	if app, ok := s.app(form.Get("client_id")); ok {
		resp, e := s.redeemClientCredentials(r, form, tenant, app, time.Now())
		if e != nil {
			s.writeError(w, r, *e)
			return
		}
		s.debugf("  -> 200 app token")
		writeJSON(w, http.StatusOK, resp)
		return
	}
	if hasSecret {
		s.writeError(w, r, errPublicClientSecret())
		return
	}
	if grantType == "" {
		s.writeError(w, r, errMissing("grant_type"))
		return
	}
	_, cerr := s.checkClientID(form, tenant)
	if cerr != nil {
		s.writeError(w, r, *cerr)
		return
	}

	now := time.Now()
	var (
		resp tokenResponse
		e    *idpError
	)
	switch grantType {
	case grantAuthCode:
		resp, e = s.redeemCode(form, now)
	case grantDevice, grantDeviceShort:
		resp, e = s.redeemDevice(form, tenant, now)
	case grantRefresh:
		resp, e = s.redeemRefresh(form, now)
	case grantClientCreds:
		e = &idpError{status: 401, err: "invalid_client", code: 7000218,
			msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	default:
		e = &idpError{status: 400, err: "unsupported_grant_type", code: 70003,
			msg: fmt.Sprintf("The app requested an unsupported grant type '%s'.", grantType)}
	}
	if e != nil {
		s.writeError(w, r, *e)
		return
	}
	s.debugf("  -> 200 tokens")
	writeJSON(w, http.StatusOK, resp)
}

// verifierRE is RFC 7636's code_verifier: 43 to 128 unreserved characters.
var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s *Server) redeemCode(form url.Values, now time.Time) (tokenResponse, *idpError) {
	code := form.Get("code")
	if code == "" {
		return tokenResponse{}, ptr(errMissing("code"))
	}
	redirect := form.Get("redirect_uri")
	if redirect == "" {
		return tokenResponse{}, ptr(errMissing("redirect_uri"))
	}
	verifier := form.Get("code_verifier")
	if verifier == "" {
		return tokenResponse{}, ptr(errMissing("code_verifier"))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[code]
	switch {
	case c == nil:
		e := errBadGrant("code")
		e.suberror = ""
		return tokenResponse{}, &e
	case c.used:
		return tokenResponse{}, &idpError{status: 400, err: "invalid_grant", code: 54005,
			msg: "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."}
	case !now.Before(c.expires):
		return tokenResponse{}, &idpError{status: 400, err: "invalid_grant", code: 70008,
			msg: "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."}
	case c.clientID != form.Get("client_id"):
		return tokenResponse{}, &idpError{status: 400, err: "invalid_grant", code: 70000,
			msg: "The provided value for the input parameter 'code' is not valid. [fake: the code was issued to another client_id]"}
	case c.redirectURI != redirect:
		return tokenResponse{}, &idpError{status: 400, err: "invalid_grant", code: 500112,
			msg: fmt.Sprintf("The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", redirect, c.redirectURI)}
	case !verifierRE.MatchString(verifier) || subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(c.challenge)) != 1:
		return tokenResponse{}, &idpError{status: 400, err: "invalid_grant", code: 501481,
			msg: "The Code_Verifier does not match the code_challenge supplied in the authorization request."}
	}
	granted, openid, missing := grantScopes(splitScopes(form.Get("scope")), c.scopes)
	if len(missing) > 0 {
		return tokenResponse{}, ptr(errConsent(c.clientID, strings.Join(missing, " ")))
	}
	c.used = true
	s.stats.AuthCodeOK++
	g := s.newGrant(c.login, c.clientID, c.tenant, c.scopes, now)
	return s.issue(g, granted, openid, c.nonce, now), nil
}

func (s *Server) redeemDevice(form url.Values, tenant string, now time.Time) (tokenResponse, *idpError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.pollDevice(form, tenant, now)
	if e != nil {
		return tokenResponse{}, e
	}
	granted, openid, missing := grantScopes(splitScopes(form.Get("scope")), g.consented)
	if len(missing) > 0 {
		return tokenResponse{}, ptr(errConsent(g.clientID, strings.Join(missing, " ")))
	}
	s.stats.DeviceOK++
	return s.issue(g, granted, openid, "", now), nil
}

func (s *Server) redeemRefresh(form url.Values, now time.Time) (tokenResponse, *idpError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return tokenResponse{}, ptr(errMissing("refresh_token"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.rts[rt]
	if rec == nil {
		return tokenResponse{}, ptr(errBadGrant("refresh_token"))
	}
	g := rec.g
	if rec.revoked != 0 {
		return tokenResponse{}, ptr(revocationError(rec.revoked, g.clientID, rec.issued, now))
	}
	if g.clientID != form.Get("client_id") {
		e := errBadGrant("refresh_token")
		e.msg += " [fake: the refresh token was issued to another client_id]"
		return tokenResponse{}, &e
	}
	if s.opt.StrictRotation && g.newestRT != rt {
		e := errBadGrant("refresh_token")
		e.msg += " [fake: StrictRotation: a newer refresh token of this grant has been issued]"
		return tokenResponse{}, &e
	}
	granted, openid, missing := grantScopes(splitScopes(form.Get("scope")), g.consented)
	if len(missing) > 0 {
		return tokenResponse{}, ptr(errConsent(g.clientID, strings.Join(missing, " ")))
	}
	s.stats.RefreshOK++
	return s.issue(g, granted, openid, "", now), nil
}

// newGrant records a sign-in. Called with s.mu held.
func (s *Server) newGrant(login, clientID, tenant string, consented []string, now time.Time) *grant {
	return &grant{login: login, clientID: clientID, tenant: tenant, consented: consented, issued: now}
}

// issue mints an access token, a rotated refresh token and, if asked for,
// an ID token. Called with s.mu held.
func (s *Server) issue(g *grant, granted []string, openid bool, nonce string, now time.Time) tokenResponse {
	resp := s.issueAccess(g, granted, now)
	rt := newRefreshToken()
	s.rts[rt] = &refreshToken{g: g, issued: now}
	g.newestRT = rt
	resp.RefreshToken = rt
	if openid {
		resp.IDToken = idToken(g, nonce, now)
	}
	return resp
}

// issueAccess mints an access token alone (app-only tokens have no
// refresh token). Called with s.mu held.
func (s *Server) issueAccess(g *grant, granted []string, now time.Time) tokenResponse {
	scope := strings.Join(granted, " ")
	life := s.atLifetime
	at := newAccessToken()
	s.ats[at] = &accessToken{g: g, scope: scope, issued: now, expires: now.Add(life)}
	secs := max(int(life/time.Second), 1) // 0 would mean "never expires" to clients
	return tokenResponse{
		TokenType:    "Bearer",
		Scope:        scope,
		ExpiresIn:    secs,
		ExtExpiresIn: secs,
		AccessToken:  at,
	}
}

func ptr[T any](v T) *T { return &v }
