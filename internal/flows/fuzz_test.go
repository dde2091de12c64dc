package flows

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// The fuzz targets answer the real flows (refresh, code redemption, the
// device flow, MSAL's client credentials) with fuzzed HTTP answers from an
// in-memory RoundTripper under the guarded client users get. Properties:
// no panic; a token with an access token, or an *Error whose message,
// fix and -v details are each one bounded line; and the fake token values
// of the seeds never show in the message or the fix.

// Fake token values in the seed bodies: neither may show in an error.
const (
	fakeAccess  = "FAKEaccessTOKEN-4f9c2e7b8a1d0e3f5a6b"
	fakeRefresh = "FAKErefreshTOKEN-9b3e5d1c7a2f6e0d4c8a"
)

// roundTrip answers requests in memory.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fuzzClient is the guarded client over rt.
func fuzzClient(rt roundTrip) *http.Client { return NewHTTPClient(rt, time.Minute) }

// reply is an HTTP answer: status (100-599; another number is mapped there),
// Content-Type,
// body; a 3xx redirects to the body's first line.
func reply(r *http.Request, status int, ctype, body string) *http.Response {
	if status < 100 || status > 599 {
		status = 100 + (status%500+500)%500
	}
	h := http.Header{}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	if status >= 300 && status <= 399 {
		loc, _, _ := strings.Cut(body, "\n")
		h.Set("Location", loc)
	}
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: -1, Request: r,
	}
}

// unreachable is what a request gets when the script has no answer left.
var unreachable = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// maxErrorLine bounds what an *Error shows: its message, fix, and the
// description and IDs that -v adds.
const maxErrorLine = 1024

// checkOutcome asserts the property of every flow.
func checkOutcome(t *testing.T, tok *oauth2.Token, err error) {
	t.Helper()
	if err == nil {
		if tok == nil || tok.AccessToken == "" {
			t.Fatalf("no error and no access token: %#v", tok)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if e.Kind < KindTemporary || e.Kind > KindBug {
		t.Fatalf("kind %d: %v", e.Kind, e)
	}
	for _, f := range []struct{ name, text string }{
		{"message", e.Error()}, {"fix", e.Hint("work")},
		{"description", e.Description}, {"trace ID", e.TraceID}, {"correlation ID", e.Correlation},
	} {
		switch {
		case strings.ContainsAny(f.text, "\r\n"):
			t.Fatalf("the %s is not one line: %q", f.name, f.text)
		case len(f.text) > maxErrorLine:
			t.Fatalf("the %s has %d bytes: %.200q", f.name, len(f.text), f.text)
		}
	}
	shown := e.Error() + "\n" + e.Hint("work")
	for _, secret := range []string{fakeAccess, fakeRefresh} {
		for i := 0; i+16 <= len(secret); i++ {
			if strings.Contains(shown, secret[i:i+16]) {
				t.Fatalf("the error shows %q of a token: %q", secret[i:i+16], shown)
			}
		}
	}
}

func aadBody(code string, aadsts int, desc string) string {
	return fmt.Sprintf(`{"error":%q,"error_description":"AADSTS%d: %s\r\nTrace ID: 0000aaaa-1111-2222-3333-444455556666\r\nCorrelation ID: 2222bbbb-3333-4444-5555-666677778888\r\nTimestamp: 2026-11-23 10:00:00Z","error_codes":[%d],"timestamp":"2026-11-23 10:00:00Z","trace_id":"0000aaaa-1111-2222-3333-444455556666","correlation_id":"2222bbbb-3333-4444-5555-666677778888","error_uri":"https://login.microsoftonline.com/error?code=%d","suberror":"bad_token"}`,
		code, aadsts, desc, aadsts, aadsts)
}

// tokenSeeds are token endpoint answers: Microsoft's and Google's real
// shapes, and what proxies, portals and broken servers send.
var tokenSeeds = []struct {
	status      int
	ctype, body string
}{
	{200, "application/json; charset=utf-8", `{"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send","expires_in":4479,"ext_expires_in":4479,"access_token":"` + fakeAccess + `","refresh_token":"` + fakeRefresh + `"}`},
	{200, "application/json; charset=utf-8", `{"access_token":"` + fakeAccess + `","expires_in":3599,"refresh_token":"` + fakeRefresh + `","scope":"https://mail.google.com/","token_type":"Bearer"}`},
	{200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":"3599","token_type":"Bearer"}`},
	{200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":-3600,"token_type":"Bearer"}`},
	{200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":99999999999999999999,"token_type":"Bearer"}`},
	{200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":1e400}`},
	{200, "application/json", `{"access_token":"","refresh_token":"` + fakeRefresh + `","expires_in":3600}`},
	{200, "application/json", `{"token_type":"Bearer","expires_in":3600,"refresh_token":"` + fakeRefresh + `","id_token":"` + fakeAccess + `"}`},
	{200, "application/json", `{"access_token":"` + fakeAccess + `","expires_in":36`},
	{200, "application/x-www-form-urlencoded", "access_token=" + fakeAccess + "&scope=repo&token_type=bearer&refresh_token=" + fakeRefresh},
	{200, "text/plain", "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com"},
	{400, "application/json", aadBody("invalid_grant", 70000, "The provided value for the 'refresh_token' is not valid.")},
	{400, "application/json", aadBody("invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed.")},
	{400, "application/json", aadBody("invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00.")},
	{400, "application/json", aadBody("invalid_grant", 65001, "The user or administrator has not consented to use the application with ID 'cid' named 'oauth2mail'.")},
	{400, "application/json", aadBody("interaction_required", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.")},
	{400, "application/json", aadBody("invalid_grant", 53003, "Access has been blocked by Conditional Access policies.")},
	{503, "application/json", aadBody("temporarily_unavailable", 90055, "The request has been throttled.")},
	{400, "application/json", `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`},
	{401, "application/json", `{"error":"invalid_client","error_description":"Unauthorized"}`},
	{400, "application/json", `{"error":"invalid_grant","error_description":"` + fakeRefresh + ` is not valid","error_codes":[-1,2],"trace_id":"a\nb","correlation_id":[]}`},
	{400, "application/json", `{"error":{"code":"x"},"error_codes":"7000"}`},
	{502, "text/html", "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"},
	{200, "text/html; charset=utf-8", "<!DOCTYPE html>\n<html><title>Hotel Wi-Fi</title><form action=/login><input name=room></form></html>"},
	{200, "application/json", "\ufeff  <html>" + fakeAccess + "</html>"},
	{302, "", "http://portal.hotel.example/login?next=" + fakeRefresh},
	{200, "application/json", ""},
	{500, "", ""},
	{204, "", "garbage\x00\xff"},
	{400, "application/json", `{"error":"` + strings.Repeat("x", 5000) + `"}`},
	{200, "application/json", `{"access_token":"` + fakeAccess + `"` + strings.Repeat(" ", 1<<20) + `}`},
}

// FuzzTokenResponse answers a refresh or the redemption of an
// authorization code (as Browser does it) with one fuzzed answer.
func FuzzTokenResponse(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(uint16(s.status), s.ctype, s.body, false)
	}
	f.Add(uint16(400), "application/json", aadBody("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."), true)
	f.Add(uint16(200), "application/json", tokenSeeds[0].body, true)
	f.Fuzz(func(t *testing.T, status uint16, ctype, body string, exchange bool) {
		client := fuzzClient(func(r *http.Request) (*http.Response, error) {
			return reply(r, int(status), ctype, body), nil
		})
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
		conf := OAuthConfig(&config.Account{Provider: config.ProviderMicrosoft, ClientID: "cid", AuthorityHost: "https://login.example.test", Tenant: "organizations"})
		var (
			tok *oauth2.Token
			err error
		)
		if exchange {
			// browser.go: the redemption of the code the redirect brought
			conf.RedirectURL = "http://127.0.0.1:8080"
			tok, err = conf.Exchange(WithHTTPClient(ctx), "the-code", oauth2.VerifierOption(oauth2.GenerateVerifier()))
			if err != nil {
				err = Classify("browser login", err)
			}
		} else {
			tok, err = Refresh(ctx, conf, fakeRefresh)
		}
		checkOutcome(t, tok, err)
	})
}

// pollAnswers cuts a script of poll answers at 0xFF; each is
// "STATUS CONTENT-TYPE\nBODY", or a body alone for a 400 with JSON.
func pollAnswers(script string) []func(*http.Request) *http.Response {
	var out []func(*http.Request) *http.Response
	for _, a := range strings.Split(script, "\xff") {
		status, ctype, body := 400, "application/json", a
		if head, rest, ok := strings.Cut(a, "\n"); ok {
			code, ct, _ := strings.Cut(head, " ")
			if n, err := strconv.Atoi(code); err == nil {
				status, ctype, body = n, ct, rest
			}
		}
		out = append(out, func(r *http.Request) *http.Response { return reply(r, status, ctype, body) })
	}
	return out
}

const (
	pending  = `{"error":"authorization_pending","error_description":"AADSTS70016: OAuth 2.0 device flow error. Authorization is still pending. Trace ID: x","error_codes":[70016]}`
	slowDown = `{"error":"slow_down"}`
	msDevice = `{"user_code":"GHJK7LMN2","device_code":"DAQABAAEAAAD--DLA3VO7QrddgJg7WevrFAKEdevicecode","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code GHJK7LMN2 to authenticate."}`
)

// FuzzDevice answers the device authorization request and then each poll
// of the device flow. The flow runs in a synctest bubble: its waits
// (interval, slow_down, expires_in) pass in fake time, at once.
func FuzzDevice(f *testing.F) {
	okToken := "200 application/json\n" + tokenSeeds[0].body
	seeds := []struct {
		status int
		auth   string
		polls  []string
	}{
		{200, msDevice, []string{pending, pending, slowDown, pending, okToken}},
		{200, msDevice, []string{pending, aadBody("expired_token", 70019, "Verification code expired.")}},
		{200, msDevice, []string{pending, aadBody("authorization_declined", 70000, "The user declined.")}},
		{200, msDevice, []string{`{"error":"access_denied"}`}},
		{200, msDevice, []string{"garbage", "502 text/html\n<html>Bad Gateway</html>"}},
		{200, msDevice, []string{"200 application/json\n{}", "200 text/plain\naccess_token=" + fakeAccess}},
		{200, msDevice, nil},
		// Google's answer, with verification_url
		{200, `{"device_code":"AH-1Ng2FAKE","user_code":"GQVQ-JKEC","verification_url":"https://www.google.com/device","expires_in":1800,"interval":5}`, []string{`{"error":"authorization_pending","error_description":"Precondition Required"}`, `{"error":"slow_down","error_description":"Forbidden"}`, okToken}},
		// intervals and lifetimes no server should send
		{200, `{"device_code":"d","user_code":"u","verification_uri":"https://x","expires_in":-5,"interval":-1}`, []string{pending, okToken}},
		{200, `{"device_code":"d","user_code":"u","verification_uri":"https://x","expires_in":5,"interval":9223372036854775807}`, []string{pending, okToken}},
		{200, `{"device_code":"d","user_code":"u","verification_uri":"https://x","interval":9300000000}`, []string{okToken}},
		{200, `{"device_code":"d","user_code":"u","interval":"5"}`, []string{okToken}},
		{200, `{"device_code":"d","user_code":"u","message":"line one\nline two \u001b[2J"}`, []string{okToken}},
		{400, aadBody("invalid_client", 700016, "Application with identifier 'cid' was not found in the directory 'contoso'."), nil},
		{400, `{"error":"unauthorized_client","error_description":"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}`, nil},
		{403, "error=device_flow_disabled&error_description=Device+Flow+must+be+explicitly+enabled+for+this+App", nil},
		{200, `{"device_code":"","user_code":"u"}`, nil},
		{200, "<html>captive portal</html>", nil},
		{200, "", nil},
	}
	for _, s := range seeds {
		f.Add(uint16(s.status), s.auth, strings.Join(s.polls, "\xff"))
	}
	f.Fuzz(func(t *testing.T, status uint16, auth, polls string) {
		synctest.Test(t, func(t *testing.T) {
			answers := pollAnswers(polls)
			client := fuzzClient(func(r *http.Request) (*http.Response, error) {
				if strings.HasSuffix(r.URL.Path, "/devicecode") {
					return reply(r, int(status), "application/json", auth), nil
				}
				if len(answers) == 0 {
					return nil, unreachable
				}
				a := answers[0]
				answers = answers[1:]
				return a(r), nil
			})
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
			conf := OAuthConfig(&config.Account{Provider: config.ProviderMicrosoft, ClientID: "cid", AuthorityHost: "https://login.example.test", Tenant: "organizations"})
			var out strings.Builder
			tok, err := Device(ctx, conf, &out)
			checkOutcome(t, tok, err)
			if !utf8.ValidString(out.String()) && utf8.ValidString(auth) {
				t.Fatalf("the instructions are not UTF-8: %q", out.String())
			}
		})
	})
}

// discovery is the tenant's OpenID configuration, all MSAL asks before
// the token endpoint when instance discovery is off.
const discovery = `{"issuer":"https://login.microsoftonline.com/0000aaaa-1111-2222-3333-444455556666/v2.0","authorization_endpoint":"https://login.example.test/contoso.com/oauth2/v2.0/authorize","token_endpoint":"https://login.example.test/contoso.com/oauth2/v2.0/token","device_authorization_endpoint":"https://login.example.test/contoso.com/oauth2/v2.0/devicecode","response_types_supported":["code"],"tenant_region_scope":"EU"}`

// FuzzAppToken answers MSAL's client-credentials request (app-only
// accounts) with one fuzzed answer, after a valid tenant discovery.
func FuzzAppToken(f *testing.F) {
	f.Add(uint16(200), "application/json; charset=utf-8", `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"`+fakeAccess+`"}`)
	f.Add(uint16(200), "application/json", `{"token_type":"Bearer","access_token":"`+fakeAccess+`"}`)
	f.Add(uint16(200), "application/json", `{"token_type":"Bearer","expires_in":"3599","access_token":"`+fakeAccess+`"}`)
	f.Add(uint16(200), "application/json", `{"token_type":"Bearer","expires_in":-1,"access_token":"`+fakeAccess+`"}`)
	f.Add(uint16(200), "application/json", `{"token_type":"Bearer","expires_in":3599}`)
	f.Add(uint16(401), "application/json", aadBody("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'."))
	f.Add(uint16(401), "application/json", aadBody("invalid_client", 7000222, "The provided client secret keys for app 'aaaaaaaa' are expired."))
	f.Add(uint16(400), "application/json", aadBody("invalid_scope", 1002012, "The provided value for scope openid is not valid."))
	f.Add(uint16(400), "application/json", aadBody("invalid_request", 90002, "Tenant 'contoso.com' not found."))
	f.Add(uint16(429), "application/json", aadBody("temporarily_unavailable", 90055, "The request has been throttled."))
	f.Add(uint16(502), "text/html", "<html><body>Bad Gateway</body></html>")
	f.Add(uint16(200), "text/html", "<!DOCTYPE html><title>Hotel Wi-Fi</title>")
	f.Add(uint16(200), "application/json", `{"access_token":"`+fakeAccess+`","expires_in":36`)
	f.Add(uint16(500), "", "")
	f.Fuzz(func(t *testing.T, status uint16, ctype, body string) {
		client := fuzzClient(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
				return reply(r, 200, "application/json", discovery), nil
			}
			return reply(r, int(status), ctype, body), nil
		})
		a := &config.Account{Name: "svc", Provider: config.ProviderMicrosoft, ClientID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
			Tenant: "contoso.com", AuthorityHost: "https://login.example.test", Flow: config.FlowClientCredentials}
		tok, err := AppToken(context.Background(), a, AppCredential{Secret: "s3cr3t~value", Source: "test"}, client)
		checkOutcome(t, tok, err)
	})
}

// FuzzRedirect is the browser coming back to the loopback listener: the
// query the identity provider put in the redirect.
func FuzzRedirect(f *testing.F) {
	f.Add("code=M.C507_BAY.2.U.FAKEcode&state=st")
	f.Add("error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent+to+access+the+app.&state=st")
	f.Add("error=interaction_required&error_description=AADSTS50076%3A+Due+to+a+configuration+change&error_uri=https%3A%2F%2Flogin.microsoftonline.com%2Ferror%3Fcode%3D50076&state=st")
	f.Add("error=consent_required&state=st&error_subcode=cancel")
	f.Add("state=other&code=x")
	f.Add("state=st")
	f.Add("state=st&error=%0A%0D" + fakeAccess)
	f.Add("state=st;error=x&%zz")
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = query
		r.ParseForm()
		res := callback(r, "st")
		if res.err == nil && res.code == "" {
			t.Fatalf("neither a code nor an error")
		}
		if res.err != nil {
			checkOutcome(t, nil, res.err)
		}
	})
}
