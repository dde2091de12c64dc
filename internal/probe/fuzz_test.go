package probe

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// The fuzz targets play a mail server's replies to the real dialogues,
// in memory and after TLS (which is pretended: fuzzing a handshake finds
// nothing of ours). Properties: no panic, an end within the timeout, a
// result or *Error of one bounded line, and neither the token nor the SASL
// string (nor their base64 inside the server's own) in any message or in
// the transcript.

// scriptConn is a mail server that plays a script: its replies are cut at
// every 0xFF byte; the first is the greeting, each next one answers the
// next line the client sends (an empty one answers nothing), and after the
// last the server closes. A read while the client owes the server a line
// times out at once, as a silent server would after ReadTimeout.
type scriptConn struct {
	replies []string
	out     string // what is left of the reply being read
	owed    int    // client lines not answered yet (the connection asks for the greeting)
	closed  bool
}

func newScriptConn(script string) *scriptConn {
	return &scriptConn{replies: strings.Split(expand(script), "\xff"), owed: 1}
}

func (c *scriptConn) Read(p []byte) (int, error) {
	for c.out == "" {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case len(c.replies) == 0:
			return 0, io.EOF
		case c.owed == 0:
			return 0, os.ErrDeadlineExceeded
		}
		c.out, c.replies, c.owed = c.replies[0], c.replies[1:], c.owed-1
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	c.owed += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func (c *scriptConn) Close() error                     { c.closed = true; return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "memory" }

// The secrets a script can echo: $T the token, $S the SASL string
// (base64), $R the SASL string decoded, $0 $1 $2 the token inside base64
// of the server's own at each alignment, $3 $4 $5 the same in base64url.
var echoes = func() *strings.Replacer {
	pairs := []string{"$T", testToken, "$S", fuzzSASL, "$R", string(sasl.XOAUTH2Raw(testUser, testToken))}
	for i, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := range 3 {
			own := `{"status":"401","token":"`[:5+k] + testToken + `"}`
			pairs = append(pairs, "$"+string(rune('0'+3*i+k)), enc.EncodeToString([]byte(own)))
		}
	}
	return strings.NewReplacer(pairs...)
}()

func expand(script string) string {
	if !strings.Contains(script, "$") {
		return script
	}
	return echoes.Replace(script)
}

var (
	fuzzSASL = sasl.XOAUTH2(testUser, testToken)
	// one redactor for every execution: making one indexes every 12
	// characters of 2.5 KB of token in seven encodings, which would cost
	// more than the dialogue
	fuzzRedactor = sync.OnceValue(func() *redactor { return newRedactor(fuzzSASL, testToken) })
)

// forbidden is every secretWindow-long piece of the secrets as a server
// could echo them: the token, the SASL string (past its first 40
// characters, which encode "user=" and the mailbox) and the token inside
// base64 of another text, at each alignment. It is built here, apart from
// the redactor, so that a broken redactor does not break the check too.
var forbidden = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	secrets := []string{testToken, fuzzSASL[40:]}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := range 3 {
			e := enc.EncodeToString([]byte(strings.Repeat("x", k) + testToken))
			secrets = append(secrets, e[4:len(e)-4])
		}
	}
	for _, s := range secrets {
		for i := 0; i+secretWindow <= len(s); i++ {
			m[s[i:i+secretWindow]] = true
		}
	}
	return m
})

// leak returns the first piece of a secret in s, or "".
func leak(s string) string {
	f := forbidden()
	run := 0
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			run = 0
			continue
		}
		if run++; run >= secretWindow && f[s[i+1-secretWindow:i+1]] {
			return s[i+1-secretWindow : i+1]
		}
	}
	return ""
}

// maxMessage bounds an error or result line: its server text is cut at
// 300 characters (twice: the reply and the challenge), each shown as at
// most 6 bytes (\u0085), and a redacted piece grows by a placeholder.
const maxMessage = 4096

// maxShown bounds a transcript line: 1000 characters of at most 6 bytes.
const maxShown = 6*shownLine + 100

// checkLine fails unless s is one line of at most max bytes, UTF-8,
// without a secret.
func checkLine(t *testing.T, what, s string, max int) {
	t.Helper()
	switch {
	case strings.ContainsAny(s, "\r\n"):
		t.Fatalf("%s is not one line: %q", what, s)
	case len(s) > max:
		t.Fatalf("%s has %d bytes: %.200q", what, len(s), s)
	case !utf8.ValidString(s):
		t.Fatalf("%s is not UTF-8: %.200q", what, s)
	case leak(s) != "":
		t.Fatalf("%s holds a piece of a secret (%q): %.300q", what, leak(s), s)
	}
}

var protos = []string{config.IMAP, config.POP, config.SMTP}

// dialogueSeeds are scripts of real servers (Dovecot, Exchange, Gmail)
// and broken ones, per protocol; "|" stands for the 0xFF between replies.
var dialogueSeeds = map[string][]string{
	config.IMAP: {
		// Dovecot, SASL-IR, the error challenge, then the refusal
		"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=OAUTHBEARER AUTH=XOAUTH2] Dovecot ready.\r\n|+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\r\n|A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
		// Dovecot: accepted, LIST with a literal, LOGOUT
		"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] Dovecot ready.\r\n|A1 OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] Logged in\r\n|* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren) \"/\" {9}\r\nSent \"Box\r\n* LIST () \".\" {3+}\r\nabc\r\nA2 OK List completed (0.001 + 0.000 secs).\r\n|* BYE Logging out\r\nA3 OK Logout completed.\r\n",
		// Exchange: CAPABILITY, no SASL-IR, continuation, AUTHENTICATE failed
		"* OK The Microsoft Exchange IMAP4 service is ready. [TQBXADIAUABSADAANQBDAEEAMAAwADEANQAuAG4AYQBtAHAAcgBkADAANQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n|* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\r\nA1 OK CAPABILITY completed.\r\n|+\r\n|A2 NO AUTHENTICATE failed.\r\n",
		// Exchange: the wrong mailbox fails only at LIST
		"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] ready\r\n|A1 OK AUTHENTICATE completed.\r\n|A2 BAD User is authenticated but not connected.\r\n",
		// Gmail: the challenge quotes the scope
		"* OK Gimap ready for requests from 192.0.2.1 a1mb12345\r\n|* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER\r\nA1 OK Thats all she wrote! a1mb12345\r\n|+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n|A2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n",
		// STARTTLS on 143, capabilities again after it
		"* OK ready.\r\n|* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\nA1 OK\r\n|A2 OK Begin TLS negotiation now.\r\n|* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\nA3 OK\r\n|+ \r\n|A4 OK done\r\n|* LIST () \".\" INBOX\r\nA5 OK\r\n",
		// bytes after the STARTTLS go-ahead
		"* OK [CAPABILITY IMAP4rev1 STARTTLS]\r\n|A1 OK go\r\n* OK injected\r\n",
		"* BYE Too many connections\r\n",
		"* PREAUTH welcome\r\n",
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN LOGINDISABLED]\r\n",
		"* OK [UNAVAILABLE]\r\n|A1 NO [UNAVAILABLE] Temporary authentication failure\r\n",
		// echoes of the token, the SASL string and base64 holding the token
		"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2]\r\n|+ $0\r\n|A1 NO bad token $T (user=$R) $S $3\r\n",
		"* OK [CAPABILITY AUTH=XOAUTH2]\r\n|+ \r\n|+ $2\r\n|A1 NO $S\r\n",
		// literals: huge, negative, without their bytes
		"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR]\r\n|A1 OK\r\n|* LIST () \"/\" {99999999999}\r\n",
		"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR]\r\n|A1 OK\r\n|* LIST () \"/\" {-1}\r\nA2 OK\r\n",
		"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR]\r\n|A1 OK\r\n|* LIST () \"/\" {123}\r\nshort",
		// garbage, NUL bytes, an endless line, a line cut off
		"\x00\x00\x00\r\n",
		"* OK \x1b[2J\x00\xc3\x28[CAPABILITY AUTH=XOAUTH2]\r\n|+ not base64!\r\n|A1 NO \x1b]0;title\x07\r\n",
		"* OK " + strings.Repeat("A ", 10<<10) + "\r\n", // 20 KB
		"* OK [CAPABILITY AUTH=XOAUTH2 SASL-IR] ready\r\n|A1 NO half a li",
		"HTTP/1.1 400 Bad Request\r\n",
		"",
	},
	config.POP: {
		// Dovecot: CAPA, the error challenge, the refusal
		"+OK Dovecot ready.\r\n|+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n|+ \r\n|+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\r\n|-ERR [AUTH] Authentication failed.\r\n",
		// accepted, STAT, QUIT
		"+OK Dovecot ready.\r\n|+OK\r\nSASL XOAUTH2\r\n.\r\n|+\r\n|+OK Logged in.\r\n|+OK 3 1234\r\n|+OK Logging out.\r\n",
		// Exchange
		"+OK The Microsoft Exchange POP3 service is ready. [TQBXADIAUABSADAANQBDAEEAMAAwADEANQAuAG4AYQBtAHAAcgBkADAANQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n|+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\nUSER\r\n.\r\n|+\r\n|-ERR Authentication failure: unknown user name or bad password.\r\n",
		// STLS on 110
		"+OK ready\r\n|+OK\r\nSTLS\r\n.\r\n|+OK Begin TLS negotiation\r\n|+OK\r\nSASL XOAUTH2\r\n.\r\n|+ \r\n|+OK\r\n|+OK not-a-number\r\n",
		// no CAPA at all
		"+OK ready\r\n|-ERR unknown command\r\n|+\r\n|-ERR [SYS/TEMP] try later\r\n",
		"+OK ready\r\n|+OK\r\n..dot-stuffed\r\nSASL PLAIN\r\n.\r\n",
		"-ERR [IN-USE] mailbox locked\r\n",
		"+OK\r\n|+OK\r\nSASL XOAUTH2\r\n.\r\n|+ $1\r\n|-ERR $T $R $4\r\n",
		"+OK\r\n|+OK\r\n" + strings.Repeat("X\r\n", 1200) + ".\r\n",
		"+OK\r\n|+OK\r\nSASL XOAUTH2\r\n.\r\n|+\r\n|+OK\r\n|+OK 1",
		"+OK \x00\x01\x02\r\n|+OK\r\nSASL\x00XOAUTH2\r\n",
		"* OK IMAP4rev1 on the POP3 port\r\n",
	},
	config.SMTP: {
		// Dovecot submission, multi-line EHLO
		"220 mail.example.test Dovecot ready.\r\n|250-mail.example.test\r\n250-8BITMIME\r\n250-AUTH PLAIN XOAUTH2 OAUTHBEARER\r\n250-BURL imap\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n250 PIPELINING\r\n|334 \r\n|334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\r\n|535 5.7.8 Authentication failed\r\n",
		// accepted
		"220 ready\r\n|250-hello\r\n250 AUTH XOAUTH2\r\n|334 \r\n|235 2.7.0 Authentication successful\r\n|221 2.0.0 Bye\r\n",
		// Exchange: SMTP AUTH turned off; a token it does not take
		"220 SN4PR0501CA0001.outlook.office365.com Microsoft ESMTP MAIL Service ready at Mon, 23 Nov 2026 10:00:00 +0000\r\n|250-SN4PR0501CA0001.outlook.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n|220 2.0.0 SMTP server ready\r\n|250-SN4PR0501CA0001.outlook.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n250-AUTH LOGIN XOAUTH2\r\n250 SMTPUTF8\r\n|334 \r\n|535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0501CA0001.namprd05.prod.outlook.com 2026-11-23T10:00:00.000Z 08DCAAAAAAAAAAAA]\r\n",
		"220 x\r\n|250-x\r\n250 AUTH LOGIN XOAUTH2\r\n|334 \r\n|535 5.7.3 Authentication unsuccessful [SN4PR0501CA0001.namprd05.prod.outlook.com]\r\n",
		// Gmail: the challenge, then a multi-line 535
		"220 smtp.gmail.com ESMTP a1sm123456wrb.1 - gsmtp\r\n|250-smtp.gmail.com at your service, [192.0.2.1]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n|334 \r\n|334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n|535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1sm123456wrb.1 - gsmtp\r\n",
		// the old AUTH= form, a relay without AUTH, a 4xx
		"220 x\r\n|250-x\r\n250-AUTH=LOGIN XOAUTH2\r\n250 OK\r\n|334\r\n|454 4.7.0 Temporary authentication failure\r\n",
		"220 relay ESMTP\r\n|250-relay\r\n250 8BITMIME\r\n",
		"554 5.7.1 No SMTP service here\r\n",
		"220 x\r\n|502 5.5.2 Error: command not recognized\r\n",
		"220 x\r\n|250 x\r\n|220 go ahead\r\nsmuggled\r\n",
		"220 x\r\n|250-x\r\n250 AUTH XOAUTH2\r\n|334 $2\r\n|535 5.7.3 $T $S $5\r\n",
		"220 x\r\n|250-x\r\n250 AUTH XOAUTH2\r\n|334 \r\n|334 \r\n|334 \r\n|334 \r\n|334 \r\n|334 \r\n",
		"220-x\r\n" + strings.Repeat("220-x\r\n", 1100) + "220 x\r\n",
		"220 x\r\n|250-x\r\n250-" + strings.Repeat("B ", 10<<10) + "\r\n250 x\r\n",
		"2\r\n", "220", "22x hello\r\n", "999 no\r\n", "220\x00x\r\n",
		"* OK IMAP4rev1 on the SMTP port\r\n",
	},
}

// FuzzDialogue runs the IMAP, POP3 or SMTP dialogue against a scripted
// server (see scriptConn), with TLS implicit or by STARTTLS.
func FuzzDialogue(f *testing.F) {
	for i, proto := range protos {
		for _, s := range dialogueSeeds[proto] {
			s = strings.ReplaceAll(s, "|", "\xff")
			f.Add(uint8(i), false, s)
			f.Add(uint8(i), true, s)
		}
	}
	f.Fuzz(func(t *testing.T, proto uint8, starttls bool, script string) {
		mode := config.TLSImplicit
		if starttls {
			mode = config.TLSStartTLS
		}
		var tr bytes.Buffer
		o := Options{
			Proto: protos[int(proto)%len(protos)], Server: config.Server{Host: "mail.example.test", Port: 1, TLS: mode},
			User: testUser, Token: testToken, Account: "work", Email: "me@example.test",
			Transcript: &tr, Timeout: 5 * time.Second, ReadTimeout: 2 * time.Second,
		}
		start := time.Now()
		res, err := runOn(context.Background(), o, fuzzRedactor(), newScriptConn(script))
		if d := time.Since(start); d > o.Timeout {
			t.Fatalf("the dialogue took %s, the timeout is %s", d, o.Timeout)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			checkLine(t, "the error", e.Error(), maxMessage)
			checkLine(t, "the reply", e.Reply, maxMessage)
			checkLine(t, "the challenge", e.Challenge, maxMessage)
			for _, h := range e.Hints {
				checkLine(t, "a hint", h, maxMessage)
			}
		} else {
			checkLine(t, "the result", res.String(), maxMessage)
		}
		for line := range strings.Lines(tr.String()) {
			checkLine(t, "a transcript line", strings.TrimSuffix(line, "\n"), maxShown)
		}
	})
}

// session returns a session on a scripted server, past TLS, as runOn
// makes it.
func scriptSession(proto, script string, tr io.Writer) *session {
	o := &Options{Proto: proto, User: testUser, Token: testToken, Timeout: 5 * time.Second, ReadTimeout: 2 * time.Second}
	s := &session{o: o, addr: "mail.example.test:1", red: fuzzRedactor(), tls: true, ctx: context.Background(), end: time.Now().Add(o.Timeout)}
	s.t = newTranscript(tr, s.red)
	s.raw = newScriptConn(script)
	s.setConn(s.raw)
	return s
}

// FuzzSMTPReply reads SMTP replies (each a code and its lines) and an EHLO
// answer: a reply is whole lines of one code, 200 to 599.
func FuzzSMTPReply(f *testing.F) {
	for _, s := range dialogueSeeds[config.SMTP] {
		f.Add(strings.ReplaceAll(s, "|", "\xff"))
	}
	f.Fuzz(func(t *testing.T, script string) {
		s := scriptSession(config.SMTP, script, nil)
		if _, err := s.ehlo(); err != nil {
			checkErr(t, err)
		}
		for {
			code, lines, err := s.smtpReply()
			if err != nil {
				checkErr(t, err)
				return
			}
			if code < 200 || code > 599 || len(lines) == 0 || len(lines) > maxKept {
				t.Fatalf("code %d, %d lines", code, len(lines))
			}
			for i, l := range lines {
				last := i == len(lines)-1
				if !strings.HasPrefix(l, strconv.Itoa(code)) || !last && l[3] != '-' || last && len(l) > 3 && l[3] != ' ' {
					t.Fatalf("line %d %q of a %d reply of %d lines", i, l, code, len(lines))
				}
			}
			s.send("NOOP") // the next reply answers it
		}
	})
}

// checkErr fails unless err is an *Error of one bounded line.
func checkErr(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	checkLine(t, "the error", e.Error(), maxMessage)
}

// FuzzIMAPLine parses one line of an IMAP server as the dialogue does:
// tagged status, literal, continuation, capabilities.
func FuzzIMAPLine(f *testing.F) {
	for _, s := range dialogueSeeds[config.IMAP] {
		for _, l := range strings.Split(strings.ReplaceAll(s, "|", ""), "\r\n") {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		if _, reply := imapStatus(line); !strings.HasSuffix(line, reply) {
			t.Fatalf("imapStatus(%q): reply %q is not the end of the line", line, reply)
		}
		if n, isLit := literal(line); isLit && (n < 0 || !strings.HasSuffix(line, "}")) {
			t.Fatalf("literal(%q) = %d", line, n)
		}
		if payload, cont := continuation(line); cont && (!strings.HasPrefix(line, "+") || len(payload) >= len(line)) {
			t.Fatalf("continuation(%q) = %q", line, payload)
		}
		for c := range respCaps(line) {
			if c == "" || c != strings.ToUpper(c) || strings.ContainsAny(c, " \t") {
				t.Fatalf("respCaps(%q) has %q", line, c)
			}
		}
		// the untagged CAPABILITY answer, as imapCaps reads it
		s := scriptSession(config.IMAP, line+"\r\nA1 OK\r\n", nil)
		if caps, err := s.imapCaps(); err == nil && caps == nil {
			t.Fatalf("imapCaps on %q: no capabilities and no error", line)
		}
	})
}

// FuzzRedact puts the token or the SASL string into server text at a
// fuzzed offset and sends it through the transcript in fuzzed chunks, both
// directions interleaved: neither may come out, whole or in part.
func FuzzRedact(f *testing.F) {
	f.Add("A1 NO bad token: ", uint16(17), false, uint8(7), uint64(1))
	f.Add("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", uint16(2), true, uint8(1), uint64(2))
	f.Add("535 5.7.3 Authentication unsuccessful\r\n", uint16(38), false, uint8(255), uint64(3))
	f.Add("A1 AUTHENTICATE XOAUTH2 \r\n", uint16(24), true, uint8(3), uint64(4))
	f.Add("\x00\x1b[31m\xff\xfe\r\n\n\n", uint16(3), false, uint8(2), uint64(5))
	f.Fuzz(func(t *testing.T, text string, at uint16, useSASL bool, chunk uint8, seed uint64) {
		secret := testToken
		if useSASL {
			secret = fuzzSASL
		}
		i := int(at) % (len(text) + 1)
		line := text[:i] + secret + text[i:]
		red := fuzzRedactor()
		checkRedacted(t, "redact", red.redact(line))

		var out bytes.Buffer
		tr := newTranscript(&out, red)
		other := "A2 OK " + secret[:len(secret)/2] + "\r\n" // the other direction, interleaved
		d, n := fromServer, int(chunk)%64+1
		for r := seed; line != "" || other != ""; r = r*6364136223846793005 + 1442695040888963407 {
			if line == "" || other != "" && r>>63 == 1 {
				k := min(len(other), int(r>>40)%17+1)
				tr.write(1-d, []byte(other[:k]))
				other = other[k:]
				continue
			}
			k := min(len(line), n)
			tr.write(d, []byte(line[:k]))
			line = line[k:]
		}
		tr.flush()
		for l := range strings.Lines(out.String()) {
			checkLine(t, "a transcript line", strings.TrimSuffix(l, "\n"), maxShown)
		}
	})
}

func checkRedacted(t *testing.T, what, s string) {
	t.Helper()
	if p := leak(s); p != "" {
		t.Fatalf("%s left %q of a secret in %.300q", what, p, s)
	}
}

// FuzzDisplay: server text shown on a terminal is UTF-8 without control
// bytes, at most n characters and an ellipsis.
func FuzzDisplay(f *testing.F) {
	f.Add("* OK Dovecot ready.", uint16(300))
	f.Add("\x00\x1b[2J\x7f\u0085\u009b\xc3\x28\xff", uint16(5))
	f.Add("naïve façade 😀", uint16(3))
	f.Fuzz(func(t *testing.T, s string, n uint16) {
		d := display(s, int(n))
		if !utf8.ValidString(d) || utf8.RuneCountInString(d) > 6*int(n)+1 {
			t.Fatalf("display(%q, %d) = %q", s, n, d)
		}
		for _, r := range d {
			if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
				t.Fatalf("display(%q, %d) = %q holds %U", s, n, d, r)
			}
		}
	})
}
