package helper

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
	"github.com/oauth2mail/oauth2mail/internal/flows"
	"github.com/oauth2mail/oauth2mail/internal/testutil"
)

// The broker against an identity provider that answers badly: whatever it
// answers, nothing stored changes, the error is temporary and comes within
// the HTTP timeout, and the account works again once the IdP behaves. The
// answers themselves, path by path, are internal/flows' hostile tests;
// here it is what they do to the state.

const hostileTimeout = time.Second // for flows.HTTPTimeout

// hostileIdP is the fake identity platform over TLS whose token endpoint
// answers with bad while it is set.
type hostileIdP struct {
	*fakeidp.Server
	srv *httptest.Server
	mu  sync.Mutex
	bad http.HandlerFunc
}

func (h *hostileIdP) set(bad http.HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bad = bad
}

// hostileSetup returns a broker over a hostile IdP with two accounts:
// "work" (delegated, logged in) and "svc" (app-only, secret in the config).
func hostileSetup(t *testing.T) (*Broker, *hostileIdP, map[string]*config.Account, *bytes.Buffer) {
	t.Helper()
	h := &hostileIdP{Server: fakeidp.NewHandler(fakeidp.Options{StrictRotation: true})}
	h.AddApp(fakeidp.App{ClientID: appID, Secret: appSecret})
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		bad := h.bad
		h.mu.Unlock()
		if bad != nil && strings.HasSuffix(r.URL.Path, "/token") {
			r.ParseForm() // the server notices a client gone only once it has read the body
			bad(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	f, err := config.Parse("c.toml", []byte(`[accounts.work]
provider = "microsoft"
email = "me@contoso.com"
client_id = "c"
store = "file"
authority_host = "`+h.srv.URL+`"

[accounts.svc]
provider = "microsoft"
flow = "client-credentials"
email = "service@contoso.com"
tenant = "contoso.com"
client_id = "`+appID+`"
client_secret = "`+appSecret+`"
store = "file"
authority_host = "`+h.srv.URL+`"
`))
	if err != nil {
		t.Fatal(err)
	}
	log := &bytes.Buffer{}
	b := New(filepath.Join(t.TempDir(), "state"), log, true)
	b.HTTPClient = flows.NewHTTPClient(h.srv.Client().Transport, hostileTimeout)
	if _, err := b.Login(context.Background(), f.Accounts["work"], LoginOptions{Flow: config.FlowDevice, Out: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Token(context.Background(), f.Accounts["svc"]); err != nil {
		t.Fatal(err)
	}
	return b, h, f.Accounts, log
}

// expire makes the stored access token of a stale, so the next Token asks
// the IdP; it returns the state file's bytes.
func expire(t *testing.T, b *Broker, a *config.Account) []byte {
	t.Helper()
	s := b.store(a)
	st, err := s.Load(a.Name)
	if err != nil {
		t.Fatal(err)
	}
	st.Expiry = time.Now().Add(-time.Minute)
	if err := s.Save(a.Name, st); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.Path(a.Name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestHostileIdPChangesNothing(t *testing.T) {
	answers := []struct {
		name string
		bad  http.HandlerFunc
	}{
		{"HTML 502", testutil.Answer(502, "text/html", "<html>Bad Gateway</html>")},
		{"captive portal", testutil.Answer(200, "text/html", "<!doctype html><title>Sign in to the Wi-Fi</title>")},
		{"no access_token", testutil.Answer(200, "application/json", `{"token_type":"Bearer","expires_in":3600,"refresh_token":"rt-from-nowhere"}`)},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://portal.example/", http.StatusFound)
		}},
		{"endless body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for chunk := bytes.Repeat([]byte("x"), 64<<10); r.Context().Err() == nil; {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}},
		{"slowloris", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for r.Context().Err() == nil {
				w.Write([]byte(" "))
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{"expires_in not a number", testutil.Answer(200, "application/json", `{"token_type":"Bearer","access_token":"at","expires_in":"soon"}`)},
	}
	var wg sync.WaitGroup // all at once: the cases wait, on a login's poll or a timeout
	for _, ans := range answers {
		wg.Go(func() {
			t.Run(ans.name, func(t *testing.T) {
				b, h, accounts, _ := hostileSetup(t)
				for _, name := range []string{"work", "svc"} {
					a := accounts[name]
					before := expire(t, b, a)
					h.set(ans.bad)
					start := time.Now()
					_, err := b.Token(context.Background(), a)
					took := time.Since(start)
					var fe *flows.Error
					if !errors.As(err, &fe) || fe.Kind != flows.KindTemporary {
						t.Fatalf("%s: err = %v, want a temporary *flows.Error", name, err)
					}
					if took > hostileTimeout+8*time.Second { // slack for a loaded CI machine; a hang is 30 s
						t.Errorf("%s: took %s", name, took)
					}
					if after, _ := os.ReadFile(b.store(a).Path(a.Name)); !bytes.Equal(after, before) {
						t.Errorf("%s: the state file changed", name)
					}
					h.set(nil)
					st, err := b.Token(context.Background(), a)
					if err != nil || !h.ValidAccessToken(st.AccessToken) {
						t.Fatalf("%s: once the IdP behaves: %v", name, err)
					}
				}
			})
		})
	}
	wg.Wait()
}

// What an expires_in that is missing, zero, negative or huge does to the
// cache, through x/oauth2 (refresh) and MSAL (app-only): the token is
// handed out either way; it is reused from the cache for the assumed or
// capped lifetime, or never.
func TestExpiresIn(t *testing.T) {
	tests := []struct {
		name, field string
		life        time.Duration // stored expiry - now
		cached      bool          // the next Token needs no request
		note        string
	}{
		{"missing", ``, flows.DefaultLifetime, true, "gave no lifetime (expires_in); assuming 10m0s"},
		{"zero", `,"expires_in":0`, flows.DefaultLifetime, true, "gave no lifetime"},
		{"negative", `,"expires_in":-60`, 0, false, "already expired (expires_in not positive); using it once, not caching it"},
		{"huge", `,"expires_in":1000000000000`, flows.MaxLifetime, true, "capping it at 24"},
		{"string", `,"expires_in":"1800"`, 30 * time.Minute, true, ""},
	}
	var wg sync.WaitGroup // all at once: the cases wait, on a login's poll or a timeout
	for _, tt := range tests {
		wg.Go(func() {
			t.Run(tt.name, func(t *testing.T) {
				b, h, accounts, log := hostileSetup(t)
				for _, name := range []string{"work", "svc"} {
					a := accounts[name]
					before := expire(t, b, a)
					log.Reset()
					h.FailNext(1, 200, "application/json", `{"token_type":"Bearer","access_token":"at-`+tt.name+`"`+tt.field+`}`)
					st, err := b.Token(context.Background(), a)
					if name == "svc" && tt.name == "missing" {
						// MSAL takes no token without expires_in: a
						// temporary error, and nothing stored changes.
						var fe *flows.Error
						if !errors.As(err, &fe) || fe.Kind != flows.KindTemporary || !strings.Contains(fe.Error(), "no valid lifetime (expires_in)") {
							t.Errorf("svc: err = %v, want a temporary error naming expires_in", err)
						}
						if after, _ := os.ReadFile(b.store(a).Path(a.Name)); !bytes.Equal(after, before) {
							t.Errorf("svc: the state file changed")
						}
						continue
					}
					if err != nil || st.AccessToken != "at-"+tt.name {
						t.Fatalf("%s: Token = %v, %v; want the token sent", name, st, err)
					}
					if got := st.Expiry.Sub(b.Now()); got > tt.life || got < tt.life-5*time.Second {
						t.Errorf("%s: stored expiry in %s, want %s", name, got, tt.life)
					}
					if noted := strings.Contains(log.String(), "oauth2mail: the identity provider"); !strings.Contains(log.String(), tt.note) || noted != (tt.note != "") {
						t.Errorf("%s: -v log %q, want %q", name, log.String(), tt.note)
					}
					n := h.Stats().Refreshes + h.Stats().ClientCredentials
					again, err := b.Token(context.Background(), a)
					if err != nil {
						t.Fatal(err)
					}
					if asked := h.Stats().Refreshes + h.Stats().ClientCredentials - n; (asked == 0) != tt.cached {
						t.Errorf("%s: %d requests for the next token, want cached=%v", name, asked, tt.cached)
					}
					if tt.cached != (again.AccessToken == st.AccessToken) {
						t.Errorf("%s: next token is the same: %v, want %v", name, again.AccessToken == st.AccessToken, tt.cached)
					}
				}
			})
		})
	}
	wg.Wait()
}

// The stored expiry, once read back, is what Status shows: never "ok" for
// a token the IdP said had expired.
func TestExpiredAtBirthIsNotOK(t *testing.T) {
	b, h, accounts, _ := hostileSetup(t)
	a := accounts["work"]
	expire(t, b, a)
	h.FailNext(1, 200, "application/json", `{"token_type":"Bearer","access_token":"at","expires_in":-1}`)
	if _, err := b.Token(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if s := b.Status(a); s.State != "expired" {
		t.Errorf("status %q, want expired", s.State)
	}
	st, _ := cache.New(b.StateDir, a.Store).Load(a.Name)
	if st.AccessToken != "at" {
		t.Errorf("stored %v", st)
	}
}
