package clientconf

import (
	"errors"
	"fmt"
	"strings"
)

// Each mail client reads its config with its own quoting rules; a value
// is quoted for the one client that reads it. The rules were checked
// against the clients Debian 12 ships (see the tests and scripts/e2e.d).

// shellQuote quotes s as one word for /bin/sh, the shell every client
// runs its credential command with: as it is when it holds only
// characters the shell leaves alone, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, shellSafe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-"

// shellJoin quotes each word for sh and joins them with spaces.
func shellJoin(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

// msmtpQuote: msmtp (1.8.23 and earlier) strips one pair of double quotes
// around an argument and knows no escapes, so the text goes in as it is.
func msmtpQuote(s string) string { return `"` + s + `"` }

// msmtpArg quotes a file name only when it has blanks.
func msmtpArg(s string) string {
	if strings.ContainsAny(s, " \t") || strings.HasPrefix(s, `"`) {
		return msmtpQuote(s)
	}
	return s
}

// mbsyncQuote: isync reads a backslash as "take the next character as it
// is" inside and outside double quotes.
func mbsyncQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// muttQuote: in a double-quoted muttrc string a backslash escapes, a
// backquote runs a command and $ expands a variable; all three (and the
// double quote) are escaped so the value arrives as written. Mutt and
// NeoMutt parse the same way.
func muttQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(s) + `"`
}

// iniValue: aerc's accounts.conf is read by go-ini, which cuts a value at
// the first # or ; (an inline comment), trims blanks and surrounding
// quotes, and joins a line ending in a backslash with the next. A value
// between backquotes is taken as it is, up to the last backquote.
func iniValue(s string) string {
	if strings.ContainsAny(s, "#;`\"'") || strings.HasSuffix(s, `\`) || strings.TrimSpace(s) != s {
		return "`" + s + "`"
	}
	return s
}

// ErrUnquotable is returned for a value the client's config cannot hold:
// a control character anywhere, both kinds of quote for fetchmail.
var ErrUnquotable = errors.New("cannot be written in the client's config")

// fetchmailQuote: fetchmail reads "..." or '...' with C escapes (\\, \x41)
// and no way to escape the quote itself.
func fetchmailQuote(s string) (string, error) {
	s = strings.ReplaceAll(s, `\`, `\\`)
	switch {
	case !strings.Contains(s, `"`):
		return `"` + s + `"`, nil
	case !strings.Contains(s, `'`):
		return `'` + s + `'`, nil
	}
	return "", fmt.Errorf("%q %w: fetchmail strings hold ' or \", not both", s, ErrUnquotable)
}
