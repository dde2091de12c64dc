//go:build unix

package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

// The real program (this test binary run as oauth2mail, as in
// crash_test.go) against an identity provider and mail servers that
// misbehave: each case must end with one error line naming the problem,
// hint lines with the fix and nothing else, the right exit code, within
// the time limit, and the state directory byte for byte as it was. The
// answers at each IdP endpoint, and the slow ones (a body dripping past
// the 30 s HTTP timeout), are internal/flows' and internal/helper's
// hostile tests, where the timeout can be short.

// hostileEnv is a throwaway home with two accounts on a fake identity
// platform over TLS whose endpoints can be made to answer badly: "work"
// (delegated, logged in) and "svc" (app-only, secret in the config).
type hostileEnv struct {
	t    *testing.T
	bin  string
	home string
	env  []string
	idp  *fakeidp.Server
	mu   sync.Mutex
	bad  map[string]http.HandlerFunc // by path suffix: "/token", "/devicecode"
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	bin, err := exec.LookPath("oauth2mail")
	if err != nil {
		t.Fatalf("the test binary as oauth2mail: %v", err)
	}
	h := &hostileEnv{t: t, bin: bin, home: t.TempDir(), idp: fakeidp.NewHandler(fakeidp.Options{StrictRotation: true})}
	h.idp.AddApp(fakeidp.App{ClientID: testAppID, Secret: testAppSecret})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for suffix, bad := range h.answers() {
			if strings.HasSuffix(r.URL.Path, suffix) {
				r.ParseForm() // the server notices a client gone only once it has read the body
				bad(w, r)
				return
			}
		}
		h.idp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(h.home, "idp-ca.pem")
	h.write(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	h.write(filepath.Join(h.home, ".config", "oauth2mail", "config.toml"), []byte(fmt.Sprintf(`[accounts.work]
provider       = "microsoft"
email          = "me@contoso.com"
client_id      = "11111111-2222-3333-4444-555555555555"
authority_host = %[1]q
store          = "file"

[accounts.svc]
provider       = "microsoft"
flow           = "client-credentials"
email          = "robot@contoso.com"
tenant         = "contoso.com"
client_id      = %[2]q
client_secret  = %[3]q
authority_host = %[1]q
store          = "file"
`, srv.URL, testAppID, testAppSecret)))
	// Only what is named here reaches the children; a race child must
	// not sleep a second at exit.
	h.env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir(), "GORACE=atexit_sleep_ms=0",
		"HOME=" + h.home, "XDG_CONFIG_HOME=" + filepath.Join(h.home, ".config"), "XDG_STATE_HOME=" + filepath.Join(h.home, ".local", "state"),
		"XDG_RUNTIME_DIR=" + filepath.Join(h.home, "run"), "OAUTH2MAIL_AGENT=off", "SSL_CERT_FILE=" + ca}
	if d := os.Getenv("GOCOVERDIR"); d != "" {
		h.env = append(h.env, "GOCOVERDIR="+d)
	}
	if r := h.run("login", "work", "--device"); r.code != 0 {
		t.Fatalf("login: exit %d: %s", r.code, r.stderr)
	}
	if r := h.run("token", "svc"); r.code != 0 {
		t.Fatalf("token svc: exit %d: %s", r.code, r.stderr)
	}
	return h
}

func (h *hostileEnv) write(path string, data []byte) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hostileEnv) answers() map[string]http.HandlerFunc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}

// set makes the endpoint ending in suffix answer with bad; set() heals.
func (h *hostileEnv) set(suffix string, bad http.HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bad = nil
	if bad != nil {
		h.bad = map[string]http.HandlerFunc{suffix: bad}
	}
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs oauth2mail with args and extra environment.
func (h *hostileEnv) run(args ...string) result { return h.runEnv(nil, args...) }

func (h *hostileEnv) runEnv(extra []string, args ...string) result {
	h.t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(append([]string(nil), h.env...), extra...)
	cmd.Dir = h.home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		h.t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode(), time.Since(start)}
}

func (h *hostileEnv) store() *cache.Store {
	return cache.New(filepath.Join(h.home, ".local", "state", "oauth2mail"), "file")
}

// expire makes account's stored access token stale, so the next request
// goes to the IdP.
func (h *hostileEnv) expire(account string) {
	h.t.Helper()
	st, err := h.store().Load(account)
	if err != nil {
		h.t.Fatal(err)
	}
	st.Expiry = time.Now().Add(-time.Minute)
	if err := h.store().Save(account, st); err != nil {
		h.t.Fatal(err)
	}
}

// snapshot is every file of the state directory with its bytes.
func (h *hostileEnv) snapshot() map[string]string {
	h.t.Helper()
	files := map[string]string{}
	dir := h.store().Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			h.t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

func (h *hostileEnv) unchanged(before map[string]string) {
	h.t.Helper()
	after := h.snapshot()
	for name, data := range before {
		if after[name] != data {
			h.t.Errorf("the state file %s changed", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			h.t.Errorf("a new file %s in the state directory", name)
		}
	}
}

// oneError checks stderr holds exactly one error line, matching want, and
// after it hint lines only (before it, a login's instructions may come);
// and that it shows none of secrets.
func oneError(t *testing.T, stderr string, want *regexp.Regexp, secrets ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	errs := 0
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "oauth2mail: error: "):
			errs++
			if !want.MatchString(l) {
				t.Errorf("error line %q, want %s", l, want)
			}
		case errs > 0 && !strings.HasPrefix(l, "oauth2mail: hint: "):
			t.Errorf("stderr line %d after the error is not a hint: %q", i+1, l)
		}
	}
	if errs != 1 {
		t.Errorf("%d error lines in %q, want 1", errs, stderr)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(stderr, s) {
			t.Errorf("stderr shows a secret (%d bytes) or the body", len(s))
		}
	}
}

const bodySecret = "BODY-SECRET-0123456789"

func htmlAnswer(status int, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><body>Sign in to the Wi-Fi %s</body></html>\n", bodySecret)
	}
}

func TestHostileIdPCLI(t *testing.T) {
	t.Parallel()
	const network = `oauth2mail: hint: check your network \(a captive portal may want you to sign in to it in a browser\) and try again later`
	answers := []struct {
		name string
		bad  http.HandlerFunc
		what string // the error after "ACCOUNT: OP: "
		hint string
	}{
		{"HTML 502 from a proxy", htmlAnswer(502, "text/html"), `the identity provider answered with an HTML page, not an OAuth response: a proxy or captive portal\? \(HTTP 502\)`, network},
		{"captive portal 200", htmlAnswer(200, "text/html; charset=utf-8"), `the identity provider answered with an HTML page, not an OAuth response: a proxy or captive portal\? \(HTTP 200\)`, network},
		{"HTML labelled JSON", htmlAnswer(200, "application/json"), `the identity provider answered with an HTML page, not an OAuth response: a proxy or captive portal\? \(HTTP 200\)`, network},
		{"200 without access_token", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"refresh_token":%q}`, bodySecret)
		}, `the identity provider answered (without an access token|the device code request without a device code \(HTTP 200\))`, `oauth2mail: hint: (try again later|check your network)`},
		{"redirect to a portal", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://wifi.hotel.example/portal?return="+bodySecret, http.StatusFound)
		}, `the identity provider answered with a redirect to wifi\.hotel\.example, not an OAuth response: a proxy or captive portal\? \(HTTP 302\)`, network},
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		}, `the identity provider answered with a redirect to 127\.0\.0\.1, not an OAuth response: a proxy or captive portal\? \(HTTP 307\)`, network},
		{"endless body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for chunk := bytes.Repeat([]byte(bodySecret), 4096); r.Context().Err() == nil; {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, `the identity provider answered with more than 1 MiB, not an OAuth response: a proxy or captive portal\? \(HTTP 200\)`, network},
	}
	paths := []struct {
		name, suffix string
		args         []string
		expire       string
		prefix       string
	}{
		{"refresh", "/token", []string{"token", "work"}, "work", "work: refresh: "},
		{"app-only token", "/token", []string{"xoauth2", "svc", "--user", "box@contoso.com"}, "svc", "svc: app token: "},
		{"device code request", "/devicecode", []string{"login", "work", "--device"}, "", "work: device login: "},
		{"device polling", "/token", []string{"login", "work", "--device"}, "", "work: device login: "},
	}
	var wg sync.WaitGroup // all at once, not -parallel at a time: the cases wait on processes and the clock
	for _, ans := range answers {
		wg.Go(func() {
			t.Run(ans.name, func(t *testing.T) {
				h := newHostileEnv(t)
				for _, p := range paths {
					if p.expire != "" {
						h.expire(p.expire)
					}
					before := h.snapshot()
					st, _ := h.store().Load("work")
					h.set(p.suffix, ans.bad)
					r := h.run(p.args...)
					t.Logf("%s: exit %d in %s: %s", p.name, r.code, r.took.Round(time.Millisecond), strings.ReplaceAll(r.stderr, "\n", " | "))
					if r.code != exitTemporary || r.stdout != "" {
						t.Errorf("%s: exit %d, stdout %q; want exit 4 and nothing", p.name, r.code, r.stdout)
					}
					oneError(t, r.stderr, regexp.MustCompile("^oauth2mail: error: "+regexp.QuoteMeta(p.prefix)+ans.what), bodySecret, st.AccessToken, st.RefreshToken, testAppSecret)
					if !regexp.MustCompile("(?m)^" + ans.hint).MatchString(r.stderr) {
						t.Errorf("%s: no hint %s in %q", p.name, ans.hint, r.stderr)
					}
					// A device login waits an interval (1 s) before polling.
					if r.took > 15*time.Second { // slack for a loaded CI machine; a hang is 30 s
						t.Errorf("%s: took %s", p.name, r.took)
					}
					h.unchanged(before)
					h.set("", nil)
				}
				// Once the IdP behaves, both accounts work.
				for _, account := range []string{"work", "svc"} {
					h.expire(account)
					if r := h.run("token", account); r.code != 0 || !h.idp.ValidAccessToken(strings.TrimSpace(r.stdout)) {
						t.Errorf("token %s afterwards: exit %d: %s", account, r.code, r.stderr)
					}
				}
			})
		})
	}
	wg.Wait()
}

// expires_in missing, zero, negative or huge: the token is printed either
// way; --verbose says what was assumed; status shows the stored expiry; the
// agent does the same as the direct path.
func TestHostileExpiresInCLI(t *testing.T) {
	t.Parallel()
	h := newHostileEnv(t)
	agentEnv := []string{"OAUTH2MAIL_AGENT="}
	h.startAgent()
	tests := []struct {
		name, field string
		life        time.Duration
		note        string
	}{
		{"missing", ``, 10 * time.Minute, "oauth2mail: the identity provider gave no lifetime (expires_in); assuming 10m0s\n"},
		{"zero", `,"expires_in":0`, 10 * time.Minute, "assuming 10m0s"},
		{"negative", `,"expires_in":-3600`, 0, "oauth2mail: the identity provider says the access token has already expired (expires_in not positive); using it once, not caching it\n"},
		{"10^12 seconds", `,"expires_in":1000000000000`, 24 * time.Hour, "capping it at 24\n"},
	}
	for _, tt := range tests {
		for _, via := range []string{"direct", "agent"} {
			var env []string
			if via == "agent" {
				env = agentEnv
			}
			h.expire("work")
			tok := "at-" + strings.ReplaceAll(tt.name, " ", "-") + "-" + via + "-0123456789abcdef"
			h.idp.FailNext(1, 200, "application/json", `{"token_type":"Bearer","access_token":"`+tok+`"`+tt.field+`}`)
			r := h.runEnv(env, "token", "work", "-v")
			if r.code != 0 || r.stdout != tok+"\n" || !strings.Contains(r.stderr, tt.note) {
				t.Errorf("%s, %s: exit %d, stdout %q, stderr %q; want the token and %q", tt.name, via, r.code, r.stdout, r.stderr, tt.note)
			}
			if via == "agent" && !strings.Contains(r.stderr, "answered by the agent") {
				t.Errorf("%s: the agent did not answer: %s", tt.name, r.stderr)
			}
			if strings.Contains(r.stderr, tok) {
				t.Errorf("%s, %s: -v shows the token", tt.name, via)
			}
			st, err := h.store().Load("work")
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Until(st.Expiry); got > tt.life || got < tt.life-10*time.Second {
				t.Errorf("%s, %s: stored expiry in %s, want %s", tt.name, via, got.Round(time.Second), tt.life)
			}
			// The next caller gets it from the cache, or a new one.
			again := h.runEnv(env, "token", "work")
			if reused := again.stdout == tok+"\n"; reused != (tt.life > 0) || again.code != 0 {
				t.Errorf("%s, %s: next token reused=%v (exit %d), want %v", tt.name, via, reused, again.code, tt.life > 0)
			}
		}
	}
}

// The agent answers a hostile IdP's failures byte for byte as the direct
// path does.
func TestHostileAgentSameAsDirect(t *testing.T) {
	t.Parallel()
	h := newHostileEnv(t)
	h.startAgent()
	for _, bad := range []http.HandlerFunc{htmlAnswer(502, "text/html"), func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://portal.example/", http.StatusSeeOther)
	}} {
		var got [2]result
		for i, env := range [][]string{{"OAUTH2MAIL_AGENT=off"}, {"OAUTH2MAIL_AGENT="}} {
			h.expire("work")
			h.set("/token", bad)
			got[i] = h.runEnv(env, "token", "work")
			h.set("", nil)
		}
		if got[0].code != exitTemporary || got[0].code != got[1].code || got[0].stderr != got[1].stderr || got[0].stdout != got[1].stdout {
			t.Errorf("direct: exit %d %q; agent: exit %d %q", got[0].code, got[0].stderr, got[1].code, got[1].stderr)
		}
	}
}

// startAgent runs `oauth2mail agent` until the test ends.
func (h *hostileEnv) startAgent() {
	h.t.Helper()
	cmd := exec.Command(h.bin, "agent")
	cmd.Env = append(append([]string(nil), h.env...), "OAUTH2MAIL_AGENT=")
	cmd.Dir = h.home
	startAgentProcess(h.t, cmd, filepath.Join(h.home, "run", "oauth2mail", "agent.sock"))
}

// Mail servers that never answer, answer garbage, close mid-dialogue or
// flood: `oauth2mail test --timeout 2s` ends within it with one line and
// the right code, and stores nothing.
func TestHostileMailServerCLI(t *testing.T) {
	t.Parallel()
	h := newHostileEnv(t)
	cert, caFile := mailCert(t, h.home)
	st, err := h.store().Load("work")
	if err != nil {
		t.Fatal(err)
	}
	before := h.snapshot()
	if r := h.run("test", "work", "imap", "--timeout", "0s"); r.code != exitUsage || !strings.Contains(r.stderr, "--timeout 0s is not a duration above zero") {
		t.Errorf("--timeout 0s: exit %d: %s", r.code, r.stderr)
	}
	const imapTLS = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] hostile ready"
	tests := []struct {
		name, proto, mode string
		serve             func(c *mailConn)
		code              int
		want              string // the error after "work: PROTO: 127.0.0.1:PORT: "
		maxTook           time.Duration
	}{
		{"never answers", "imap", "--starttls", func(c *mailConn) { c.drain() }, 4,
			`waiting for the server: no answer within 1s`, 2 * time.Second},
		{"never answers the TLS handshake", "pop", "--tls", func(c *mailConn) { c.drain() }, 4,
			`TLS handshake: no answer within 1s`, 2 * time.Second},
		{"binary garbage", "pop", "--starttls", func(c *mailConn) { c.say("\x00\xff\xfe\x01binary\x1b[2J"); c.drain() }, 2,
			`this does not look like a POP3 server: it said "\\x00\\xff\\xfe\\x01binary\\x1b\[2J"`, time.Second},
		{"an HTTP server, TLS expected", "imap", "--tls", func(c *mailConn) {
			c.r.Read(make([]byte, 512)) // a ClientHello is no HTTP request
			c.say("HTTP/1.1 400 Bad Request", "Content-Length: 0", "")
			c.drain()
		}, 2, `no TLS on this port: the server answered the TLS handshake in plain text`, time.Second},
		{"an HTTP server, STARTTLS expected", "imap", "--starttls", func(c *mailConn) { c.drain() }, 4,
			`waiting for the server: no answer within 1s`, 2 * time.Second},
		{"an SSH server", "smtp", "--starttls", func(c *mailConn) { c.say("SSH-2.0-OpenSSH_9.6p1 Debian-4"); c.drain() }, 2,
			`this does not look like an SMTP server: it said "SSH-2.0-OpenSSH_9.6p1 Debian-4"`, time.Second},
		// The closing servers read what the client sent first: closing
		// with unread bytes resets the connection instead of ending it.
		{"closes after the greeting", "imap", "--starttls", func(c *mailConn) {
			c.say("* OK [CAPABILITY IMAP4rev1 STARTTLS] bye now")
			c.readLine()
		}, 4, `the server closed the connection`, time.Second},
		{"closes after STARTTLS", "smtp", "--starttls", func(c *mailConn) {
			c.say("220 mx.example ESMTP")
			c.readLine()
			c.say("250-mx.example", "250 STARTTLS")
			c.readLine()
			c.say("220 2.0.0 go ahead")
			c.r.Read(make([]byte, 64<<10)) // the ClientHello
		}, 4, `TLS handshake: the server closed the connection`, time.Second},
		{"closes during AUTHENTICATE", "imap", "--tls", func(c *mailConn) {
			c.startTLS(cert)
			c.say(imapTLS)
			c.readLine()
		}, 4, `the server closed the connection`, time.Second},
		{"endless untagged lines", "imap", "--tls", func(c *mailConn) {
			c.startTLS(cert)
			c.say(imapTLS)
			for c.say("* OK still thinking") == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}, 4, `waiting for the server: the test did not finish within 2s`, 3 * time.Second},
		{"a 1 GB line", "imap", "--starttls", func(c *mailConn) {
			c.w.WriteString("* OK ")
			line := bytes.Repeat([]byte("x"), 1<<20)
			for range 1 << 10 {
				if _, err := c.w.Write(line); err != nil {
					return
				}
			}
		}, 4, `the server sent a line longer than 16384 bytes`, time.Second},
		{"an endless SMTP reply", "smtp", "--tls", func(c *mailConn) {
			c.startTLS(cert)
			c.say("220 mx.example ESMTP")
			c.readLine()
			for c.say("250-still going") == nil {
			}
		}, 4, `a reply of more than 1000 lines`, time.Second},
	}
	var wg sync.WaitGroup // all at once, not -parallel at a time: the cases wait on processes and the clock
	for _, tt := range tests {
		wg.Go(func() {
			t.Run(tt.name, func(t *testing.T) {
				addr := mailServer(t, tt.serve)
				r := h.run("test", "work", tt.proto, "--server", addr, tt.mode, "--ca", caFile, "--timeout", "2s")
				t.Logf("exit %d in %s: %s", r.code, r.took.Round(time.Millisecond), strings.ReplaceAll(r.stderr, "\n", " | "))
				if r.code != tt.code || r.stdout != "" {
					t.Errorf("exit %d, stdout %q; want exit %d and nothing", r.code, r.stdout, tt.code)
				}
				oneError(t, r.stderr, regexp.MustCompile("^oauth2mail: error: work: "+tt.proto+": "+regexp.QuoteMeta(addr)+": "+tt.want), st.AccessToken, st.RefreshToken)
				// The limit, plus a process's start and exit.
				if limit := tt.maxTook + 8*time.Second; r.took > limit { // slack for a loaded CI machine
					t.Errorf("took %s, want at most %s", r.took, limit)
				}
			})
		})
	}
	wg.Wait()
	t.Cleanup(func() { h.unchanged(before) })
}

// mailConn is the server's side of one connection.
type mailConn struct {
	net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func (c *mailConn) say(lines ...string) error {
	for _, l := range lines {
		c.w.WriteString(l + "\r\n")
	}
	return c.w.Flush()
}

func (c *mailConn) readLine() string {
	l, _ := c.r.ReadString('\n')
	return l
}

// drain reads until the client goes.
func (c *mailConn) drain() {
	for {
		if _, err := c.r.ReadByte(); err != nil {
			return
		}
	}
}

func (c *mailConn) startTLS(cert tls.Certificate) {
	tc := tls.Server(c.Conn, &tls.Config{Certificates: []tls.Certificate{cert}})
	c.Conn, c.r, c.w = tc, bufio.NewReader(tc), bufio.NewWriter(tc)
}

// mailServer serves one connection with serve on 127.0.0.1 and returns
// its address.
func mailServer(t *testing.T, serve func(*mailConn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		serve(&mailConn{Conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)})
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// mailCert is a self-signed certificate for 127.0.0.1 and the PEM file
// that makes oauth2mail trust it.
func mailCert(t *testing.T, dir string) (tls.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "mail-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}
