package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// A fake mail server: one scripted connection on 127.0.0.1, with the
// certificate of net/http/httptest (valid for 127.0.0.1).

var (
	certOnce sync.Once
	certTLS  tls.Certificate
	certPEM  []byte
)

func testCert(t *testing.T) (tls.Certificate, string) {
	certOnce.Do(func() {
		s := httptest.NewUnstartedServer(nil)
		s.StartTLS()
		certTLS = s.TLS.Certificates[0]
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
		s.Close()
	})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certTLS, ca
}

// testToken is shaped like a Microsoft access token (a JWT of 2.5 KB).
var testToken = func() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 2500)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	b[36], b[2200] = '.', '.'
	return "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9" + string(b[36:])
}()

const testUser = "user@example.test"

// peer is the server's side of the connection.
type peer struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	tls  bool
	cert tls.Certificate

	mu    sync.Mutex
	lines []string // what the client sent, with "(tls) " before lines sent over TLS
}

// say sends lines, each with CR LF.
func (p *peer) say(lines ...string) {
	p.conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
}

// line reads one line from the client; ok is false at EOF or on error.
func (p *peer) line() (string, bool) {
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := p.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
	p.mu.Lock()
	if p.tls {
		p.lines = append(p.lines, "(tls) "+l)
	} else {
		p.lines = append(p.lines, l)
	}
	p.mu.Unlock()
	return l, true
}

// expect reads a line and checks it is want.
func (p *peer) expect(want string) bool {
	got, ok := p.line()
	if !ok || got != want {
		p.t.Errorf("server got %.80q (ok %v), want %q", got, ok, want)
		return false
	}
	return true
}

// expectSASL reads a line and checks it is the XOAUTH2 string for user
// and testToken, after prefix.
func (p *peer) expectSASL(prefix, user string) bool {
	got, ok := p.line()
	b64, found := strings.CutPrefix(got, prefix)
	if !ok || !found {
		p.t.Errorf("server got %.80q, want %q and the SASL string", got, prefix)
		return false
	}
	c, err := sasl.DecodeXOAUTH2(b64)
	if err != nil || c.User != user || c.Token != testToken {
		p.t.Errorf("SASL string: %v, %v; want user %s and the test token", c, err, user)
		return false
	}
	if !p.tls {
		p.t.Errorf("the SASL string came before TLS")
	}
	return true
}

// startTLS turns the connection into TLS, server side.
func (p *peer) startTLS() {
	if err := p.tryTLS(); err != nil {
		p.t.Errorf("server TLS handshake: %v", err)
	}
}

func (p *peer) tryTLS() error {
	tc := tls.Server(p.conn, &tls.Config{Certificates: []tls.Certificate{p.cert}})
	p.conn.SetDeadline(time.Now().Add(5 * time.Second))
	err := tc.Handshake()
	p.conn, p.r, p.tls = tc, bufio.NewReader(tc), true
	return err
}

func (p *peer) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// fake runs script for the first connection to a new listener.
type fake struct {
	addr string
	port int
	ca   string
	p    *peer
	done chan struct{}
}

func newFake(t *testing.T, implicitTLS bool, script func(p *peer)) *fake {
	t.Helper()
	cert, ca := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, ca: ca, done: make(chan struct{})}
	f.p = &peer{t: t, cert: cert}
	go func() {
		defer close(f.done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		f.p.conn, f.p.r = c, bufio.NewReader(c)
		if implicitTLS {
			f.p.startTLS()
		}
		script(f.p)
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Error("the fake server's script did not end")
		}
	})
	return f
}

// options for a test against f: user testUser, the test token, short
// timeouts, a transcript in tr.
func (f *fake) options(proto, mode string, tr *bytes.Buffer) Options {
	o := Options{
		Proto: proto, Server: config.Server{Host: "127.0.0.1", Port: f.port, TLS: mode}, CAFile: f.ca,
		User: testUser, Token: testToken, Account: "work", Email: testUser,
		Timeout: 5 * time.Second, ReadTimeout: 2 * time.Second,
	}
	if tr != nil {
		o.Transcript = tr
	}
	return o
}

// run runs a test against f and waits for the fake's script to end.
func (f *fake) run(t *testing.T, o Options) (Result, error) {
	t.Helper()
	res, err := Run(context.Background(), o)
	<-f.done
	return res, err
}

// probeErr asserts err is an *Error of kind k.
func probeErr(t *testing.T, err error, k Kind) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("err = %v (%T), want *Error of kind %d", err, err, k)
	}
	if e.Kind != k {
		t.Errorf("kind = %d, want %d; err: %v", e.Kind, k, e)
	}
	return e
}

// hasHint asserts one of e's hints contains each of want.
func hasHint(t *testing.T, e *Error, want ...string) {
	t.Helper()
	all := strings.Join(e.Hints, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no hint contains %q; hints:\n%s", w, all)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
