package probe

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

const dovecotChallenge = `{"status":"401","schemes":"bearer","scope":"mail"}`

// imapGreet greets with capabilities.
func imapGreet(p *peer, caps string) {
	p.say("* OK [CAPABILITY IMAP4rev1 " + caps + "] ready.")
}

func TestIMAPSASLIRThenLIST(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "SASL-IR AUTH=PLAIN AUTH=XOAUTH2")
		if !p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", testUser) {
			return
		}
		p.say("A1 OK AUTHENTICATE completed.")
		if !p.expect(`A2 LIST "" "*"`) {
			return
		}
		p.say(`* LIST (\HasNoChildren) "/" INBOX`,
			`* LIST (\HasNoChildren) "/" {9}`+"\r\n"+`Sent "Box`,
			`* LIST (\HasNoChildren \Trash) "/" Deleted`,
			"A2 OK LIST completed.")
		p.expect("A3 LOGOUT")
		p.say("* BYE", "A3 OK LOGOUT completed.")
	})
	res, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("imap: 127.0.0.1:%d (TLS): authenticated as user@example.test with XOAUTH2; LIST ok (3 mailboxes)", f.port)
	if res.String() != want {
		t.Errorf("result %q\nwant   %q", res, want)
	}
}

// Without SASL-IR the string goes on the continuation; STARTTLS comes
// first and the capabilities are asked again over TLS.
func TestIMAPStartTLSContinuation(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("* OK ready.")
		p.expect("A1 CAPABILITY")
		p.say("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED", "A1 OK")
		p.expect("A2 STARTTLS")
		p.say("A2 OK Begin TLS negotiation now.")
		p.startTLS()
		p.expect("A3 CAPABILITY")
		p.say("* CAPABILITY IMAP4rev1 AUTH=XOAUTH2", "A3 OK")
		p.expect("A4 AUTHENTICATE XOAUTH2")
		p.say("+ ")
		if !p.expectSASL("", testUser) {
			return
		}
		p.say("A4 OK done")
		p.expect(`A5 LIST "" "*"`)
		p.say(`* LIST () "." INBOX`, "A5 OK")
		p.expect("A6 LOGOUT")
	})
	res, err := f.run(t, f.options(config.IMAP, config.TLSStartTLS, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.String(), "(STARTTLS): authenticated as user@example.test with XOAUTH2; LIST ok (1 mailbox)") {
		t.Errorf("result %q", res)
	}
	if sent := strings.Join(f.p.sent(), "\n"); !strings.HasPrefix(sent, "A1 CAPABILITY\nA2 STARTTLS\n(tls) A3 CAPABILITY\n(tls) A4 AUTHENTICATE XOAUTH2\n(tls) ") {
		t.Errorf("the client sent:\n%.300s", sent)
	}
}

func TestIMAPNoSTARTTLS(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] ready.")
		for {
			if _, ok := p.line(); !ok {
				return
			}
		}
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSStartTLS, nil))
	e := probeErr(t, err, Misconfigured)
	if !strings.Contains(e.Msg, "does not offer STARTTLS; refusing to send a token without TLS") {
		t.Errorf("msg %q", e.Msg)
	}
	if sent := f.p.sent(); len(sent) > 0 {
		t.Errorf("the client sent %q to a server without STARTTLS", sent)
	}
}

// Dovecot and Google: "+ base64(JSON)" after a bad token; the answer is an
// empty line, then the final NO.
func TestIMAPErrorChallenge(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "SASL-IR AUTH=XOAUTH2")
		p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", testUser)
		p.say("+ " + b64(dovecotChallenge))
		if p.expect("") {
			p.say("A1 NO [AUTHENTICATIONFAILED] Authentication failed.")
		}
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Reply != "NO [AUTHENTICATIONFAILED] Authentication failed." || e.Challenge != dovecotChallenge {
		t.Errorf("reply %q, challenge %q", e.Reply, e.Challenge)
	}
	want := "refused XOAUTH2 for user@example.test: NO [AUTHENTICATIONFAILED] Authentication failed. (after the error challenge " + dovecotChallenge + ")"
	if e.Msg != want {
		t.Errorf("msg %q\nwant %q", e.Msg, want)
	}
	hasHint(t, e, "expired or revoked", "oauth2mail login work")
}

// Exchange: IMAP turned off for the mailbox, or the wrong mailbox.
func TestIMAPExchangeAuthenticateFailed(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		p.say("* OK The Microsoft Exchange IMAP4 service is ready.")
		p.expect("A1 CAPABILITY")
		p.say("* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+", "A1 OK CAPABILITY completed.")
		p.expectSASL("A2 AUTHENTICATE XOAUTH2 ", testUser)
		p.say("A2 NO AUTHENTICATE failed.")
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Reply != "NO AUTHENTICATE failed." || e.Challenge != "" {
		t.Errorf("reply %q, challenge %q", e.Reply, e.Challenge)
	}
	hasHint(t, e, "Set-CASMailbox -Identity user@example.test -ImapEnabled $true", "not the mailbox the token was issued for")
}

// Exchange may take a token for the wrong mailbox at AUTHENTICATE and fail
// at the next command.
func TestIMAPAuthenticatedButNotConnected(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
		p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", "shared@example.test")
		p.say("A1 OK AUTHENTICATE completed.")
		p.expect(`A2 LIST "" "*"`)
		p.say("A2 BAD User is authenticated but not connected.")
	})
	o := f.options(config.IMAP, config.TLSImplicit, nil)
	o.User = "shared@example.test"
	_, err := f.run(t, o)
	e := probeErr(t, err, Rejected)
	want := "accepted XOAUTH2 for shared@example.test, then refused LIST: BAD User is authenticated but not connected."
	if e.Msg != want {
		t.Errorf("msg %q\nwant %q", e.Msg, want)
	}
	hasHint(t, e, "cannot open shared@example.test", "FullAccess on shared@example.test")
}

func TestIMAPNoXOAUTH2(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "SASL-IR AUTH=PLAIN AUTH=LOGIN")
		p.line() // nothing, or LOGOUT
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Msg != "the server does not offer XOAUTH2; it offers: AUTH=LOGIN AUTH=PLAIN" {
		t.Errorf("msg %q", e.Msg)
	}
}

// An app-only token: the hints name the service principal and the mailbox
// permission.
func TestIMAPAppOnlyHints(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
		p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", "svc@example.test")
		p.say("A1 NO AUTHENTICATE failed.")
	})
	o := f.options(config.IMAP, config.TLSImplicit, nil)
	o.User, o.Email, o.AppOnly, o.ClientID = "svc@example.test", "svc@example.test", true, "11111111-2222-3333-4444-555555555555"
	_, err := f.run(t, o)
	e := probeErr(t, err, Rejected)
	hasHint(t, e,
		"New-ServicePrincipal -AppId 11111111-2222-3333-4444-555555555555 -ObjectId ENTERPRISE_APP_OBJECT_ID",
		"Add-MailboxPermission -Identity svc@example.test -User SERVICE_PRINCIPAL_ID -AccessRights FullAccess",
		"IMAP.AccessAsApp")
	if strings.Contains(strings.Join(e.Hints, "\n"), "oauth2mail login") {
		t.Errorf("an app-only account is told to log in: %q", e.Hints)
	}
}

// A STARTTLS go-ahead followed by plaintext in the same packet is an
// injection: the client must not go on.
func TestIMAPStartTLSInjection(t *testing.T) {
	f := newFake(t, false, func(p *peer) {
		p.say("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=XOAUTH2] ready.")
		p.expect("A1 STARTTLS")
		p.say("A1 OK Begin TLS negotiation now.", "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR")
		p.line()
	})
	var tr bytes.Buffer
	_, err := f.run(t, f.options(config.IMAP, config.TLSStartTLS, &tr))
	e := probeErr(t, err, Temporary)
	if !strings.Contains(e.Msg, "after its STARTTLS go-ahead") {
		t.Errorf("msg %q", e.Msg)
	}
}

// An empty challenge after the initial response would make go-imap v2
// send "=", which Dovecot answers "BAD Invalid base64"; here a second
// challenge after the answered error challenge is cancelled with "*".
func TestIMAPSecondChallengeCancelled(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
		p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", testUser)
		p.say("+ " + b64(`{"status":"invalid_token"}`))
		p.expect("")
		p.say("+ " + b64(`{"status":"again"}`))
		if p.expect("*") {
			p.say("A1 BAD AUTHENTICATE cancelled.")
		}
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	e := probeErr(t, err, Rejected)
	if e.Reply != "BAD AUTHENTICATE cancelled." {
		t.Errorf("reply %q", e.Reply)
	}
}

// A server temporarily unable to check the token (Dovecot's passdb could
// not reach the introspection endpoint) is not a refusal.
func TestIMAPUnavailable(t *testing.T) {
	f := newFake(t, true, func(p *peer) {
		imapGreet(p, "AUTH=XOAUTH2 SASL-IR")
		p.expectSASL("A1 AUTHENTICATE XOAUTH2 ", testUser)
		p.say("A1 NO [UNAVAILABLE] Temporary authentication failure. [host:2024-01-01 00:00:00]")
	})
	_, err := f.run(t, f.options(config.IMAP, config.TLSImplicit, nil))
	e := probeErr(t, err, Temporary)
	hasHint(t, e, "try again later")
}
