package probe

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// The redaction holds however the bytes are cut: each direction's chunks
// come in random sizes, the two directions interleaved at random.
func TestTranscriptChunks(t *testing.T) {
	saslB64 := sasl.XOAUTH2(testUser, testToken)
	client := "A1 AUTHENTICATE XOAUTH2 " + saslB64 + "\r\n\r\nA2 LOGOUT\r\n"
	server := "* OK ready\r\n+ " + b64(dovecotChallenge) + "\r\nA1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
	want := fmt.Sprintf("C: A1 AUTHENTICATE XOAUTH2 <XOAUTH2 string, %d bytes, redacted>\n", len(saslB64))
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 7))
		var out bytes.Buffer
		tr := newTranscript(&out, newRedactor(saslB64, testToken))
		c, s := client, server
		for c != "" || s != "" {
			d, rest := fromClient, &c
			if c == "" || s != "" && r.IntN(2) == 0 {
				d, rest = fromServer, &s
			}
			n := min(1+r.IntN(9), len(*rest))
			tr.write(d, []byte((*rest)[:n]))
			*rest = (*rest)[n:]
		}
		tr.flush()
		assertNoSecret(t, out.String(), saslB64)
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "S: A1 NO [AUTHENTICATIONFAILED] Authentication failed.\n") {
			t.Fatalf("seed %d: transcript:\n%s", seed, out.String())
		}
	}
}

func TestTranscriptRedactsPieces(t *testing.T) {
	saslB64 := sasl.XOAUTH2(testUser, testToken)
	tests := []struct {
		name string
		d    direction
		in   string
		want string
	}{
		{"a line cut short", fromClient, "A1 AUTHENTICATE XOAUTH2 " + saslB64[:700],
			"C: A1 AUTHENTICATE XOAUTH2 <part of a secret, 700 bytes, redacted>\n"},
		{"the raw token echoed", fromServer, "500 unknown: " + testToken + "\r\n",
			fmt.Sprintf("S: 500 unknown: <token, %d bytes, redacted>\n", len(testToken))},
		{"a piece of the token", fromServer, "NO bad " + testToken[1000:1013] + "!\r\n",
			"S: NO bad <part of a secret, 13 bytes, redacted>!\n"},
		{"the continuation line", fromClient, saslB64 + "\r\n",
			fmt.Sprintf("C: <XOAUTH2 string, %d bytes, redacted>\n", len(saslB64))},
		{"text is left alone", fromServer, "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Dovecot ready.\r\n",
			"S: * OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Dovecot ready.\n"},
		{"control bytes escaped", fromServer, "* OK \x1b[31mred\x07 \xff\r\n",
			"S: * OK \\x1b[31mred\\a \\xff\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tr := newTranscript(&out, newRedactor(saslB64, testToken))
			tr.write(tt.d, []byte(tt.in))
			tr.flush()
			if out.String() != tt.want {
				t.Errorf("got  %q\nwant %q", out.String(), tt.want)
			}
		})
	}
}

// A secret shorter than the window is still found.
func TestRedactShortSecret(t *testing.T) {
	r := newRedactor(sasl.XOAUTH2("u@x", "tok"), "tok")
	if got := r.redact("echo: xtokx"); got != "echo: <part of a secret, 5 bytes, redacted>" {
		t.Errorf("got %q", got)
	}
}

// A line longer than the transcript keeps is cut, and says so (the 13
// bytes: 12 beyond keptLine, and the CR).
func TestTranscriptLongLine(t *testing.T) {
	var out bytes.Buffer
	tr := newTranscript(&out, newRedactor("", ""))
	tr.write(fromServer, []byte("* "+strings.Repeat("y", keptLine+10)+"\r\n"))
	got := out.String()
	if !strings.HasPrefix(got, "S: * yyy") || !strings.HasSuffix(got, "… [13 more bytes]\n") {
		t.Errorf("got %.40q…%q", got, got[max(0, len(got)-40):])
	}
	if len(got) > 2*shownLine+100 {
		t.Errorf("a shown line of %d bytes", len(got))
	}
}

func TestNoTranscript(t *testing.T) {
	tr := newTranscript(nil, newRedactor("a", "b"))
	tr.write(fromClient, []byte("x\n"))
	tr.note("y")
	tr.flush() // nothing to write to, nothing written
}

// A server that echoes the token inside base64 of its own (a JSON error
// challenge quoting it) is redacted at each of the three alignments, in
// both base64 alphabets.
func TestTranscriptRedactsBase64Echo(t *testing.T) {
	saslB64 := sasl.XOAUTH2(testUser, testToken)
	for pad := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			echo := enc.EncodeToString([]byte(`{"status":"401","x":"` + strings.Repeat("a", pad) + testToken + `"}`))
			var out bytes.Buffer
			tr := newTranscript(&out, newRedactor(saslB64, testToken))
			tr.write(fromServer, []byte("+ "+echo+"\r\n"))
			tr.flush()
			if strings.Contains(out.String(), echo[40:60]) || !strings.Contains(out.String(), "redacted>") {
				t.Errorf("pad %d: the base64 echo is shown: %.120s", pad, out.String())
			}
		}
	}
}
