package helper

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/flows"
	"github.com/oauth2mail/oauth2mail/internal/shell"
)

// App-only (client-credentials) accounts have no refresh token: a new
// access token is requested with the app's credential whenever the cached
// one is near expiry.

// SecretCommandTimeout bounds client_secret_command.
const SecretCommandTimeout = 30 * time.Second

// maxCredential bounds what is read from a certificate file or a secret
// command: a PEM with a 4096-bit key and a chain is a few KiB.
const maxCredential = 64 << 10

// CredentialError is an app credential that cannot be used as configured:
// an unreadable certificate file, a failing client_secret_command.
type CredentialError struct {
	Account   string
	Msg       string
	Fix       string
	Temporary bool // a command that timed out: retrying may work
}

func (e *CredentialError) Error() string { return e.Account + ": " + e.Msg }

// SelfContained reports whether an app-only account carries its credential
// in the config (certificate, client_secret_command or client_secret), so
// it needs no `oauth2mail login` before its first token.
func SelfContained(a *config.Account) bool {
	return a.Flow == config.FlowClientCredentials && (a.Certificate != "" || a.ClientSecretCommand != "" || a.ClientSecret != "")
}

// NeedsStoredSecret reports whether login must ask for an app-only
// account's client secret and store it.
func NeedsStoredSecret(a *config.Account) bool {
	return a.Flow == config.FlowClientCredentials && !SelfContained(a)
}

// appToken requests a new app-only access token with the account's
// credential (st holds the secret login stored, if that is the source).
func (b *Broker) appToken(ctx context.Context, a *config.Account, st *cache.State) (*oauth2.Token, error) {
	cred, err := b.appCredential(ctx, a, st)
	if err != nil {
		return nil, err
	}
	b.logf("%s: requesting an app-only token from %s/%s with %s", a.Name, a.AuthorityHost, a.Tenant, cred.Source)
	return flows.AppToken(ctx, a, cred, b.HTTPClient)
}

func (b *Broker) appCredential(ctx context.Context, a *config.Account, st *cache.State) (flows.AppCredential, error) {
	switch {
	case a.Certificate != "":
		pem, err := readCertificate(a)
		return flows.AppCredential{CertPEM: pem, Source: "the certificate " + a.Certificate}, err
	case a.ClientSecretCommand != "":
		secret, err := runSecretCommand(ctx, a, b.Log)
		return flows.AppCredential{Secret: secret, Source: "client_secret_command"}, err
	case a.ClientSecret != "":
		return flows.AppCredential{Secret: a.ClientSecret, Source: "client_secret from the config"}, nil
	case st.ClientSecret != "":
		return flows.AppCredential{Secret: st.ClientSecret, Source: "the stored client secret"}, nil
	}
	return flows.AppCredential{}, fmt.Errorf("%s: no client secret is stored: %w", a.Name, ErrLoginNeeded)
}

// readCertificate reads the account's certificate file, which holds a
// private key: like ssh, refuse one that other users can read.
func readCertificate(a *config.Account) ([]byte, error) {
	fail := func(msg, fix string) ([]byte, error) {
		return nil, &CredentialError{Account: a.Name, Msg: msg, Fix: fix}
	}
	f, err := os.Open(a.Certificate)
	if err != nil {
		return fail(fmt.Sprintf("cannot read the certificate: %v", err), "check certificate = \""+a.Certificate+"\" in the config")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Sprintf("cannot read the certificate: %v", err), "check certificate in the config")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fail(fmt.Sprintf("the certificate %s holds a private key and other users can read it (mode %04o)", a.Certificate, fi.Mode().Perm()), "run: chmod 600 "+a.Certificate)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCredential+1))
	if err != nil || len(data) > maxCredential {
		return fail(fmt.Sprintf("cannot read the certificate %s (unreadable or larger than 64 KiB)", a.Certificate), "point certificate at the PEM file with the certificate and its private key")
	}
	return data, nil
}

// runSecretCommand runs client_secret_command through the shell and
// returns the first line it prints. Its stderr goes to log (a password
// manager's messages); its stdout is never shown.
func runSecretCommand(parent context.Context, a *config.Account, log io.Writer) (string, error) {
	ctx, cancel := context.WithTimeout(parent, SecretCommandTimeout)
	defer cancel()
	cmd := shell.Command(ctx, a.ClientSecretCommand)
	var out limitedBuffer
	out.limit = maxCredential
	cmd.Stdout, cmd.Stderr = &out, log
	err := cmd.Run()
	// The hint names the setting, not the command: a command may hold a
	// secret of its own (a passphrase, a token for a vault).
	fix := "check client_secret_command of " + a.Name + " in the config: run it by hand; it must print the secret on its first line"
	fail := func(msg string) (string, error) {
		return "", &CredentialError{Account: a.Name, Msg: msg, Fix: fix}
	}
	switch {
	case parent.Err() != nil:
		return "", parent.Err()
	case ctx.Err() != nil:
		return "", &CredentialError{Account: a.Name, Msg: fmt.Sprintf("client_secret_command did not finish within %s (a password manager waiting for a passphrase?)", SecretCommandTimeout), Fix: fix, Temporary: true}
	case err != nil:
		return fail("client_secret_command failed: " + err.Error())
	case out.over:
		return fail("client_secret_command printed more than 64 KiB")
	}
	line, _, _ := bytes.Cut(out.buf.Bytes(), []byte("\n"))
	secret := strings.TrimSpace(string(line))
	if secret == "" {
		return fail("client_secret_command printed nothing")
	}
	return secret, nil
}

// limitedBuffer keeps at most limit bytes and notes when more came. (Not
// an embedded bytes.Buffer: io.Copy would use its ReadFrom, unbounded.)
type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := l.limit - l.buf.Len(); n > room {
		l.over = true
		p = p[:max(room, 0)]
	}
	l.buf.Write(p)
	return n, nil
}

// ReadSecret reads a client secret: the first line of r, at most 64 KiB.
func ReadSecret(r io.Reader) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxCredential))
	sc.Buffer(make([]byte, 4096), maxCredential)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", err
		}
		return "", errors.New("no secret on standard input")
	}
	s := strings.TrimSpace(sc.Text())
	if s == "" {
		return "", errors.New("the secret is empty")
	}
	return s, nil
}
