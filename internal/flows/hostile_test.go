package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
	"github.com/oauth2mail/oauth2mail/internal/testutil"
)

// An identity provider, or what stands in its place (a proxy, a captive
// portal, a broken gateway), answering every way but with a token: each
// answer, at each endpoint oauth2mail posts to, must give a temporary
// error (exit 4) in one line that quotes nothing of the body, within the
// HTTP timeout.

// hostileTimeout stands for HTTPTimeout: tests do not wait 30 s. (Not
// much shorter: a TLS handshake under -race on a busy machine takes a
// good part of a second.)
const hostileTimeout = time.Second

// leak is in every hostile body and Location: no error may show it.
const leak = "SECRET-IN-BODY"

// hostileAnswers are what a token or device endpoint may get instead of
// an OAuth response, and what the error must say.
var hostileAnswers = []hostileAnswer{
	{"HTML 502 from a proxy", testutil.Answer(502, "text/html; charset=utf-8", "<html><body><h1>502 Bad Gateway</h1>"+leak+"</body></html>"),
		"answered with an HTML page, not an OAuth response: a proxy or captive portal? (HTTP 502)"},
	{"captive portal 200", testutil.Answer(200, "text/html", "<!DOCTYPE html>\n<title>Hotel Wi-Fi</title><form>"+leak+"</form>"),
		"answered with an HTML page, not an OAuth response: a proxy or captive portal? (HTTP 200)"},
	{"HTML labelled JSON", testutil.Answer(200, "application/json", "\r\n  <html>"+leak+"</html>"),
		"an HTML page, not an OAuth response"},
	{"HTML labelled text", testutil.Answer(200, "text/plain", "<html>access_token="+leak+"</html>"),
		"an HTML page, not an OAuth response"},
	{"no access_token", testutil.Answer(200, "application/json", `{"token_type":"Bearer","expires_in":3600,"refresh_token":"`+leak+`"}`),
		"without"},
	{"redirect to a portal", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://portal.hotel.example/login?next=token&secret="+leak, http.StatusFound)
	}, "answered with a redirect to portal.hotel.example, not an OAuth response: a proxy or captive portal? (HTTP 302)"},
	{"redirect loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path+"?"+leak, http.StatusTemporaryRedirect)
	}, "answered with a redirect to 127.0.0.1, not an OAuth response"},
	{"endless body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"` + leak))
		chunk := []byte(strings.Repeat("A", 64<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}, "answered with more than 1 MiB, not an OAuth response: a proxy or captive portal? (HTTP 200)"},
	{"10 GB announced", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "10000000000")
		w.WriteHeader(200)
		w.Write([]byte(`{"access_token":"` + leak))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}, "answered with more than 1 MiB"},
	{"broken off", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "4000")
		w.WriteHeader(200)
		w.Write([]byte(`{"access_token":"` + leak))
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}, "the identity provider broke off its answer (HTTP 200)"},
	{"slowloris", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		for _, c := range `{"access_token":"` + leak + strings.Repeat("x", 1000) {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			w.Write([]byte(string(c)))
			w.(http.Flusher).Flush()
		}
	}, "did not answer in time"},
	{"silent", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "did not answer in time"},
}

type hostileAnswer struct {
	name   string
	answer http.HandlerFunc
	want   string
}

// hostileIdP is the fake identity platform over TLS (MSAL wants https)
// with one endpoint, by path suffix, answering badly.
type hostileIdP struct {
	srv    *httptest.Server
	client *http.Client // trusts srv, guarded, hostileTimeout
	a      *config.Account
}

func newHostileIdP(t *testing.T, suffix string, bad http.HandlerFunc) *hostileIdP {
	t.Helper()
	idp := fakeidp.NewHandler(fakeidp.Options{})
	idp.AddApp(fakeidp.App{ClientID: appID, Secret: appSecret})
	h := &hostileIdP{}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, suffix):
			// Read the form: the server notices a client gone only then.
			r.ParseForm()
			bad(w, r)
		case strings.HasSuffix(r.URL.Path, "/devicecode"):
			testutil.Answer(200, "application/json", `{"device_code":"dc","user_code":"UC","verification_uri":"https://microsoft.com/devicelogin","expires_in":60,"interval":1}`)(w, r)
		default:
			idp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(h.srv.Close)
	h.client = NewHTTPClient(h.srv.Client().Transport, hostileTimeout)
	h.a = &config.Account{Name: "work", Provider: config.ProviderMicrosoft, ClientID: appID, Tenant: "contoso.com", AuthorityHost: h.srv.URL}
	return h
}

// hostilePaths are the requests oauth2mail makes to an identity provider,
// and the endpoint each one meets the hostile answer at.
var hostilePaths = []hostilePath{
	{"refresh", "/token", func(t *testing.T, h *hostileIdP) error {
		_, err := Refresh(h.ctx(), OAuthConfig(h.a), "rt")
		return err
	}},
	{"browser login (code redemption)", "/token", func(t *testing.T, h *hostileIdP) error {
		return h.browserLogin(t)
	}},
	{"device code request", "/devicecode", func(t *testing.T, h *hostileIdP) error {
		_, err := Device(h.ctx(), OAuthConfig(h.a), &strings.Builder{})
		return err
	}},
	{"device polling", "/token", func(t *testing.T, h *hostileIdP) error {
		_, err := Device(h.ctx(), OAuthConfig(h.a), &strings.Builder{})
		return err
	}},
	{"app token (MSAL)", "/token", func(t *testing.T, h *hostileIdP) error {
		_, err := AppToken(context.Background(), h.a, AppCredential{Secret: appSecret}, h.client)
		return err
	}},
}

type hostilePath struct {
	name, suffix string
	run          func(t *testing.T, h *hostileIdP) error
}

func (h *hostileIdP) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, h.client)
}

// browserLogin plays the browser: it takes the state from the authorize
// URL printed and comes back to the loopback listener with a code, which
// Browser then redeems at the hostile token endpoint.
func (h *hostileIdP) browserLogin(t *testing.T) error {
	out := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		_, err := Browser(h.ctx(), OAuthConfig(h.a), BrowserOptions{RedirectHost: "127.0.0.1", NoOpen: true, Out: out})
		done <- err
	}()
	urlRE := regexp.MustCompile(`https://\S+/authorize\?\S+`)
	for deadline := time.Now().Add(5 * time.Second); !urlRE.MatchString(out.String()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no authorize URL printed: %q", out.String())
		}
	}
	auth, err := url.Parse(urlRE.FindString(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	q := auth.Query()
	resp, err := http.Get(q.Get("redirect_uri") + "/?code=the-code&state=" + url.QueryEscape(q.Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-done
}

func TestHostileIdP(t *testing.T) {
	// The cases mostly wait (for the device flow's interval, for the
	// timeout): eight at a time, not -parallel (GOMAXPROCS) at a time.
	var wg sync.WaitGroup
	busy := make(chan struct{}, 8)
	for _, p := range hostilePaths {
		for _, ans := range hostileAnswers {
			wg.Go(func() {
				busy <- struct{}{}
				defer func() { <-busy }()
				t.Run(p.name+"/"+ans.name, func(t *testing.T) { hostileCase(t, p, ans) })
			})
		}
	}
	wg.Wait()
}

func hostileCase(t *testing.T, p hostilePath, ans hostileAnswer) {
	h := newHostileIdP(t, p.suffix, ans.answer)
	start := time.Now()
	err := p.run(t, h)
	took := time.Since(start)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	msg := e.Error()
	t.Logf("%s (%s)", msg, took.Round(time.Millisecond))
	if e.Kind != KindTemporary {
		t.Errorf("kind %d, want temporary: %s", e.Kind, msg)
	}
	if !strings.Contains(msg, ans.want) {
		t.Errorf("error %q, want it to contain %q", msg, ans.want)
	}
	if e.Hint("work") == "" {
		t.Errorf("no fix for %q", msg)
	}
	if all := msg + e.Hint("work") + e.Description; strings.Contains(all, leak) || strings.ContainsAny(all, "\r\n") {
		t.Errorf("the error quotes the body or spans lines: %q", all)
	}
	// The device flow waits one interval (1 s) before polling.
	if limit := hostileTimeout + 8*time.Second; took > limit { // slack for a loaded CI machine; a hang is 30 s
		t.Errorf("took %s, want at most %s", took, limit)
	}
}

// The guarded client leaves a real answer alone, with its body intact.
func TestGuardPassesTokens(t *testing.T) {
	for _, p := range hostilePaths {
		if p.name == "device code request" {
			continue // the same requests as device polling
		}
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t, "/token", testutil.Answer(200, "application/json; charset=utf-8", `{"token_type":"Bearer","access_token":"at-1","refresh_token":"rt-1","expires_in":3599}`))
			if err := p.run(t, h); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Lifetime: what an expires_in that is missing, zero, negative or huge
// becomes. x/oauth2 gives a zero Expiry for missing and 0; AppToken does
// the same for MSAL's "now".
func TestLifetime(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		expiry time.Time
		want   time.Time
		note   string
	}{
		{"an hour", now.Add(time.Hour), now.Add(time.Hour), ""},
		{"missing or zero", time.Time{}, now.Add(10 * time.Minute), "gave no lifetime (expires_in); assuming 10m0s"},
		{"negative", now.Add(-time.Minute), now, "already expired (expires_in not positive); using it once, not caching it"},
		{"exactly now", now, now, "already expired"},
		{"a day", now.Add(24 * time.Hour), now.Add(24 * time.Hour), ""},
		{"10^12 seconds (x/oauth2 caps it at 2^31-1)", now.Add(2147483647 * time.Second), now.Add(24 * time.Hour), "a lifetime of 596523 hours; capping it at 24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, note := Lifetime(&oauth2.Token{AccessToken: "at", Expiry: tt.expiry}, now)
			if !got.Equal(tt.want) || !strings.Contains(note, tt.note) || (tt.note == "") != (note == "") {
				t.Errorf("Lifetime = %s, %q; want %s, %q", got, note, tt.want, tt.note)
			}
		})
	}
}

// expires_in as the wire carries it, through x/oauth2 (refresh) and MSAL
// (app token): both give the Expiry Lifetime expects.
func TestExpiresInOnTheWire(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration // from now; -1: zero Expiry; -2: refused
	}{
		{"number", `3599`, 3599 * time.Second},
		{"string", `"3599"`, 3599 * time.Second},
		{"missing", ``, -1},
		{"zero", `0`, -1},
		{"negative", `-60`, -60 * time.Second},
		{"huge", `1000000000000`, 0}, // checked: at least MaxLifetime
		{"not a number", `"soon"`, -2},
	}
	for _, path := range []string{"refresh", "app token (MSAL)"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				field := ""
				if tt.value != "" {
					field = `,"expires_in":` + tt.value
				}
				h := newHostileIdP(t, "/token", testutil.Answer(200, "application/json", `{"token_type":"Bearer","access_token":"at-`+leak+`"`+field+`}`))
				var (
					tok *oauth2.Token
					err error
				)
				if path == "refresh" {
					tok, err = Refresh(h.ctx(), OAuthConfig(h.a), "rt")
				} else {
					tok, err = AppToken(context.Background(), h.a, AppCredential{Secret: appSecret}, h.client)
				}
				if tt.want == -2 || (path != "refresh" && tt.want == -1 && tt.value == "") {
					// Refused as a whole: x/oauth2 cannot parse "soon";
					// MSAL takes no token without expires_in.
					var e *Error
					if !errors.As(err, &e) || e.Kind != KindTemporary || strings.Contains(e.Error(), leak) {
						t.Fatalf("err = %v, want a temporary *Error that does not quote the body", err)
					}
					t.Logf("%s", e)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got := time.Until(tok.Expiry)
				switch {
				case tt.want == -1:
					if !tok.Expiry.IsZero() {
						t.Errorf("expiry in %s, want zero", got)
					}
				case tt.want == 0:
					if got < MaxLifetime {
						t.Errorf("expiry in %s, want at least %s", got, MaxLifetime)
					}
				case got > tt.want || got < tt.want-5*time.Second:
					t.Errorf("expiry in %s, want %s", got, tt.want)
				}
			})
		}
	}
}

func ExampleLifetime() {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, expiresIn := range []int{3599, 0, -60, 1 << 30} {
		tok := &oauth2.Token{AccessToken: "at"}
		if expiresIn != 0 {
			tok.Expiry = now.Add(time.Duration(expiresIn) * time.Second)
		}
		exp, note := Lifetime(tok, now)
		fmt.Println(strings.TrimSuffix(fmt.Sprintf("expires_in %d: good for %s; %s", expiresIn, exp.Sub(now), note), "; "))
	}
	// Output:
	// expires_in 3599: good for 59m59s
	// expires_in 0: good for 10m0s; the identity provider gave no lifetime (expires_in); assuming 10m0s
	// expires_in -60: good for 0s; the identity provider says the access token has already expired (expires_in not positive); using it once, not caching it
	// expires_in 1073741824: good for 24h0m0s; the identity provider gave a lifetime of 298261 hours; capping it at 24
}
