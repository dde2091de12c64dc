package probe

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// smtpFake is a submission server like Exchange Online's: no AUTH before
// STARTTLS, and any command line longer than 512 octets with its CR LF
// (RFC 5321 §4.5.3.1.4) is answered "500 5.5.6 Line too long", as
// Microsoft's servers do. authReply answers the SASL string.
func smtpFake(t *testing.T, user string, authReply func(p *peer)) *fake {
	return newFake(t, false, func(p *peer) {
		p.say("220-smtp.example.test Microsoft ESMTP MAIL Service ready", "220 second greeting line")
		for {
			cmd, ok := p.line()
			if !ok {
				return
			}
			if len(cmd)+2 > 512 {
				p.say("500 5.5.6 Line too long")
				continue
			}
			switch verb := strings.ToUpper(strings.Fields(cmd + " x")[0]); {
			case verb == "EHLO" && !p.tls:
				p.say("250-smtp.example.test Hello", "250-SIZE 157286400", "250-STARTTLS", "250 SMTPUTF8")
			case verb == "EHLO":
				p.say("250-smtp.example.test Hello", "250-AUTH LOGIN XOAUTH2", "250 SMTPUTF8")
			case verb == "STARTTLS":
				p.say("220 2.0.0 SMTP server ready")
				p.startTLS()
			case cmd == "AUTH XOAUTH2" && p.tls:
				p.say("334 ")
				if p.expectSASL("", user) {
					authReply(p)
				}
			case verb == "QUIT":
				p.say("221 2.0.0 Service closing transmission channel")
				return
			default:
				p.say("503 5.5.2 Send hello first")
			}
		}
	})
}

func TestSMTPStartTLSAuthOnContinuation(t *testing.T) {
	f := smtpFake(t, testUser, func(p *peer) { p.say("235 2.7.0 Authentication successful") })
	res, err := f.run(t, f.options(config.SMTP, config.TLSStartTLS, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("smtp: 127.0.0.1:%d (STARTTLS): authenticated as user@example.test with XOAUTH2", f.port)
	if res.String() != want {
		t.Errorf("result %q\nwant   %q", res, want)
	}
	for _, l := range f.p.sent() {
		if len(l)+2 > 512 && !strings.HasPrefix(l, "(tls) dXNlcj") {
			t.Errorf("a command line of %d octets: %.60q", len(l)+2, l)
		}
	}
}

func TestSMTPAuthDisabled(t *testing.T) {
	f := smtpFake(t, testUser, func(p *peer) {
		p.say("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0601CA0005.namprd06.prod.outlook.com 2024-01-01T00:00:00.000Z 08DC...]")
	})
	_, err := f.run(t, f.options(config.SMTP, config.TLSStartTLS, nil))
	e := probeErr(t, err, Rejected)
	if !strings.HasPrefix(e.Reply, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.") {
		t.Errorf("reply %q", e.Reply)
	}
	hasHint(t, e,
		"Set-CASMailbox -Identity user@example.test -SmtpClientAuthenticationDisabled $false",
		"Set-TransportConfig -SmtpClientAuthenticationDisabled $false")
}

// 5.7.3 for a shared mailbox over SMTP: authenticate as yourself and send
// with the shared address in From:.
func TestSMTPSharedMailbox573(t *testing.T) {
	f := smtpFake(t, "shared@example.test", func(p *peer) {
		p.say("535 5.7.3 Authentication unsuccessful [SN4PR0601CA0005.namprd06.prod.outlook.com]")
	})
	o := f.options(config.SMTP, config.TLSStartTLS, nil)
	o.User = "shared@example.test"
	_, err := f.run(t, o)
	e := probeErr(t, err, Rejected)
	hasHint(t, e, "user= must be the mailbox the token was issued for",
		"authenticate as yourself (no --user) and put shared@example.test in From:", "Send As")
}

// Gmail: 334 with a base64 JSON challenge, an empty line, then a multi-line
// 535.
func TestSMTPErrorChallenge(t *testing.T) {
	const challenge = `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`
	f := smtpFake(t, testUser, func(p *peer) {
		p.say("334 " + b64(challenge))
		if p.expect("") {
			p.say("535-5.7.8 Username and Password not accepted. For more information, go to",
				"535 5.7.8  https://support.google.com/mail/?p=BadCredentials")
		}
	})
	_, err := f.run(t, f.options(config.SMTP, config.TLSStartTLS, nil))
	e := probeErr(t, err, Rejected)
	if e.Challenge != challenge {
		t.Errorf("challenge %q", e.Challenge)
	}
	if e.Reply != "535-5.7.8 Username and Password not accepted. For more information, go to 535 5.7.8  https://support.google.com/mail/?p=BadCredentials" {
		t.Errorf("reply %q", e.Reply)
	}
	if !strings.Contains(e.Error(), challenge) {
		t.Errorf("the message does not show the challenge: %v", e)
	}
}

func TestSMTPTemporaryFailure(t *testing.T) {
	f := smtpFake(t, testUser, func(p *peer) { p.say("454 4.7.0 Temporary authentication failure") })
	_, err := f.run(t, f.options(config.SMTP, config.TLSStartTLS, nil))
	probeErr(t, err, Temporary)
}

func TestSMTPNoSTARTTLS(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("220 relay ready")
		p.expect("EHLO localhost")
		p.say("250-relay", "250-AUTH PLAIN XOAUTH2", "250 8BITMIME")
		for {
			if l, ok := p.line(); !ok || strings.HasPrefix(l, "AUTH") {
				if ok {
					t.Errorf("AUTH without TLS: %.40q", l)
				}
				return
			}
		}
	})
	_, err := f.run(t, f.options(config.SMTP, config.TLSStartTLS, nil))
	probeErr(t, err, Misconfigured)
}

func TestSMTPNoXOAUTH2(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("220 ready")
		p.expect("EHLO localhost")
		p.say("250-mx", "250-AUTH=LOGIN PLAIN", "250 8BITMIME")
		p.line()
	})
	_, err := f.run(t, f.options(config.SMTP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Msg != "the server does not offer XOAUTH2; it offers: AUTH LOGIN PLAIN" {
		t.Errorf("msg %q", e.Msg)
	}
}
