package probe

import (
	"fmt"
	"testing"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// RFC 1734/5034: AUTH XOAUTH2, a bare "+" (as Exchange sends it), the
// string on its own line; STLS first; then STAT.
func TestPOPStartTLSAuthSTAT(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("+OK The Microsoft Exchange POP3 service is ready.")
		p.expect("CAPA")
		p.say("+OK", "TOP", "UIDL", "STLS", "USER", ".")
		p.expect("STLS")
		p.say("+OK Begin TLS negotiation.")
		p.startTLS()
		p.expect("CAPA")
		p.say("+OK", "TOP", "UIDL", "SASL PLAIN XOAUTH2", "USER", ".")
		p.expect("AUTH XOAUTH2")
		p.say("+")
		if !p.expectSASL("", testUser) {
			return
		}
		p.say("+OK User successfully authenticated.")
		p.expect("STAT")
		p.say("+OK 2 1234")
		p.expect("QUIT")
		p.say("+OK Microsoft Exchange Server POP3 server signing off.")
	})
	res, err := f.run(t, f.options(config.POP, config.TLSStartTLS, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("pop: 127.0.0.1:%d (STARTTLS): authenticated as user@example.test with XOAUTH2; STAT ok (2 messages, 1234 octets)", f.port)
	if res.String() != want {
		t.Errorf("result %q\nwant   %q", res, want)
	}
}

func TestPOPExchangeRefusal(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("+OK The Microsoft Exchange POP3 service is ready.")
		p.expect("CAPA")
		p.say("+OK", "SASL PLAIN XOAUTH2", ".")
		p.expect("AUTH XOAUTH2")
		p.say("+ ")
		p.expectSASL("", testUser)
		p.say("-ERR Authentication failure: unknown user name or bad password.")
	})
	_, err := f.run(t, f.options(config.POP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Reply != "-ERR Authentication failure: unknown user name or bad password." {
		t.Errorf("reply %q", e.Reply)
	}
	hasHint(t, e, "Set-CASMailbox -Identity user@example.test -PopEnabled $true")
}

// Dovecot's refusal: the JSON challenge, an empty line, -ERR.
func TestPOPErrorChallenge(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("+OK Dovecot ready.")
		p.expect("CAPA")
		p.say("-ERR Unknown command") // CAPA is optional: AUTH is tried all the same
		p.expect("AUTH XOAUTH2")
		p.say("+ ")
		p.expectSASL("", testUser)
		p.say("+ " + b64(dovecotChallenge))
		if p.expect("") {
			p.say("-ERR [AUTH] Authentication failed.")
		}
	})
	_, err := f.run(t, f.options(config.POP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Reply != "-ERR [AUTH] Authentication failed." || e.Challenge != dovecotChallenge {
		t.Errorf("reply %q, challenge %q", e.Reply, e.Challenge)
	}
}

func TestPOPNoSTLS(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("+OK ready")
		p.expect("CAPA")
		p.say("-ERR no CAPA here")
		p.expect("STLS")
		p.say("-ERR STLS not available")
		p.line()
	})
	_, err := f.run(t, f.options(config.POP, config.TLSStartTLS, nil))
	e := probeErr(t, err, Misconfigured)
	want := `the server does not offer STARTTLS; refusing to send a token without TLS (it said "-ERR STLS not available")`
	if e.Msg != want {
		t.Errorf("msg %q\nwant %q", e.Msg, want)
	}
}

func TestPOPNoXOAUTH2(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("+OK ready")
		p.expect("CAPA")
		p.say("+OK", "SASL PLAIN LOGIN", "USER", ".")
		p.line()
	})
	_, err := f.run(t, f.options(config.POP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Msg != "the server does not offer XOAUTH2; it offers: SASL PLAIN LOGIN" {
		t.Errorf("msg %q", e.Msg)
	}
}
