package flows

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/testutil"
)

// tokenEndpoint redeems the one code "the-code" the way an IdP does: the
// redirect_uri must be the one of the authorize request and the verifier
// must hash to its code_challenge.
type tokenEndpoint struct {
	*httptest.Server
	mu        sync.Mutex
	authorize url.Values // the authorize request's query, set by the test
	redeemed  int
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	te := &tokenEndpoint{}
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		te.mu.Lock()
		defer te.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("code") != "the-code":
			t.Errorf("token request: got %v, want the code grant of the-code", r.PostForm)
		case r.PostForm.Get("redirect_uri") != te.authorize.Get("redirect_uri"):
			t.Errorf("token request: redirect_uri %q, want the authorize one %q", r.PostForm.Get("redirect_uri"), te.authorize.Get("redirect_uri"))
		case base64.RawURLEncoding.EncodeToString(sum[:]) != te.authorize.Get("code_challenge"):
			t.Errorf("token request: code_verifier does not match the code_challenge")
		default:
			te.redeemed++
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"token_type":"Bearer","access_token":"at-1","refresh_token":"rt-1","expires_in":3600}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
	}))
	t.Cleanup(te.Close)
	return te
}

func (te *tokenEndpoint) config() *oauth2.Config {
	return &oauth2.Config{
		ClientID: "client-1",
		Scopes:   []string{"offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: te.URL + "/authorize", TokenURL: te.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
	}
}

type login struct {
	out  *testutil.SyncBuffer
	done chan error
	tok  *oauth2.Token
	// What the terminal showed once Browser waits for the browser.
	text        string
	authorize   url.Values
	fingerprint string // "" when none was printed
}

var (
	authURLRE     = regexp.MustCompile(`(?m)^  (http\S+/authorize\?\S+)$`)
	fingerprintRE = regexp.MustCompile(`SHA-256 fingerprint: ([0-9A-F]{2}(?::[0-9A-F]{2}){31})\n`)
)

// startLogin runs Browser until it waits for the browser, and reads what
// the terminal shows: the authorize URL and the certificate's fingerprint.
func startLogin(t *testing.T, te *tokenEndpoint, opt BrowserOptions) *login {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &login{out: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	opt.NoOpen, opt.Out = true, l.out
	go func() {
		tok, err := Browser(ctx, te.config(), opt)
		l.tok = tok
		l.done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(l.out.String(), "waiting for the browser"); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-l.done:
			l.done <- err
			t.Fatalf("Browser returned before waiting: %v\n%s", err, l.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Browser does not wait for the browser after 10s:\n%s", l.out)
		}
	}
	l.text = l.out.String()
	m := authURLRE.FindStringSubmatch(l.text)
	if m == nil {
		t.Fatalf("no authorize URL on the terminal:\n%s", l.text)
	}
	u, err := url.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	l.authorize = u.Query()
	te.mu.Lock()
	te.authorize = l.authorize
	te.mu.Unlock()
	if m := fingerprintRE.FindStringSubmatch(l.text); m != nil {
		l.fingerprint = m[1]
	}
	return l
}

// finish waits for Browser's result.
func (l *login) finish(t *testing.T) (*oauth2.Token, error) {
	t.Helper()
	select {
	case err := <-l.done:
		l.done <- err
		return l.tok, err
	case <-time.After(10 * time.Second):
		t.Fatalf("Browser still waiting 10s after the redirect:\n%s", l.out)
	}
	return nil, nil
}

// callback is the redirect the IdP sends the browser to, for the code
// "the-code", to the path given ("" for the redirect_uri's own).
func (l *login) callback(t *testing.T, path string) string {
	t.Helper()
	u, err := url.Parse(l.authorize.Get("redirect_uri"))
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		u.Path = path
	} else if u.Path == "" {
		u.Path = "/"
	}
	u.RawQuery = url.Values{"code": {"the-code"}, "state": {l.authorize.Get("state")}}.Encode()
	return u.String()
}

// pinnedBrowser trusts the one certificate whose SHA-256 fingerprint (as
// printed: hex pairs and colons) is pin, as a careful person who compared
// the fingerprints does; anything else fails the TLS handshake.
func pinnedBrowser(pin string, served **x509.Certificate) *http.Client {
	want := strings.ReplaceAll(pin, ":", "")
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // no CA vouches for it: the pin below is the check
			VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if got := strings.ToUpper(hex.EncodeToString(sum[:])); got != want {
					return fmt.Errorf("certificate fingerprint %s, want %s", got, want)
				}
				if served != nil {
					*served = cs.PeerCertificates[0]
				}
				return nil
			},
		}},
	}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

func TestBrowserHTTPS(t *testing.T) {
	te := newTokenEndpoint(t)
	l := startLogin(t, te, BrowserOptions{RedirectHost: "localhost", RedirectURI: "https://localhost"})

	// No port registered: a random one, put into the redirect_uri sent.
	redirect := l.authorize.Get("redirect_uri")
	if !regexp.MustCompile(`^https://localhost:\d+$`).MatchString(redirect) {
		t.Fatalf("redirect_uri %q, want https://localhost:PORT", redirect)
	}
	for _, want := range []string{
		"waiting for the browser to come back to " + redirect,
		`"Your connection is not private" (NET::ERR_CERT_AUTHORITY_INVALID)`,
		`click Advanced, then "Proceed to localhost (unsafe)"`,
		`"Warning: Potential Security Risk Ahead"`, `"Accept the Risk and Continue"`,
		`"This Connection Is Not Private"`,
	} {
		if !strings.Contains(l.text, want) {
			t.Errorf("terminal lacks %q:\n%s", want, l.text)
		}
	}
	if l.fingerprint == "" {
		t.Fatalf("no SHA-256 fingerprint on the terminal:\n%s", l.text)
	}
	// The warning comes before the wait, after the URL.
	if strings.Index(l.text, "SHA-256 fingerprint") > strings.Index(l.text, "waiting for the browser") {
		t.Errorf("the fingerprint comes after the wait:\n%s", l.text)
	}

	// A browser pinning another certificate gets no page.
	wrong := strings.Repeat("00:", 31) + "00"
	if _, err := pinnedBrowser(wrong, nil).Get(l.callback(t, "")); err == nil || !strings.Contains(err.Error(), "certificate fingerprint") {
		t.Fatalf("GET with a wrong pin: %v, want a fingerprint mismatch", err)
	}
	// Plain http to the https listener is not a redirect either.
	if code, _ := get(t, http.DefaultClient, strings.Replace(l.callback(t, ""), "https:", "http:", 1)); code != http.StatusBadRequest {
		t.Errorf("plain http: status %d, want 400", code)
	}

	var served *x509.Certificate
	code, body := get(t, pinnedBrowser(l.fingerprint, &served), l.callback(t, ""))
	if code != http.StatusOK || !strings.Contains(body, "<h1>Signed in</h1>") {
		t.Fatalf("redirect: status %d, page %q", code, body)
	}
	tok, err := l.finish(t)
	if err != nil || tok.AccessToken != "at-1" || te.redeemed != 1 {
		t.Fatalf("Browser: %v, %v (redeemed %d)", tok, err, te.redeemed)
	}
	checkServedCert(t, served)
}

// checkServedCert: self-signed ECDSA P-256 for localhost, 127.0.0.1 and
// ::1, an end-entity for server auth, from a minute ago for an hour.
func checkServedCert(t *testing.T, c *x509.Certificate) {
	t.Helper()
	if c == nil {
		t.Fatal("no certificate served")
	}
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if c.IsCA || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("IsCA %v, ExtKeyUsage %v: want a server-auth end-entity certificate", c.IsCA, c.ExtKeyUsage)
	}
	now := time.Now()
	if d := now.Sub(c.NotBefore); d < 50*time.Second || d > 2*time.Minute {
		t.Errorf("NotBefore %s is %s ago, want about a minute", c.NotBefore, d)
	}
	if d := c.NotAfter.Sub(now); d < 50*time.Minute || d > time.Hour {
		t.Errorf("NotAfter %s is in %s, want about an hour", c.NotAfter, d)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := c.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("certificate for %s: %v", name, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Errorf("certificate valid for example.com")
	}
}

// freePort is a port nothing listens on, a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestBrowserFixedPort(t *testing.T) {
	for _, tt := range []struct{ name, form, path string }{
		{"https-127.0.0.1-path", "https://127.0.0.1:%d/callback", "/callback"},
		{"http-localhost-path", "http://localhost:%d/oauth2/cb", "/oauth2/cb"},
		{"https-localhost", "https://localhost:%d", "/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t)
			port := freePort(t)
			redirect := fmt.Sprintf(tt.form, port)
			l := startLogin(t, te, BrowserOptions{RedirectHost: "localhost", RedirectURI: redirect})
			// The registered URI is sent exactly: same port, same path.
			if got := l.authorize.Get("redirect_uri"); got != redirect {
				t.Fatalf("redirect_uri %q, want %q", got, redirect)
			}
			browser := http.DefaultClient
			if strings.HasPrefix(redirect, "https:") {
				browser = pinnedBrowser(l.fingerprint, nil)
			} else if l.fingerprint != "" || strings.Contains(l.text, "browser will warn") {
				t.Errorf("http redirect, yet a certificate warning:\n%s", l.text)
			}
			// Only the registered path is served.
			for _, other := range []string{"/favicon.ico", tt.path + "x", strings.TrimSuffix(tt.path, "/") + "/more"} {
				if code, _ := get(t, browser, l.callback(t, other)); code != http.StatusNotFound {
					t.Errorf("GET %s: status %d, want 404", other, code)
				}
			}
			if code, body := get(t, browser, l.callback(t, "")); code != http.StatusOK {
				t.Fatalf("redirect: status %d, page %q", code, body)
			}
			if tok, err := l.finish(t); err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("Browser: %v, %v", tok, err)
			}
		})
	}
}

func TestBrowserPortInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	redirect := "https://localhost:" + strconv.Itoa(port) + "/cb"
	var out bytes.Buffer
	start := time.Now()
	_, err = Browser(context.Background(), newTokenEndpoint(t).config(), BrowserOptions{RedirectHost: "localhost", RedirectURI: redirect, NoOpen: true, Out: &out})
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindTemporary {
		t.Fatalf("got %v, want a temporary *Error", err)
	}
	want := fmt.Sprintf("browser login: port %d of redirect_uri %q is in use by another program", port, redirect)
	if err.Error() != want || !strings.Contains(fe.Hint("work"), fmt.Sprintf("stop the program listening on port %d", port)) {
		t.Errorf("got %q, hint %q; want %q and a hint naming the port", err, fe.Hint("work"), want)
	}
	if out.Len() != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("printed %q and took %s; want a quick failure before any instruction", out.String(), time.Since(start))
	}

	// The same port held on ::1 only: the browser could reach that program.
	held6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback here")
	}
	defer held6.Close()
	port6 := held6.Addr().(*net.TCPAddr).Port
	redirect = "https://localhost:" + strconv.Itoa(port6)
	_, err = Browser(context.Background(), newTokenEndpoint(t).config(), BrowserOptions{RedirectURI: redirect, NoOpen: true})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d of redirect_uri %q is in use", port6, redirect)) {
		t.Errorf("port held on ::1: got %v, want it named in use", err)
	}
}

func TestBrowserHTTP(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			te := newTokenEndpoint(t)
			l := startLogin(t, te, BrowserOptions{RedirectHost: host})
			redirect := l.authorize.Get("redirect_uri")
			if !regexp.MustCompile(`^http://` + regexp.QuoteMeta(host) + `:\d+$`).MatchString(redirect) {
				t.Fatalf("redirect_uri %q, want http://%s:PORT", redirect, host)
			}
			if l.fingerprint != "" || strings.Contains(l.text, "browser will warn") {
				t.Errorf("plain http, yet a certificate warning:\n%s", l.text)
			}
			if code, _ := get(t, http.DefaultClient, l.callback(t, "/other")); code != http.StatusNotFound {
				t.Errorf("GET /other: status %d, want 404", code)
			}
			if code, body := get(t, http.DefaultClient, l.callback(t, "")); code != http.StatusOK {
				t.Fatalf("redirect: status %d, page %q", code, body)
			}
			if tok, err := l.finish(t); err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("Browser: %v, %v", tok, err)
			}
		})
	}
}

func TestRedirectURI(t *testing.T) {
	tests := []struct {
		host, uri string
		wantURI   string // sent with port 5555
		wantPort  int
		wantPath  string
	}{
		{"localhost", "", "http://localhost:5555", 0, "/"},
		{"127.0.0.1", "", "http://127.0.0.1:5555", 0, "/"},
		{"localhost", "https://localhost", "https://localhost:5555", 0, "/"},
		{"localhost", "https://localhost/", "https://localhost:5555/", 0, "/"},
		{"localhost", "https://127.0.0.1/auth/cb", "https://127.0.0.1:5555/auth/cb", 0, "/auth/cb"},
		{"localhost", "https://localhost:8443", "https://localhost:8443", 8443, "/"},
		{"localhost", "http://localhost:8400/callback", "http://localhost:8400/callback", 8400, "/callback"},
	}
	for _, tt := range tests {
		r, err := parseRedirect(BrowserOptions{RedirectHost: tt.host, RedirectURI: tt.uri})
		if err != nil {
			t.Errorf("%q: %v", tt.uri, err)
			continue
		}
		if got := r.uri(5555); got != tt.wantURI || r.port != tt.wantPort || r.path != tt.wantPath {
			t.Errorf("%q: got %q, port %d, path %q; want %q, %d, %q", tt.uri, got, r.port, r.path, tt.wantURI, tt.wantPort, tt.wantPath)
		}
	}
	for _, bad := range []string{"https://example.com", "ftp://localhost", "https://localhost/?a=b", "https://[::1]:8443", "https://localhost:0"} {
		if _, err := parseRedirect(BrowserOptions{RedirectURI: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFingerprint(t *testing.T) {
	// openssl x509 -fingerprint -sha256 prints SHA-256 of the DER.
	if got, want := fingerprint([]byte("abc")), "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
