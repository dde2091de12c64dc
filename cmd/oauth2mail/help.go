package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// doc is what a person reads about a command: in `oauth2mail help
// COMMAND`, the global usage, the man page and the shell completions, all
// made from these and the command's flag definitions.
type doc struct {
	args     string // after the command name: "ACCOUNT [--user MAILBOX]"
	summary  string // one line for the command list
	about    string // paragraphs, separated by blank lines
	examples []example
	// operands complete the argument after ACCOUNT (test, config) or the
	// first one (completion).
	operands []string
}

type example struct{ what, cmd string }

// order is the order commands are listed in; a command not listed is
// hidden (the completion scripts' helper).
var order = []string{"login", "token", "xoauth2", "oauthbearer", "status", "logout", "agent", "config", "test", "completion", "man", "version"}

var docs = map[string]doc{
	"login": {
		args:    "ACCOUNT [--device | --browser] [--no-open] [--secret-stdin]",
		summary: "sign in once; the refresh token is kept, encrypted",
		about: `Signs in to the account's identity provider and stores the tokens,
encrypted, under a key kept in the OS keyring (store = "keyring") or in a
0600 file beside them (store = "file").

The browser flow (authorization code with PKCE, redirect to 127.0.0.1) is
used when there is a display; otherwise, or with --device, the device-code
flow: a code to type at the provider's page on any device, for SSH sessions
and headless machines.

With --provider, --email and --client-id the first login also writes the
account into the config file.

App-only accounts (flow = "client-credentials") have no person to sign in:
login checks the client secret with the identity provider and stores it,
read hidden from the terminal or, with --secret-stdin, from standard input.`,
		examples: []example{
			{"first login, creating the account", "oauth2mail login work --provider microsoft --email me@contoso.com \\\n    --client-id 00000000-0000-0000-0000-000000000000 --tenant contoso.com"},
			{"sign in again over SSH", "oauth2mail login work --device"},
			{"store an app-only account's client secret from a password manager", "pass show contoso/mail-app | oauth2mail login service --secret-stdin"},
		},
	},
	"token": {
		args:    "ACCOUNT",
		summary: "print a valid access token (refreshed when needed)",
		about: `Prints the account's access token on stdout, one line, for a mail
client's password command. A token with more than five minutes left is
printed at once; otherwise it is refreshed with the stored refresh token,
and the new refresh token is saved before the access token is printed.
The agent answers instead when it runs.`,
		examples: []example{
			{"msmtp (~/.msmtprc)", `auth xoauth2` + "\n" + `passwordeval "oauth2mail token work"`},
			{"mbsync (~/.mbsyncrc)", `AuthMechs XOAUTH2` + "\n" + `PassCmd "oauth2mail token work"`},
			{"mutt/neomutt", `set imap_authenticators="xoauth2"` + "\n" + `set imap_oauth_refresh_command="oauth2mail token work"`},
		},
	},
	"xoauth2": {
		args:    "ACCOUNT [--user MAILBOX]",
		summary: "print the base64 SASL XOAUTH2 string",
		about: `Prints the ready-to-send base64 SASL XOAUTH2 string
(user=MAILBOX ^A auth=Bearer TOKEN ^A ^A) on stdout, one line. --user names
a shared mailbox you have been given access to; the token stays yours.`,
		examples: []example{
			{"log in to IMAP by hand", `printf 'a AUTHENTICATE XOAUTH2 %s\r\n' "$(oauth2mail xoauth2 work)"`},
			{"a shared mailbox", "oauth2mail xoauth2 work --user sales@contoso.com"},
		},
	},
	"oauthbearer": {
		args:    "ACCOUNT [--user MAILBOX] [--host HOST --port PORT]",
		summary: "print the base64 SASL OAUTHBEARER (RFC 7628) string",
		about: `Prints the base64 SASL OAUTHBEARER string (RFC 7628) on stdout, one
line. --host and --port fill its host= and port= fields, which some
servers check; --user names a shared mailbox.`,
		examples: []example{
			{"", "oauth2mail oauthbearer work --host outlook.office365.com --port 993"},
		},
	},
	"status": {
		args:    "[ACCOUNT] [--json]",
		summary: "show accounts, token expiry, last refresh, store",
		about: `Shows every account (or one): its store, its state (ok, expired: a
refresh is due and will happen on the next use, login-needed, store-unavailable,
corrupt), when the access token expires, the refresh token's age and the last
refresh. No token is shown. The state is coloured on a terminal (not when
NO_COLOR is set). --json gives the same for scripts; with one ACCOUNT the exit
code tells its state.`,
		examples: []example{
			{"", "oauth2mail status"},
			{"accounts that need a login, for a script", `oauth2mail status --json | jq -r '.[] | select(.state == "login-needed") | .account'`},
		},
	},
	"logout": {
		args:    "ACCOUNT",
		summary: "forget the account's stored tokens and key",
		about: `Removes the account's encrypted state, its key (keyring entry or key
file) and any stored client secret. The account stays in the config file; the
grant stays valid at the identity provider until it expires or you revoke it
there.`,
		examples: []example{{"", "oauth2mail logout work"}},
	},
	"agent": {
		args:    "[--socket PATH]",
		summary: "run the agent: serves tokens to your processes, refreshes ahead",
		about: `Runs the agent in the foreground. While it runs, token, xoauth2,
oauthbearer and status ask it instead of doing the work themselves (same
output, same exit codes): cron jobs without D-Bus get tokens, tokens in use are
refreshed before they expire, refresh tokens are used at least every keepalive
so Microsoft does not forget them, and a lost login is reported once (the
[agent] section of the config). Only processes of your user are served.
SIGINT or SIGTERM stops it.`,
		examples: []example{
			{"try it", "oauth2mail agent -v"},
			{"as a systemd user service (contrib/systemd)", "systemctl --user enable --now oauth2mail-agent"},
		},
	},
	"config": {
		args:     "ACCOUNT CLIENT",
		summary:  "print a working mail client configuration for the account",
		operands: []string{"msmtp", "mbsync", "neomutt", "mutt", "aerc", "fetchmail"},
		about: `Prints a configuration snippet for CLIENT (msmtp, mbsync, neomutt, mutt,
aerc or fetchmail) on stdout: the account's servers and TLS modes, XOAUTH2,
and oauth2mail as the credential command. What stands in its way on this
machine (the client missing, no XOAUTH2 SASL plugin, an old version) is
said on stderr.`,
		examples: []example{
			{"", "oauth2mail config work msmtp >> ~/.msmtprc"},
			{"", "oauth2mail config work mbsync >> ~/.mbsyncrc"},
		},
	},
	"test": {
		args:     "ACCOUNT imap|pop|smtp [--user MAILBOX] [--server HOST:PORT] [--tls | --starttls] [--ca FILE] [--timeout DURATION]",
		summary:  "log in to the mail server as a mail client does, and say why not",
		operands: []string{"imap", "pop", "smtp"},
		about: `Logs in to the account's IMAP, POP3 or SMTP server with XOAUTH2, as a
mail client would, then lists folders (IMAP), counts messages (POP3) or stops
before sending (SMTP). TLS comes first: no token is sent in clear. On a
refusal it shows the server's reply and what to do about it (exit 6): SMTP
AUTH disabled for the tenant, IMAP or POP disabled for the mailbox, no
permission on a shared mailbox, an app-only service principal not
registered in Exchange. -v shows the dialogue with the token redacted.`,
		examples: []example{
			{"", "oauth2mail test work smtp"},
			{"a shared mailbox, showing the dialogue", "oauth2mail test work imap --user sales@contoso.com -v"},
			{"another server", "oauth2mail test work imap --server imap.example.net:993 --ca ~/ca.pem"},
		},
	},
	"completion": {
		args:     "bash|zsh|fish",
		summary:  "print the shell completion script",
		operands: []string{"bash", "zsh", "fish"},
		about: `Prints a completion script for the shell: commands, options, account
names from the config file, and the protocols and clients of test and config.`,
		examples: []example{
			{"bash", "oauth2mail completion bash > ~/.local/share/bash-completion/completions/oauth2mail"},
			{"zsh (a directory in $fpath)", `oauth2mail completion zsh > "${fpath[1]}/_oauth2mail"`},
			{"fish", "oauth2mail completion fish > ~/.config/fish/completions/oauth2mail.fish"},
		},
	},
	"man": {
		summary: "print the manual page (roff)",
		about:   `Prints this manual as a man page, made from the same text as --help.`,
		examples: []example{
			{"", "oauth2mail man > ~/.local/share/man/man1/oauth2mail.1 && man oauth2mail"},
		},
	},
	"version": {
		summary:  "print the version and commit",
		examples: []example{{"", "oauth2mail version"}},
	},
}

// flagSet returns the flags of the named command, bound to e: the options
// every command has, then the command's own.
func (e *env) flagSet(name string, cmd command) (fs *pflag.FlagSet, help *bool) {
	fs = pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&e.configPath, "config", "", "config `FILE` (default $OAUTH2MAIL_CONFIG, else $XDG_CONFIG_HOME/oauth2mail/config.toml)")
	fs.BoolVarP(&e.verbose, "verbose", "v", false, "explain what happens on stderr (token lengths and expiry, never values)")
	help = fs.BoolP("help", "h", false, "show this help")
	if cmd.agent {
		fs.BoolVar(&e.noAgent, "no-agent", false, "do not ask the agent (or set OAUTH2MAIL_AGENT=off; OAUTH2MAIL_AGENT=PATH names its socket)")
	}
	fs.VisitAll(func(f *pflag.Flag) { f.Annotations = map[string][]string{globalFlag: nil} })
	if cmd.flags != nil {
		cmd.flags(fs, e)
	}
	return fs, help
}

// globalFlag annotates the options every command has (flagSet).
const globalFlag = "global"

// global reports whether f is one of the options every command has.
func global(f *pflag.Flag) bool {
	_, ok := f.Annotations[globalFlag]
	return ok
}

// flagNames is a flag's names: "-v, --verbose" or "--user".
func flagNames(f *pflag.Flag) string {
	if f.Shorthand != "" {
		return "-" + f.Shorthand + ", --" + f.Name
	}
	return "--" + f.Name
}

// flagLine is a flag as the help shows it: "-v, --verbose" or "--user MAILBOX".
func flagLine(f *pflag.Flag) string {
	if v := flagArg(f); v != "" {
		return flagNames(f) + " " + v
	}
	return flagNames(f)
}

// flagArg names a flag's value: the `word` in backquotes in its usage, else
// the flag's name in capitals; "" for a switch.
func flagArg(f *pflag.Flag) string {
	name, _ := pflag.UnquoteUsage(f)
	switch name {
	case "":
		return ""
	case "string":
		return strings.ToUpper(f.Name)
	case "int":
		return "N"
	case "duration":
		return "DURATION"
	}
	return name
}

func flagText(f *pflag.Flag) string {
	_, usage := pflag.UnquoteUsage(f)
	return usage
}

// printHelp writes the help of one command.
func printHelp(w io.Writer, name string) {
	d, cmd := docs[name], commands()[name]
	fmt.Fprintf(w, "Usage: oauth2mail %s\n", indent(wrapGroups(strings.TrimSpace(name+" "+d.args), 60), 18))
	fmt.Fprintf(w, "\n%s\n", d.summary)
	if d.about != "" {
		fmt.Fprintf(w, "\n%s\n", d.about)
	}
	fs, _ := (&env{}).flagSet(name, cmd)
	var own, all []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !global(f) {
			own = append(own, f)
		}
		all = append(all, f)
	})
	if len(own) > 0 {
		fmt.Fprintf(w, "\nOptions:\n")
		printFlags(w, own)
	}
	fmt.Fprintf(w, "\nOptions for every command:\n")
	printFlags(w, slices.DeleteFunc(all, func(f *pflag.Flag) bool { return !global(f) }))
	if len(d.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, x := range d.examples {
			if x.what != "" {
				fmt.Fprintf(w, "  # %s\n", x.what)
			}
			for _, l := range strings.Split(x.cmd, "\n") {
				fmt.Fprintf(w, "  %s\n", l)
			}
		}
	}
}

func printFlags(w io.Writer, flags []*pflag.Flag) {
	for _, f := range flags {
		line := flagLine(f)
		text := wrap(flagText(f), 52)
		if len(line) <= 22 {
			fmt.Fprintf(w, "  %-22s %s\n", line, indent(text, 25))
		} else {
			fmt.Fprintf(w, "  %s\n%s%s\n", line, strings.Repeat(" ", 25), indent(text, 25))
		}
	}
}

// wrap breaks s into lines of at most width columns at spaces.
func wrap(s string, width int) string { return fill(strings.Fields(s), width) }

// wrapGroups wraps a synopsis like wrap, keeping each [...] group whole.
func wrapGroups(s string, width int) string {
	var groups []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ' ':
			if depth == 0 {
				groups = append(groups, s[start:i])
				start = i + 1
			}
		}
	}
	return fill(append(groups, s[start:]), width)
}

// fill joins words with spaces, starting a new line before a word that
// would pass width.
func fill(words []string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range words {
		switch {
		case i == 0:
		case n+1+len(word) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

// usage is the global help: the commands, the common options, and what a
// first-time user needs.
func usage() string {
	var b strings.Builder
	b.WriteString(`Usage: oauth2mail COMMAND [ACCOUNT] [OPTIONS]

oauth2mail logs in to your mail provider once (OAuth 2.0) and then hands
fresh access tokens to mail clients: msmtp, mbsync, mutt/neomutt, scripts.

Commands:
`)
	for _, name := range order {
		d := docs[name]
		line := strings.TrimSpace(name + " " + d.args)
		if len(line) <= 19 {
			fmt.Fprintf(&b, "  %-19s %s\n", line, indent(wrap(d.summary, 53), 22))
		} else {
			fmt.Fprintf(&b, "  %s\n%s%s\n", indent(wrapGroups(line, 72), 4), strings.Repeat(" ", 22), indent(wrap(d.summary, 53), 22))
		}
	}
	b.WriteString(`
Options for every command:
  --config FILE       config file (default $OAUTH2MAIL_CONFIG, else
                      $XDG_CONFIG_HOME/oauth2mail/config.toml)
  -v, --verbose       explain what happens on stderr (token lengths and
                      expiry, never token values)
  -h, --help          show the help of a command: oauth2mail login --help

First login also creates the account:
  oauth2mail login work --provider microsoft --email me@contoso.com \
      --client-id 00000000-0000-0000-0000-000000000000 [--tenant contoso.com]

Examples:
  msmtp:  auth xoauth2 + passwordeval "oauth2mail token work"
  mbsync: AuthMechs XOAUTH2 + PassCmd "oauth2mail token work"
  mutt:   set imap_authenticators="xoauth2"
          set imap_oauth_refresh_command="oauth2mail token work"
  any:    oauth2mail config work msmtp|mbsync|neomutt|mutt|aerc|fetchmail

Tokens are stored in $XDG_STATE_HOME/oauth2mail/ACCOUNT.json.enc, encrypted
(AES-256-GCM) with a key kept in the OS keyring (or, with store = "file", in
a 0600 file beside it). Tokens are printed on stdout only, one line.

Exit codes:
`)
	for _, c := range exitCodes {
		fmt.Fprintf(&b, "  %d  %s\n", c.code, c.meaning)
	}
	b.WriteString("\nMore: oauth2mail help COMMAND, man oauth2mail, the README.\n")
	return b.String()
}

// exitCodes are the documented exit codes (see explain in ui.go).
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "success"},
	{exitInternal, "unexpected internal error (please report it)"},
	{exitUsage, "usage or config error: fix the command or the config"},
	{exitLogin, "login needed: run oauth2mail login ACCOUNT"},
	{exitTemporary, "temporary failure (network, timeout, identity provider down): retry later"},
	{exitStore, "token store unavailable (no keyring / D-Bus, keyring locked, corrupt state)"},
	{exitRejected, "the mail server rejected the credentials"},
}

// runHelp is `oauth2mail help [COMMAND]`.
func runHelp(e *env, args []string) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(e.stdout, usage())
		return exitOK
	case len(args) == 1 && docs[args[0]].summary != "":
		printHelp(e.stdout, args[0])
		return exitOK
	}
	return report(e.stderr, explain(usagef("help: %q is not a command; the commands: %s", strings.Join(args, " "), strings.Join(order, ", ")), "", false))
}
