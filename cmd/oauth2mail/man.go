package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// runMan prints the manual page, in roff, made from the same command
// definitions as the help; scripts/release ships it as oauth2mail.1.
func runMan(e *env, fs *pflag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("man: unexpected argument %q", fs.Arg(0))
	}
	_, err := io.WriteString(e.stdout, manPage())
	return err
}

func manPage() string {
	var b strings.Builder
	// No date: the page must be the same bytes on every build.
	fmt.Fprintf(&b, ".TH OAUTH2MAIL 1 \"\" \"oauth2mail %s\" \"User Commands\"\n.nh\n.ad l\n", roffText(versionString()))
	b.WriteString(".SH NAME\noauth2mail \\- OAuth 2.0 token broker and SASL XOAUTH2 credential helper for mail clients\n")
	b.WriteString(".SH SYNOPSIS\n")
	for _, name := range order {
		fmt.Fprintf(&b, ".B oauth2mail %s\n", name)
		if a := docs[name].args; a != "" {
			fmt.Fprintf(&b, "%s\n", roffText(a))
		}
		b.WriteString(".br\n")
	}
	b.WriteString(`.SH DESCRIPTION
oauth2mail logs in to your mail provider once (OAuth 2.0: Microsoft 365,
Outlook.com, Gmail or any standard provider) and then hands fresh access
tokens, or ready SASL XOAUTH2 and OAUTHBEARER strings, to mail clients such as
msmtp, mbsync, mutt, neomutt, aerc and scripts, through their password
commands.
.PP
Accounts are described in the config file; the first
.B login
can write one. Tokens are kept encrypted, and printed on standard output
only, one line; everything else goes to standard error.
.SH COMMANDS
`)
	for _, name := range order {
		d, cmd := docs[name], commands()[name]
		fmt.Fprintf(&b, ".SS %s\n", roffText(strings.TrimSpace(name+" "+d.args)))
		fmt.Fprintf(&b, "%s\n", roffText(d.summary))
		for _, para := range strings.Split(d.about, "\n\n") {
			if para != "" {
				fmt.Fprintf(&b, ".PP\n%s\n", roffText(para))
			}
		}
		fs, _ := (&env{}).flagSet(name, cmd)
		fs.VisitAll(func(f *pflag.Flag) {
			if !global(f) {
				manFlag(&b, f)
			}
		})
		for _, x := range d.examples {
			b.WriteString(".PP\n")
			if x.what != "" {
				fmt.Fprintf(&b, "%s:\n", roffText(strings.ToUpper(x.what[:1])+x.what[1:]))
			}
			fmt.Fprintf(&b, ".RS 4\n.nf\n%s\n.fi\n.RE\n", roffText(x.cmd))
		}
	}
	b.WriteString(".SH OPTIONS\nThese options are taken by every command.\n")
	fs, _ := (&env{}).flagSet("token", commands()["token"])
	fs.VisitAll(func(f *pflag.Flag) {
		if global(f) {
			manFlag(&b, f)
		}
	})
	b.WriteString(`.SH EXIT STATUS
`)
	for _, c := range exitCodes {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", c.code, roffText(c.meaning))
	}
	b.WriteString(`.SH ENVIRONMENT
.TP
.B OAUTH2MAIL_CONFIG
the config file, when --config is not given
.TP
.B OAUTH2MAIL_AGENT
off: do not ask the agent; a path: the agent's socket
.TP
.B XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR
where the config, the encrypted state and the agent's socket are
.TP
.B BROWSER
the program that opens the sign-in page
.TP
.B SSL_CERT_FILE
a CA bundle to trust instead of the system's (a TLS-inspecting proxy)
.TP
.B NO_COLOR
no colours in the status table
.SH FILES
.TP
.I $XDG_CONFIG_HOME/oauth2mail/config.toml
the accounts (default ~/.config/oauth2mail/config.toml)
.TP
.I $XDG_STATE_HOME/oauth2mail/ACCOUNT.json.enc
the account's tokens, AES-256-GCM under a key kept in the OS keyring, or
with store = "file" in ACCOUNT.key beside it (0600)
.TP
.I $XDG_RUNTIME_DIR/oauth2mail/agent.sock
the agent's socket (0600, in a 0700 directory)
.SH SECURITY
No token or secret is put on a command line, in an exported environment
variable, in a log line or an error message; -v shows lengths and expiry
only. See SECURITY.md for the threat model and how to report a problem.
.SH SEE ALSO
.BR msmtp (1),
.BR mbsync (1),
.BR neomutt (1),
.BR mutt (1)
.PP
The README: https://github.com/oauth2mail/oauth2mail
`)
	return b.String()
}

func manFlag(b *strings.Builder, f *pflag.Flag) {
	name := roffText(flagNames(f))
	if v := flagArg(f); v != "" {
		name += " " + `\fI` + roffText(v) + `\fR`
	}
	fmt.Fprintf(b, ".TP\n.B %s\n%s\n", name, roffText(flagText(f)))
}

// roffText escapes text for roff: backslashes, hyphens (so man renders
// options with real minus signs), and lines starting with . or '.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
