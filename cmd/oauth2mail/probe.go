package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/probe"
)

// testOptions are the flags of `oauth2mail test`.
type testOptions struct {
	server        string // --server HOST:PORT
	tls, starttls bool
	ca            string
	timeout       time.Duration
}

func testFlags(fs *pflag.FlagSet, e *env) {
	userFlag(fs, e)
	fs.StringVar(&e.test.server, "server", "", "`HOST:PORT` instead of the account's server")
	fs.BoolVar(&e.test.tls, "tls", false, "TLS from the first byte (993, 995, 465)")
	fs.BoolVar(&e.test.starttls, "starttls", false, "STARTTLS / STLS after the greeting (143, 110, 587)")
	fs.StringVar(&e.test.ca, "ca", "", "PEM `FILE` of the CA that signed the server's certificate")
	fs.DurationVar(&e.test.timeout, "timeout", probe.DefaultTimeout, "give up on the server after `DURATION` for the whole dialogue (default 30s; one read: half of it, at most 15s)")
}

// testProtos are the protocol names `test` takes.
var testProtos = map[string]string{"imap": config.IMAP, "pop": config.POP, "pop3": config.POP, "smtp": config.SMTP}

// runTest logs in to the account's mail server as a mail client would and
// says what worked, or why the server refused.
func runTest(e *env, fs *pflag.FlagSet) error {
	f, a, arg, err := e.accountAnd(fs, "ACCOUNT imap|pop|smtp, e.g. oauth2mail test work imap", func(arg string) error {
		switch {
		case testProtos[strings.ToLower(arg)] == "":
			return usagef("test: %q is not imap, pop or smtp", arg)
		case e.test.tls && e.test.starttls:
			return usagef("test: --tls and --starttls exclude each other")
		case e.test.timeout <= 0:
			return usagef("test: --timeout %s is not a duration above zero, e.g. 10s", e.test.timeout)
		}
		return nil
	})
	if err != nil {
		return err
	}
	proto := testProtos[strings.ToLower(arg)]
	srv, err := e.testServer(a, proto)
	if err != nil {
		return err
	}
	user, err := e.mailbox(a)
	if err != nil {
		return err
	}
	ca := a.CAFile
	if e.test.ca != "" {
		if ca, err = filepath.Abs(e.test.ca); err != nil {
			return usagef("test: --ca %q: %v", e.test.ca, err)
		}
	}
	st, err := e.broker(f).Token(e.ctx, a)
	if err != nil {
		return err
	}
	var transcript io.Writer
	if e.verbose {
		transcript = e.stderr
	}
	res, err := probe.Run(e.ctx, probe.Options{
		Proto: proto, Server: srv, CAFile: ca, User: user, Token: st.AccessToken,
		Account: a.Name, Email: a.Email, AppOnly: a.Flow == config.FlowClientCredentials, ClientID: a.ClientID,
		Transcript: transcript,
		Timeout:    e.test.timeout, ReadTimeout: min(probe.DefaultReadTimeout, e.test.timeout/2),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, res)
	return err
}

// testServer is the account's server for proto, with --server, --tls and
// --starttls applied; without a mode, --server gets the mode of its port.
func (e *env) testServer(a *config.Account, proto string) (config.Server, error) {
	b := *a
	fields := map[string][2]*string{
		config.IMAP: {&b.IMAPServer, &b.IMAPTLS},
		config.POP:  {&b.POPServer, &b.POPTLS},
		config.SMTP: {&b.SMTPServer, &b.SMTPTLS},
	}[proto]
	if e.test.server != "" {
		*fields[0], *fields[1] = e.test.server, ""
	}
	switch {
	case e.test.tls:
		*fields[1] = config.TLSImplicit
	case e.test.starttls:
		*fields[1] = config.TLSStartTLS
	}
	srv, err := b.Server(proto)
	switch {
	case errors.Is(err, config.ErrNoServer):
		return srv, fmt.Errorf("%w, or pass --server HOST:PORT", err)
	case err != nil && e.test.server != "" && strings.Contains(err.Error(), "TLS mode is unknown"):
		return srv, usagef("test: --server: %v; pass --tls or --starttls", err)
	case err != nil && e.test.server != "":
		return srv, usagef("test: --server: %v", err)
	case err != nil:
		return srv, usagef("test: %s_server of %s: %v", proto, a.Name, err) // the config check should have caught it
	}
	return srv, nil
}
