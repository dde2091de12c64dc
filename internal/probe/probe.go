// Package probe logs in to a mail server the way a mail client does
// (IMAP AUTHENTICATE, POP3 AUTH, SMTP AUTH with XOAUTH2, each over TLS),
// runs one command after the login, and explains a refusal: the server's
// decoded error challenge, its final reply and what to do about it. It is
// the `oauth2mail test` command. The optional transcript never shows the
// token or the SASL string.
package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// Defaults of Options.
const (
	DefaultTimeout     = 30 * time.Second // the whole dialogue
	DefaultReadTimeout = 15 * time.Second // one read or write
)

// maxLine bounds a line read from the server; maxLines the lines of one
// reply that are only counted (an IMAP LIST); maxKept the lines of one that
// are kept (an SMTP reply, a POP3 CAPA: real servers send about 20), so a
// hostile server cannot fill memory within the timeout.
const (
	maxLine  = 16 << 10
	maxLines = 100000
	maxKept  = 1000
)

// Options say what to test.
type Options struct {
	Proto  string // config.IMAP, config.POP or config.SMTP
	Server config.Server
	CAFile string // PEM roots for the server certificate; "" for the system's
	User   string // the user= mailbox
	Token  string

	// For the hints: the account's name, its own mailbox (User differs
	// for a shared mailbox), whether it is app-only, and its client ID.
	Account  string
	Email    string
	AppOnly  bool
	ClientID string

	// Transcript, when not nil, receives the dialogue as C:/S: lines with
	// the token and the SASL string redacted.
	Transcript io.Writer

	Timeout, ReadTimeout time.Duration // 0: the defaults
}

// Result says what worked.
type Result struct {
	Proto, Addr, Mode, User string
	FollowUp                string // e.g. "LIST ok (3 mailboxes)"
}

func (r Result) String() string {
	s := fmt.Sprintf("%s: %s (%s): authenticated as %s with XOAUTH2", r.Proto, r.Addr, r.Mode, r.User)
	if r.FollowUp != "" {
		s += "; " + r.FollowUp
	}
	return s
}

// Kind says who can fix an Error.
type Kind int

const (
	// Rejected: the server refused the credentials, or takes no XOAUTH2.
	Rejected Kind = iota + 1
	// Temporary: no connection, a timeout, a closed connection, a server
	// that says to try later or breaks off the dialogue.
	Temporary
	// Untrusted: the server's certificate is not trusted.
	Untrusted
	// Misconfigured: the server, port, TLS mode or CA file does not fit.
	Misconfigured
)

// Error is a failed test, explained.
type Error struct {
	Kind  Kind
	Proto string
	Addr  string
	Msg   string // what happened, one line; server text escaped and redacted
	// Reply is the server's final reply, Challenge its decoded error
	// challenge (JSON), when there were any.
	Reply, Challenge string
	Hints            []string // what to do

	Err error
}

func (e *Error) Error() string { return e.Proto + ": " + e.Addr + ": " + e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Run logs in to the server of o and runs the follow-up command.
func Run(ctx context.Context, o Options) (Result, error) {
	return runOn(ctx, o, newRedactor(sasl.XOAUTH2(o.User, o.Token), o.Token), nil)
}

// runOn is Run with the redactor of o's secrets given. A conn that is not
// nil replaces the TCP connection and TLS is only pretended: the fuzz tests
// run the dialogues in memory, many times with one redactor.
func runOn(ctx context.Context, o Options, red *redactor, conn net.Conn) (Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	s := &session{o: &o, addr: o.Server.Addr(), red: red, inMemory: conn}
	s.t = newTranscript(o.Transcript, s.red)
	defer s.t.flush()
	res, err := s.run(ctx)
	if err != nil {
		return Result{}, err
	}
	res.Proto, res.Addr, res.User = o.Proto, s.addr, o.User
	res.Mode = map[string]string{config.TLSImplicit: "TLS", config.TLSStartTLS: "STARTTLS"}[o.Server.TLS]
	return res, nil
}

// session is one connection and its dialogue.
type session struct {
	o    *Options
	addr string
	t    *transcript
	red  *redactor

	ctx   context.Context
	end   time.Time // of the whole dialogue
	roots *x509.CertPool
	raw   net.Conn // TCP
	conn  net.Conn // recorder over TCP or TLS
	r     *bufio.Reader
	tls   bool
	tags  int // IMAP tags used

	challenge string // the server's decoded error challenge, if any

	inMemory net.Conn // tests: the connection, TLS pretended (runOn)
}

func (s *session) run(ctx context.Context) (Result, error) {
	dialogue := map[string]func() (string, error){config.IMAP: s.imap, config.POP: s.pop, config.SMTP: s.smtp}[s.o.Proto]
	if dialogue == nil {
		return Result{}, fmt.Errorf("probe: unknown protocol %q", s.o.Proto)
	}
	if s.o.Server.TLS != config.TLSImplicit && s.o.Server.TLS != config.TLSStartTLS {
		return Result{}, fmt.Errorf("probe: unknown TLS mode %q", s.o.Server.TLS)
	}
	if s.o.CAFile != "" {
		pem, err := os.ReadFile(s.o.CAFile)
		if err != nil {
			return Result{}, s.fail(Misconfigured, err, "cannot read the CA file: %v", err)
		}
		s.roots = x509.NewCertPool()
		if !s.roots.AppendCertsFromPEM(pem) {
			return Result{}, s.fail(Misconfigured, nil, "no PEM certificate in the CA file %s", s.o.CAFile).
				hint("ca_file (or --ca) names a PEM file with the CA certificate that signed the server's certificate")
		}
	}
	s.end = time.Now().Add(s.o.Timeout)
	ctx, cancel := context.WithDeadline(ctx, s.end)
	defer cancel()
	s.ctx = ctx
	if err := s.dial(); err != nil {
		return Result{}, err
	}
	defer s.raw.Close()
	// A cancelled or expired context breaks off any read or write.
	stop := context.AfterFunc(ctx, func() { s.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	follow, err := dialogue()
	if err != nil {
		return Result{}, err
	}
	return Result{FollowUp: follow}, nil
}

func (s *session) dial() error {
	d := net.Dialer{Timeout: s.o.ReadTimeout}
	raw, err := s.inMemory, error(nil)
	if raw == nil {
		raw, err = d.DialContext(s.ctx, "tcp", s.addr)
	}
	if err != nil {
		return s.netErr(err, "cannot connect")
	}
	s.raw = raw
	s.t.note("connected to %s", raw.RemoteAddr())
	s.setConn(raw)
	if s.o.Server.TLS == config.TLSImplicit {
		return s.startTLS()
	}
	return nil
}

func (s *session) setConn(c net.Conn) {
	s.conn = recorder{Conn: c, t: s.t}
	s.r = bufio.NewReaderSize(s.conn, 4096)
}

// startTLS runs the TLS handshake on the connection. For STARTTLS, the
// server must not have sent anything after its go-ahead: such bytes would
// be read as if they came over TLS (CVE-2011-0411 and kin).
func (s *session) startTLS() error {
	if s.r.Buffered() > 0 {
		return s.fail(Temporary, nil, "the server sent %d bytes after its STARTTLS go-ahead, before TLS; refusing to go on (a proxy or an attack may be injecting them)", s.r.Buffered())
	}
	if s.inMemory != nil {
		s.tls = true
		return nil
	}
	conf := &tls.Config{ServerName: s.o.Server.Host, RootCAs: s.roots, MinVersion: tls.VersionTLS12}
	tc := tls.Client(s.raw, conf)
	s.deadline(tc)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return s.tlsErr(err)
	}
	st := tc.ConnectionState()
	s.t.note("%s, %s; certificate of %s verified", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), s.o.Server.Host)
	s.tls = true
	s.setConn(tc)
	return nil
}

// deadline bounds the next read or write by the read timeout and the end
// of the dialogue; once the context is done, reads and writes fail at once.
func (s *session) deadline(c net.Conn) {
	d := time.Now().Add(s.o.ReadTimeout)
	if d.After(s.end) {
		d = s.end
	}
	c.SetDeadline(d)
	if s.ctx.Err() != nil { // AfterFunc may have run before SetDeadline
		c.SetDeadline(time.Unix(1, 0))
	}
}

// send writes one line.
func (s *session) send(line string) error {
	if !s.tls && strings.Contains(line, s.red.sasl) {
		return errors.New("probe: refusing to send the SASL string without TLS") // a bug: each dialogue starts TLS first
	}
	s.deadline(s.raw)
	if _, err := io.WriteString(s.conn, line+"\r\n"); err != nil {
		return s.netErr(err, "sending to the server")
	}
	return nil
}

// readLine reads one line without its CR LF.
func (s *session) readLine() (string, error) {
	var line []byte
	for {
		s.deadline(s.raw)
		chunk, err := s.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return "", s.fail(Temporary, nil, "the server sent a line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return "", s.fail(Temporary, err, "the server closed the connection%s", afterLine(line))
		}
		return "", s.netErr(err, "waiting for the server")
	}
}

// greeting reads the server's first line.
func (s *session) greeting() (string, error) {
	line, err := s.readLine()
	return line, s.greetingErr(err)
}

// greetingErr adds the likely cause to a timeout before the greeting.
func (s *session) greetingErr(err error) error {
	var (
		e  *Error
		ne net.Error
	)
	if err != nil && !s.tls && errors.As(err, &e) && errors.As(e.Err, &ne) && ne.Timeout() {
		e.hint("no greeting: if this port speaks TLS from the first byte (993, 995, 465), use --tls")
	}
	return err
}

// readFull reads an IMAP literal of n bytes.
func (s *session) readFull(n int) error {
	s.deadline(s.raw)
	if _, err := io.CopyN(io.Discard, s.r, int64(n)); err != nil {
		return s.netErr(err, "reading a literal")
	}
	return nil
}

func afterLine(partial []byte) string {
	if len(partial) == 0 {
		return ""
	}
	return fmt.Sprintf(" in the middle of a line (%s)", quote(string(partial), 80))
}

// fail returns an Error of kind k for the dialogue.
func (s *session) fail(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Proto: s.o.Proto, Addr: s.addr, Msg: s.red.redact(fmt.Sprintf(format, args...)), Err: err}
}

func (e *Error) hint(h ...string) *Error {
	e.Hints = append(e.Hints, h...)
	return e
}

// netErr explains a network failure (exit 4 names host:port).
func (s *session) netErr(err error, doing string) error {
	var ne net.Error
	switch {
	case errors.Is(s.ctx.Err(), context.Canceled):
		return s.fail(Temporary, s.ctx.Err(), "%s: interrupted", doing)
	case s.ctx.Err() != nil || !time.Now().Before(s.end):
		return s.fail(Temporary, err, "%s: the test did not finish within %s", doing, s.o.Timeout)
	case errors.As(err, &ne) && ne.Timeout():
		return s.fail(Temporary, err, "%s: no answer within %s", doing, s.o.ReadTimeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return s.fail(Temporary, err, "%s: the server closed the connection", doing)
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		err = sys.Err // "connection refused", not "dial tcp 127.0.0.1:1: connect: connection refused"
	}
	return s.fail(Temporary, err, "%s: %v", doing, err)
}

// tlsErr explains a failed TLS handshake.
func (s *session) tlsErr(err error) error {
	var (
		verr *tls.CertificateVerificationError
		rerr tls.RecordHeaderError
		herr x509.HostnameError
	)
	switch {
	case errors.As(err, &herr):
		return s.fail(Untrusted, err, "the server's certificate is not valid for %s: %v", s.o.Server.Host, herr).
			hint("connect with a name the certificate names: --server HOST:PORT, or " + s.o.Proto + "_server for " + s.o.Account + " in the config")
	case errors.As(err, &verr):
		return s.fail(Untrusted, err, "the server's certificate is not trusted: %v", verr.Err).
			hint("if the server uses a private CA, set ca_file = \"/path/to/ca.pem\" for " + s.o.Account + " in the config (or pass --ca FILE)")
	case errors.As(err, &rerr) && s.o.Server.TLS == config.TLSImplicit:
		return s.fail(Misconfigured, err, "no TLS on this port: the server answered the TLS handshake in plain text").
			hint("use --starttls: 993, 995 and 465 speak TLS from the first byte, 143, 110 and 587 start in plain text with STARTTLS")
	case errors.As(err, &rerr):
		return s.fail(Misconfigured, err, "the server answered the TLS handshake after STARTTLS in plain text")
	}
	return s.netErr(err, "TLS handshake")
}

// notServer is the error for a greeting of another protocol, or none.
func (s *session) notServer(line string) error {
	article := map[string]string{config.IMAP: "an", config.POP: "a", config.SMTP: "an"}[s.o.Proto]
	return s.fail(Misconfigured, nil, "this does not look like %s %s server: it said %s", article, protoName[s.o.Proto], quote(line, 120)).
		hint("check the host, the port and the TLS mode (--tls or --starttls)")
}

var protoName = map[string]string{config.IMAP: "IMAP", config.POP: "POP3", config.SMTP: "SMTP"}

// noTLS refuses to log in without TLS.
func (s *session) noTLS(reply string) error {
	msg := "the server does not offer STARTTLS; refusing to send a token without TLS"
	if reply != "" {
		msg += fmt.Sprintf(" (it said %s)", quote(reply, 120)) // redacted by fail, as all server text
	}
	return s.fail(Misconfigured, nil, "%s", msg).hint("if the port speaks TLS from the first byte (993, 995, 465), use --tls; otherwise the server needs STARTTLS enabled")
}

// noXOAUTH2 says the server takes no XOAUTH2, with what it offers.
func (s *session) noXOAUTH2(offers []string) *Error {
	what := "no SASL mechanism at all"
	if len(offers) > 0 {
		what = strings.Join(offers, " ")
	}
	return s.fail(Rejected, nil, "the server does not offer XOAUTH2; it offers: %s", display(what, 300)).
		hint("this server takes no OAuth tokens through XOAUTH2: check that it is your provider's server (Microsoft: outlook.office365.com, smtp.office365.com; Google: imap.gmail.com, smtp.gmail.com) and, for SMTP, a submission port (587 or 465)")
}
