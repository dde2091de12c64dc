package probe

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Transcript limits: what one shown line may hold, and how much of a line
// still without its newline is kept (the rest is counted, not kept).
const (
	shownLine = 1000
	keptLine  = 64 << 10
)

// transcript writes a dialogue as "C: " and "S: " lines with secrets
// redacted. Bytes arrive in chunks of any size, as they cross the socket;
// a line is redacted as a whole once its newline arrives (or at flush), so
// no chunking can split a secret past the redactor. A nil w records nothing.
type transcript struct {
	w    io.Writer
	red  *redactor
	part [2]partial
}

type partial struct {
	buf     []byte
	dropped int // bytes of the line beyond keptLine
}

type direction int

const (
	fromClient direction = iota
	fromServer
)

var dirPrefix = [2]string{"C: ", "S: "}

func newTranscript(w io.Writer, red *redactor) *transcript {
	return &transcript{w: w, red: red}
}

// write adds p, sent in direction d.
func (t *transcript) write(d direction, p []byte) {
	if t.w == nil {
		return
	}
	pt := &t.part[d]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := keptLine - len(pt.buf); room < len(chunk) {
			pt.dropped += len(chunk) - max(room, 0)
			chunk = chunk[:max(room, 0)]
		}
		pt.buf = append(pt.buf, chunk...)
		if i < 0 {
			return
		}
		t.emit(d)
		p = p[i+1:]
	}
}

func (t *transcript) emit(d direction) {
	pt := &t.part[d]
	line := strings.TrimSuffix(string(pt.buf), "\r")
	shown := display(t.red.redact(line), shownLine)
	if pt.dropped > 0 {
		shown += fmt.Sprintf(" [%d more bytes]", pt.dropped)
	}
	fmt.Fprintf(t.w, "%s%s\n", dirPrefix[d], shown)
	pt.buf, pt.dropped = pt.buf[:0], 0
}

// flush emits lines cut short by the end of the dialogue.
func (t *transcript) flush() {
	if t.w == nil {
		return
	}
	for d := range t.part {
		if len(t.part[d].buf) > 0 || t.part[d].dropped > 0 {
			t.emit(direction(d))
		}
	}
}

// note adds a line of our own commentary (TLS, a decoded challenge).
func (t *transcript) note(format string, args ...any) {
	if t.w == nil {
		return
	}
	t.flush()
	fmt.Fprintf(t.w, "-- %s\n", display(t.red.redact(fmt.Sprintf(format, args...)), shownLine))
}

// display makes server text safe for a terminal: control bytes and invalid
// UTF-8 are shown escaped, and the text is cut at n runes.
func display(s string, n int) string {
	var b strings.Builder
	for len(s) > 0 {
		if n == 0 {
			b.WriteString("…")
			break
		}
		n--
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		s = s[size:]
	}
	return b.String()
}

// recorder is a net.Conn that copies what crosses it, in plaintext (it sits
// above TLS), to a transcript.
type recorder struct {
	net.Conn
	t *transcript
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.t.write(fromServer, p[:n])
	return n, err
}

func (r recorder) Write(p []byte) (int, error) {
	n, err := r.Conn.Write(p)
	r.t.write(fromClient, p[:n])
	return n, err
}

// secretWindow is how many consecutive characters of a secret make a
// fragment worth hiding.
const secretWindow = 12

// redactor hides the token and the SASL string in any text: a run of
// token characters (base64, base64url, JWT) that equals a secret, or shares
// secretWindow consecutive characters with one, is replaced as a whole.
type redactor struct {
	sasl, token string
	windows     map[string]bool // every secretWindow-long piece of the secrets
}

func newRedactor(sasl, token string) *redactor {
	r := &redactor{sasl: sasl, token: token, windows: map[string]bool{}}
	secrets := []string{sasl, token}
	// A server may echo the token inside base64 of its own (a JSON error
	// challenge quoting it): its base64 depends on the token's offset mod
	// 3, so add the three encodings, minus the 4-character groups at
	// either end, which mix in the neighbouring bytes.
	for k := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString(append(make([]byte, k), token...))
			if len(e) > 8 {
				secrets = append(secrets, e[4:len(e)-4])
			}
		}
	}
	for _, s := range secrets {
		for i := 0; i+secretWindow <= len(s); i++ {
			r.windows[s[i:i+secretWindow]] = true
		}
	}
	return r
}

func tokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+/=-_.~", c) >= 0
}

func (r *redactor) redact(s string) string {
	if r == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !tokenChar(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && tokenChar(s[j]) {
			j++
		}
		b.WriteString(r.run(s[i:j]))
		i = j
	}
	return b.String()
}

// run returns a run of token characters, or its placeholder.
func (r *redactor) run(s string) string {
	switch {
	case s == r.sasl:
		return fmt.Sprintf("<XOAUTH2 string, %d bytes, redacted>", len(s))
	case s == r.token:
		return fmt.Sprintf("<token, %d bytes, redacted>", len(s))
	}
	secret := false
	for i := 0; i+secretWindow <= len(s) && !secret; i++ {
		secret = r.windows[s[i:i+secretWindow]]
	}
	// a secret shorter than the window (only ever in tests) is its own window
	for _, sec := range []string{r.sasl, r.token} {
		secret = secret || sec != "" && len(sec) < secretWindow && strings.Contains(s, sec)
	}
	if secret {
		return fmt.Sprintf("<part of a secret, %d bytes, redacted>", len(s))
	}
	return s
}

// quote shows server text in double quotes, made safe by display.
func quote(s string, n int) string { return `"` + display(s, n) + `"` }
