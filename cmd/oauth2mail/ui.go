package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/flows"
	"github.com/oauth2mail/oauth2mail/internal/helper"
	"github.com/oauth2mail/oauth2mail/internal/probe"
)

// Exit codes: stable, documented in the usage text and the README.
const (
	exitOK        = 0
	exitInternal  = 1
	exitUsage     = 2
	exitLogin     = 3
	exitTemporary = 4
	exitStore     = 5
	exitRejected  = 6
)

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// failure is an error with its exit code and what to do about it.
type failure struct {
	code  int
	msg   string
	hints []string
}

// explain maps any error to an exit code, one line saying what happened and
// the fix. It is the only place that decides exit codes.
func explain(err error, account string, verbose bool) failure {
	prefix := ""
	if account != "" {
		prefix = account + ": "
	}
	acct := account
	if acct == "" {
		acct = "ACCOUNT"
	}
	var (
		ue  *usageError
		ce  *config.Error
		fe  *flows.Error
		cre *helper.CredentialError
		pe  *probe.Error
	)
	switch {
	case errors.As(err, &ue):
		return failure{exitUsage, ue.msg, []string{"run: oauth2mail --help"}}
	case errors.Is(err, config.ErrNoFile):
		return failure{exitUsage, err.Error(), []string{"create it with: oauth2mail login " + acct + " --provider microsoft --email YOU@EXAMPLE.COM --client-id ID (see the README)"}}
	case errors.As(err, &ce):
		return failure{exitUsage, ce.Error(), nil}
	case errors.Is(err, config.ErrNoServer):
		return failure{exitUsage, prefix + err.Error(), nil}
	case errors.As(err, &cre) && cre.Temporary:
		return failure{exitTemporary, cre.Error(), []string{cre.Fix}}
	case errors.As(err, &cre):
		return failure{exitUsage, cre.Error(), []string{cre.Fix}}
	case errors.As(err, &pe):
		code := map[probe.Kind]int{probe.Rejected: exitRejected, probe.Temporary: exitTemporary, probe.Untrusted: exitUsage, probe.Misconfigured: exitUsage}[pe.Kind]
		if code == 0 {
			code = exitInternal
		}
		return failure{code, prefix + pe.Error(), pe.Hints}
	case errors.Is(err, config.ErrUnknownAccount):
		return failure{exitUsage, err.Error(), []string{"run: oauth2mail status to list accounts, or add it with oauth2mail login " + acct + " --provider ... --email ... --client-id ..."}}
	case errors.As(err, &fe):
		f := failure{msg: prefix + fe.Error()}
		switch fe.Kind {
		case flows.KindTemporary:
			f.code = exitTemporary
		case flows.KindLogin, flows.KindDeclined, flows.KindBlocked:
			f.code = exitLogin
		case flows.KindConfig:
			f.code = exitUsage
		default:
			f.code = exitInternal
		}
		if h := fe.Hint(acct); h != "" {
			f.hints = append(f.hints, h)
		}
		if verbose {
			if fe.Description != "" {
				f.hints = append(f.hints, "identity provider said: "+fe.Description)
			}
			if fe.TraceID != "" || fe.Correlation != "" {
				f.hints = append(f.hints, "for support: trace ID "+fe.TraceID+", correlation ID "+fe.Correlation)
			}
		}
		return f
	case errors.Is(err, helper.ErrLoginNeeded):
		msg := err.Error()
		if errors.Is(err, cache.ErrNotFound) {
			msg = prefix + "not logged in"
		}
		return failure{exitLogin, msg, []string{"run: oauth2mail login " + acct}}
	case errors.Is(err, cache.ErrCorrupt):
		return failure{exitStore, err.Error(), []string{"the file was left as it is; run: oauth2mail login " + acct + " to sign in again (the old file is moved aside, not deleted)"}}
	case errors.Is(err, cache.ErrUnavailable):
		return failure{exitStore, prefix + err.Error(), []string{storeHint(err, acct)}}
	case errors.Is(err, context.DeadlineExceeded):
		return failure{exitTemporary, prefix + "timed out: " + err.Error(), []string{"try again; another oauth2mail may be stuck refreshing"}}
	case errors.Is(err, context.Canceled):
		return failure{exitTemporary, prefix + "interrupted", nil}
	}
	return failure{exitInternal, prefix + err.Error(), []string{"this looks like a bug; please report it with the output of --verbose"}}
}

func storeHint(err error, account string) string {
	switch {
	case errors.Is(err, cache.ErrNoSessionBus):
		return "start `oauth2mail agent` in your desktop session (or as a systemd user service): it then serves jobs without a bus; or run this from the desktop session; on a server without one, set store = \"file\" for " + account + " in the config (less safe) and log in again"
	case strings.Contains(err.Error(), "keyring"):
		return "unlock your keyring (log in to the desktop, or run: gnome-keyring-daemon --unlock), or set store = \"file\" for " + account + " (less safe) and log in again"
	}
	return "check that the state directory " + cache.DefaultDir() + " is yours, writable and not full"
}

// report prints f on stderr in oauth2mail's voice and returns its exit code.
func report(stderr io.Writer, f failure) int {
	fmt.Fprintf(stderr, "oauth2mail: error: %s\n", f.msg)
	for _, h := range f.hints {
		fmt.Fprintf(stderr, "oauth2mail: hint: %s\n", h)
	}
	return f.code
}
