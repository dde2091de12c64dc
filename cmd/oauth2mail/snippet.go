package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/clientconf"
)

// runConfig prints a mail client's configuration for an account on
// stdout, and on stderr what stands in its way here.
func runConfig(e *env, fs *pflag.FlagSet) error {
	clients := strings.Join(clientconf.Clients, "|")
	_, a, client, err := e.accountAnd(fs, "ACCOUNT and a client: oauth2mail config ACCOUNT "+clients, func(client string) error {
		if !slices.Contains(clientconf.Clients, client) {
			return usagef("config: %q is not a client I write for; use %s", client, clients)
		}
		return nil
	})
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot tell where this program is: %w", err)
	}
	bin, warnings := clientconf.Binary(exe, exec.LookPath)
	p := clientconf.Params{Account: a, Binary: bin, StateDir: cache.DefaultDir()}
	// A config chosen by --config or $OAUTH2MAIL_CONFIG is one the mail
	// client would not find: name it in the command.
	if e.configPath != "" || os.Getenv("OAUTH2MAIL_CONFIG") != "" {
		if p.ConfigPath, err = filepath.Abs(e.path()); err != nil {
			return err
		}
	}
	text, more, err := clientconf.Snippet(client, p)
	if errors.Is(err, clientconf.ErrUnquotable) {
		return usagef("config: %v; move it to a plainer path", err)
	}
	if err != nil {
		return err
	}
	warnings = append(warnings, more...)
	warnings = append(warnings, clientconf.Check(client, p, clientconf.OS(e.ctx))...)
	if _, err := fmt.Fprint(e.stdout, text); err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "oauth2mail: warning: %s\n", w)
	}
	return nil
}
