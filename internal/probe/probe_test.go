package probe

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// Something else than the protocol's greeting: another protocol on the
// port, or noise.
func TestGarbageGreeting(t *testing.T) {
	for _, proto := range []string{config.IMAP, config.POP, config.SMTP} {
		t.Run(proto, func(t *testing.T) {
			f := newFake(t, true, func(p *peer) {
				p.say("HTTP/1.1 400 Bad Request\x1b[2J\xff")
				p.line()
			})
			_, err := f.run(t, f.options(proto, config.TLSImplicit, nil))
			e := probeErr(t, err, Misconfigured)
			if !strings.Contains(e.Msg, `it said "HTTP/1.1 400 Bad Request\x1b[2J\xff"`) {
				t.Errorf("msg %q", e.Msg)
			}
		})
	}
}

// Garbage in the middle of a dialogue, where a reply should be.
func TestGarbageReply(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("220 ready")
		p.expect("EHLO localhost")
		p.say("250-mx", "250 AUTH XOAUTH2")
		p.expect("AUTH XOAUTH2")
		p.say("\x00\x01garbage")
		p.line()
	})
	_, err := f.run(t, f.options(config.SMTP, config.TLSImplicit, nil))
	e := probeErr(t, err, Temporary)
	if !strings.Contains(e.Msg, `the server's answer is not an SMTP reply: "\x00\x01garbage"`) {
		t.Errorf("msg %q", e.Msg)
	}
}

func TestServerClosesMidDialogue(t *testing.T) {
	tests := []struct {
		name, last, want string
	}{
		{"after a line", "", "the server closed the connection"},
		{"in a line", "A1 NO Auth", `the server closed the connection in the middle of a line ("A1 NO Auth")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, true, func(p *peer) {
				imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
				p.line()
				p.conn.Write([]byte(tt.last))
			})
			_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
			if e := probeErr(t, err, Temporary); e.Msg != tt.want {
				t.Errorf("msg %q, want %q", e.Msg, tt.want)
			}
		})
	}
}

// A server that never speaks: each read is bounded; in STARTTLS mode the
// likely cause (a TLS port) is named.
func TestSilentServer(t *testing.T) {
	stop := make(chan struct{})
	f := newFake(t, false, func(p *peer) { <-stop })
	o := f.options(config.IMAP, config.TLSStartTLS, nil)
	o.ReadTimeout = 200 * time.Millisecond
	t0 := time.Now()
	_, err := Run(context.Background(), o)
	close(stop)
	e := probeErr(t, err, Temporary)
	if e.Msg != "waiting for the server: no answer within 200ms" {
		t.Errorf("msg %q", e.Msg)
	}
	hasHint(t, e, "use --tls")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
	if want := fmt.Sprintf("imap: 127.0.0.1:%d: ", f.port); !strings.HasPrefix(e.Error(), want) {
		t.Errorf("error %q does not name %s", e, want)
	}
}

// A server that keeps talking without ever answering: the whole test is
// bounded too.
func TestOverallTimeout(t *testing.T) {
	stop := make(chan struct{})
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
		p.line()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				p.say("* OK still thinking")
			}
		}
	})
	o := f.options(config.IMAP, config.TLSImplicit, nil)
	o.Timeout, o.ReadTimeout = 500*time.Millisecond, time.Second
	_, err := Run(context.Background(), o)
	close(stop)
	if e := probeErr(t, err, Temporary); e.Msg != "waiting for the server: the test did not finish within 500ms" {
		t.Errorf("msg %q", e.Msg)
	}
}

func TestLongLine(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("* OK " + strings.Repeat("x", maxLine))
		p.line()
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	if e := probeErr(t, err, Temporary); !strings.Contains(e.Msg, "longer than 16384 bytes") {
		t.Errorf("msg %q", e.Msg)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	f := newFake(t, false, func(p *peer) { p.tryTLS() })
	o := f.options(config.IMAP, config.TLSImplicit, nil)
	o.CAFile = "" // the system's roots do not know httptest's certificate
	_, err := f.run(t, o)
	e := probeErr(t, err, Untrusted)
	hasHint(t, e, `set ca_file = "/path/to/ca.pem" for work`, "--ca FILE")
}

func TestTLSOnPlainPort(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("* OK [CAPABILITY IMAP4rev1 STARTTLS] plain text here")
		p.line()
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	e := probeErr(t, err, Misconfigured)
	hasHint(t, e, "use --starttls")
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, err = Run(context.Background(), Options{Proto: config.SMTP, Server: config.Server{Host: "127.0.0.1", Port: port, TLS: config.TLSStartTLS}, User: testUser, Token: testToken})
	e := probeErr(t, err, Temporary)
	if want := fmt.Sprintf("smtp: 127.0.0.1:%d: cannot connect: connection refused", port); e.Error() != want {
		t.Errorf("error %q\nwant    %q", e, want)
	}
}

// The transcript shows every line of both sides, but neither the token nor
// the SASL string, nor any piece of them, on success and on refusal, for
// each protocol.
func TestTranscriptRedacted(t *testing.T) {
	saslB64 := sasl.XOAUTH2(testUser, testToken)
	scripts := map[string]func(p *peer){
		config.IMAP: func(p *peer) {
			imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
			p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", testUser)
			p.say("+ " + b64(dovecotChallenge))
			p.expect("")
			// a broken server that echoes what it got
			p.say("A1 NO [AUTHENTICATIONFAILED] no such token: " + testToken[100:300] + " in " + saslB64[40:900])
		},
		config.POP: func(p *peer) {
			p.say("+OK ready")
			p.expect("CAPA")
			p.say("+OK", "SASL XOAUTH2", ".")
			p.expect("AUTH XOAUTH2")
			p.say("+")
			p.expectSASL("", testUser)
			p.say("+OK")
			p.expect("STAT")
			p.say("+OK 0 0")
			p.expect("QUIT")
		},
	}
	for proto, script := range scripts {
		t.Run(proto, func(t *testing.T) {
			f := newFake(t, true, script)
			var tr bytes.Buffer
			_, err := f.run(t, f.options(proto, config.TLSImplicit, &tr))
			out := tr.String()
			if err != nil {
				out += "\n" + err.Error()
			}
			assertNoSecret(t, out, saslB64)
			if !strings.Contains(out, fmt.Sprintf("<XOAUTH2 string, %d bytes, redacted>", len(saslB64))) {
				t.Errorf("no placeholder in the transcript:\n%s", out)
			}
			if !strings.Contains(out, "S: +OK") && !strings.Contains(out, "S: A1 NO") {
				t.Errorf("server lines missing:\n%s", out)
			}
		})
	}
}

// assertNoSecret fails when out holds the token or the SASL string, or
// secretWindow characters of either (beyond the SASL string's first 40,
// which encode only "user=" and the mailbox).
func assertNoSecret(t *testing.T, out, saslB64 string) {
	t.Helper()
	for _, sec := range []string{testToken, saslB64[40:]} {
		for i := 0; i+secretWindow <= len(sec); i++ {
			if strings.Contains(out, sec[i:i+secretWindow]) {
				t.Fatalf("secret bytes %q (at %d) in:\n%s", sec[i:i+secretWindow], i, out)
			}
		}
	}
}
