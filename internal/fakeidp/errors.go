package fakeidp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// idpError is one error as the token or devicecode endpoint returns it.
type idpError struct {
	status   int    // HTTP status: 400, or 401 for invalid_client
	err      string // RFC 6749 "error"
	code     int    // AADSTS number
	msg      string // description text after "AADSTSnnn: "
	suberror string
	claims   string
}

// errorJSON is the body Entra ID sends with a token endpoint error.
type errorJSON struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror,omitempty"`
	Claims           string `json:"claims,omitempty"`
}

// timestampLayout is how Entra ID prints times in errors: "2026-01-05 10:20:30Z".
const timestampLayout = "2006-01-02 15:04:05Z"

// issuedLayout is how Entra ID prints token issue dates inside descriptions.
const issuedLayout = "2006-01-02T15:04:05.0000000Z"

// ids returns a fresh trace id and the correlation id: the client's
// client-request-id header when it sent one, as Entra ID echoes it.
func ids(r *http.Request) (trace, corr string) {
	trace = newUUID()
	corr = r.Header.Get("client-request-id")
	if corr == "" || len(corr) > 64 {
		corr = newUUID()
	}
	return trace, corr
}

// description renders "AADSTSnnn: msg\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …".
func description(code int, msg, trace, corr, ts string) string {
	return fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, msg, trace, corr, ts)
}

func errorURI(code int) string {
	return "https://login.microsoftonline.com/error?code=" + strconv.Itoa(code)
}

func (e idpError) body(r *http.Request, now time.Time) errorJSON {
	trace, corr := ids(r)
	ts := now.UTC().Format(timestampLayout)
	return errorJSON{
		Error:            e.err,
		ErrorDescription: description(e.code, e.msg, trace, corr, ts),
		ErrorCodes:       []int{e.code},
		Timestamp:        ts,
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         errorURI(e.code),
		Suberror:         e.suberror,
		Claims:           e.claims,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e idpError) {
	b := e.body(r, time.Now())
	w.Header().Set("x-ms-request-id", b.TraceID)
	s.debugf("  -> %d %s AADSTS%d", e.status, e.err, e.code)
	writeJSON(w, e.status, b)
}

// Errors that do not depend on state.

func errNotPost(method string) idpError {
	return idpError{status: 400, err: "invalid_request", code: 900561,
		msg: "The endpoint only accepts POST requests. Received a " + method + " request."}
}

// checkClientID returns the request's client_id, or the error Entra ID
// gives when it is missing or not the registered one.
func (s *Server) checkClientID(form url.Values, tenant string) (string, *idpError) {
	clientID := form.Get("client_id")
	if clientID == "" {
		return "", ptr(errMissing("client_id"))
	}
	if s.opt.ClientID != "" && clientID != s.opt.ClientID {
		return "", ptr(errUnknownClient(clientID, tenant))
	}
	return clientID, nil
}

func errMissing(param string) idpError {
	return idpError{status: 400, err: "invalid_request", code: 900144,
		msg: fmt.Sprintf("The request body must contain the following parameter: '%s'.", param)}
}

func errPublicClientSecret() idpError {
	return idpError{status: 401, err: "invalid_client", code: 700025,
		msg: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."}
}

func errUnknownClient(clientID, tenant string) idpError {
	return idpError{status: 400, err: "unauthorized_client", code: 700016,
		msg: fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant)}
}

func errBadGrant(param string) idpError {
	return idpError{status: 400, err: "invalid_grant", code: 70000, suberror: "bad_token",
		msg: fmt.Sprintf("The provided value for the input parameter '%s' or 'assertion' is not valid.", param)}
}

func errConsent(clientID string, scopes string) idpError {
	return idpError{status: 400, err: "invalid_grant", code: 65001, suberror: "consent_required",
		msg: fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named 'oauth2mail'. Send an interactive authorization request for this user and resource. [fake: not consented: %s]", clientID, scopes)}
}

// revocationError is the refresh error for a token revoked with Revoke(code).
func revocationError(code int, clientID string, issued, now time.Time) idpError {
	iss := issued.UTC().Format(issuedLayout)
	e := idpError{status: 400, err: "invalid_grant", code: code}
	switch code {
	case 70000:
		e.suberror = "bad_token"
		e.msg = "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid."
	case 70008:
		e.msg = "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."
	case 700082:
		e.msg = fmt.Sprintf("The refresh token has expired due to inactivity. The token was issued on %s and was inactive for 90.00:00:00.", iss)
	case 700084:
		e.msg = fmt.Sprintf("The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on %s.", iss)
	case 50173:
		e.suberror = "bad_token"
		e.msg = fmt.Sprintf("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '%s' and the TokensValidFrom date (before which tokens are not valid) for this user is '%s'.", iss, now.UTC().Format(issuedLayout))
	case 70043:
		e.msg = fmt.Sprintf("The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on %s and the maximum allowed lifetime for this request is 43200.", iss)
	case 65001:
		e.suberror = "consent_required"
		e.msg = fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named 'oauth2mail'. Send an interactive authorization request for this user and resource.", clientID)
	case 53003:
		e.msg = "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."
		e.claims = `{"access_token":{"capolids":{"essential":true,"values":["` + newUUID() + `"]}}}`
	case 50076:
		e.suberror = "basic_action"
		e.msg = "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access 'https://outlook.office.com'."
	case 50079:
		e.suberror = "basic_action"
		e.msg = "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access 'https://outlook.office.com'."
	case 50057:
		e.msg = "The user account is disabled."
	case 7000112:
		e.err = "unauthorized_client"
		e.msg = fmt.Sprintf("Application '%s'(oauth2mail) is disabled.", clientID)
	case 700016:
		return errUnknownClient(clientID, "organizations")
	default:
		e.msg = "The refresh token has been revoked. [fake: Revoke was called with this code]"
	}
	return e
}

// Device flow errors (RFC 8628 error values, Entra ID descriptions).

func errDevicePending() idpError {
	return idpError{status: 400, err: "authorization_pending", code: 70016,
		msg: "OAuth 2.0 device flow error. Authorization is pending. Continue polling."}
}

func errDeviceSlowDown() idpError {
	return idpError{status: 400, err: "slow_down", code: 70016,
		msg: "OAuth 2.0 device flow error. Authorization is pending. Polling too frequently: slow down. [fake: slow_down is not documented by Microsoft]"}
}

func errDeviceDeclined() idpError {
	return idpError{status: 400, err: "authorization_declined", code: 65004,
		msg: "User declined to consent to access the app. [fake: the device code authorization request was declined]"}
}

func errDeviceExpired() idpError {
	return idpError{status: 400, err: "expired_token", code: 70019,
		msg: "Verification code expired."}
}

func errDeviceBadCode() idpError {
	return idpError{status: 400, err: "bad_verification_code", code: 70018,
		msg: "Invalid verification code. [fake: the device_code is not known for this client and tenant]"}
}

func errDeviceRedeemed() idpError {
	return idpError{status: 400, err: "invalid_grant", code: 70000,
		msg: "The provided value for the input parameter 'device_code' is not valid. [fake: this device code already returned tokens; a client must stop polling at the first token response]"}
}
