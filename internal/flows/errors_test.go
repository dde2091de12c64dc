package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// msError is a token-endpoint error body as Microsoft sends it.
func msError(code string, aadsts int, desc string) string {
	return fmt.Sprintf(`{"error":%q,"error_description":"AADSTS%d: %s\r\nTrace ID: 0000aaaa-1111\r\nCorrelation ID: 2222bbbb-3333\r\nTimestamp: 2026-11-23 10:00:00Z","error_codes":[%d],"trace_id":"0000aaaa-1111","correlation_id":"2222bbbb-3333","suberror":"bad_token"}`, code, aadsts, desc, aadsts)
}

// refreshAgainst runs a real x/oauth2 refresh against a token endpoint that
// answers status/ctype/body, and returns the classified error.
func refreshAgainst(t *testing.T, status int, ctype, body string) *Error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("public client sent an Authorization header")
		}
		r.ParseForm()
		if r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("client_id") != "cid" || r.Form.Get("refresh_token") != "rt" {
			t.Errorf("unexpected form %v", r.Form)
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	conf := OAuthConfig(&config.Account{Provider: config.ProviderMicrosoft, ClientID: "cid", AuthorityHost: srv.URL, Tenant: "organizations"})
	_, err := Refresh(context.Background(), conf, "rt")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Refresh error = %v (%T), want *Error", err, err)
	}
	return e
}

func TestClassifyTokenEndpoint(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		ctype, body string
		kind        Kind
		aadsts      int
		msg, fix    string
	}{
		{"revoked", 400, "application/json", msError("invalid_grant", 50173, "The provided grant has expired due to it being revoked."), KindLogin, 50173, "the sign-in was revoked", "run: oauth2mail login work"},
		{"90 days", 400, "application/json", msError("invalid_grant", 700082, "The refresh token has expired due to inactivity."), KindLogin, 700082, "90 days", "login work"},
		{"conditional access", 400, "application/json", msError("invalid_grant", 53003, "Access has been blocked by Conditional Access policies."), KindBlocked, 53003, "Conditional Access", "--browser or --device"},
		{"unknown client", 400, "application/json", msError("unauthorized_client", 700016, "Application not found."), KindConfig, 700016, "client ID is unknown", "check client_id and tenant for work"},
		{"secret sent", 401, "application/json", msError("invalid_client", 700025, "Client is public."), KindConfig, 700025, "public client", "remove client_secret"},
		{"unknown AADSTS falls back to error", 400, "application/json", msError("invalid_grant", 99999999, "Something new."), KindLogin, 99999999, "no longer accepted", "login work"},
		{"RFC 6749 plain", 400, "application/json", `{"error":"invalid_grant"}`, KindLogin, 0, "no longer accepted", "login work"},
		{"503", 503, "application/json", msError("temporarily_unavailable", 90055, "busy"), KindTemporary, 90055, "unavailable (HTTP 503)", "try again"},
		{"429", 429, "text/plain", "slow down", KindTemporary, 0, "HTTP 429", "try again"},
		{"html 200", 200, "text/html", "<html>hotel wifi</html>", KindTemporary, 0, "not an OAuth response", "captive portal"},
		{"html 400", 400, "text/html", "<html>proxy says no</html>", KindTemporary, 0, "not an OAuth response", "captive portal"},
		{"description only", 400, "application/json", `{"error":"invalid_grant","error_description":"AADSTS70043: sign-in frequency"}`, KindLogin, 70043, "sign-in frequency", "recur"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := refreshAgainst(t, tt.status, tt.ctype, tt.body)
			if e.Kind != tt.kind || e.AADSTS != tt.aadsts {
				t.Errorf("kind %d aadsts %d, want kind %d aadsts %d (%v)", e.Kind, e.AADSTS, tt.kind, tt.aadsts, e)
			}
			if !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("Error() = %q, want it to contain %q", e.Error(), tt.msg)
			}
			if h := e.Hint("work"); !strings.Contains(h, tt.fix) {
				t.Errorf("Hint = %q, want it to contain %q", h, tt.fix)
			}
			if strings.Contains(e.Error(), "\n") {
				t.Errorf("Error() spans lines: %q", e.Error())
			}
		})
	}
}

func TestClassifyNetwork(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	conf := OAuthConfig(&config.Account{Provider: config.ProviderMicrosoft, ClientID: "cid", AuthorityHost: url, Tenant: "common"})
	_, err := Refresh(context.Background(), conf, "rt")
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTemporary || !strings.Contains(e.Error(), "cannot be reached") {
		t.Fatalf("err = %v, want a temporary 'cannot be reached'", err)
	}
}

func TestRefreshKeepsRefreshTokenWhenNoneSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at2","token_type":"Bearer","expires_in":3600}`)
	}))
	defer srv.Close()
	conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := Refresh(context.Background(), conf, "rt-old")
	if err != nil || tok.AccessToken != "at2" || tok.RefreshToken != "rt-old" {
		t.Fatalf("Refresh = %+v, %v", tok, err)
	}
}

func TestMicrosoftConfig(t *testing.T) {
	c := OAuthConfig(&config.Account{Provider: config.ProviderMicrosoft, ClientID: "cid", AuthorityHost: "https://login.microsoftonline.us", Tenant: "contoso.com"})
	if c.Endpoint.TokenURL != "https://login.microsoftonline.us/contoso.com/oauth2/v2.0/token" || c.Endpoint.AuthStyle != oauth2.AuthStyleInParams {
		t.Errorf("endpoint = %+v", c.Endpoint)
	}
	if strings.Join(c.Scopes, " ") != "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access" {
		t.Errorf("scopes = %v", c.Scopes)
	}
}

func TestBlockedFlowSuggestsTheOther(t *testing.T) {
	tests := []struct {
		op     string
		aadsts int
		want   string
	}{
		{"device login", 53003, "oauth2mail login work --browser"},
		{"device login", 50097, "oauth2mail login work --browser"},
		{"device login", 530033, "oauth2mail login work --browser"},
		{"browser login", 53003, "oauth2mail login work --device"},
		{"browser login", 53000, "oauth2mail login work --device"},
		{"refresh", 53003, "try the other one (--browser or --device)"},
		{"device login", 50126, "run: oauth2mail login work"}, // not a policy block: the usual fix
	}
	for _, tt := range tests {
		body := msError("invalid_grant", tt.aadsts, "blocked")
		err := Classify(tt.op, &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, Body: []byte(body)})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s %d: %v is not *Error", tt.op, tt.aadsts, err)
		}
		if !strings.Contains(e.Error(), fmt.Sprintf("AADSTS%d", tt.aadsts)) {
			t.Errorf("%s %d: message %q does not name the code", tt.op, tt.aadsts, e.Error())
		}
		if h := e.Hint("work"); !strings.Contains(h, tt.want) {
			t.Errorf("%s %d: hint %q, want it to contain %q", tt.op, tt.aadsts, h, tt.want)
		}
	}
}
