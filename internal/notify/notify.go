// Package notify tells a person that an account needs them: its login is
// lost and only `oauth2mail login` can bring it back. It runs the user's
// notify_command, or notify-send on a desktop, or writes one log line. It
// never passes a token: only the account, its mailbox, the reason and the fix.
package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/shell"
)

// Timeout bounds a notify command; a hung command is killed.
var Timeout = 30 * time.Second

// Notice is what a person is told.
type Notice struct {
	Account string
	Email   string
	Reason  string    // the IdP's refusal, one line
	Since   time.Time // when the login was found lost
}

// Fix is the command that brings the account back.
func (n Notice) Fix() string { return "oauth2mail login " + n.Account }

// Env is what a notify command gets on top of the caller's environment.
func (n Notice) Env() []string {
	return []string{
		"OAUTH2MAIL_ACCOUNT=" + n.Account,
		"OAUTH2MAIL_EMAIL=" + n.Email,
		"OAUTH2MAIL_REASON=" + n.Reason,
		"OAUTH2MAIL_SINCE=" + n.Since.UTC().Format(time.RFC3339),
		"OAUTH2MAIL_FIX=" + n.Fix(),
	}
}

// Send delivers n: through command (run by the shell) when it is set, else
// through notify-send when a display exists and it is installed, else as
// one line on log. Failures of the command are reported on log; Send never
// blocks longer than Timeout.
func Send(ctx context.Context, command string, n Notice, log io.Writer) {
	line := fmt.Sprintf("oauth2mail: %s (%s) needs you to log in again since %s: %s; run: %s",
		n.Account, n.Email, n.Since.Local().Format("2006-01-02 15:04"), n.Reason, n.Fix())
	var argv []string
	switch {
	case command != "":
		argv = shell.Argv(command)
	case hasDisplay():
		p, err := exec.LookPath("notify-send")
		if err != nil {
			fmt.Fprintln(log, line)
			return
		}
		argv = []string{p, "--app-name=oauth2mail", "--urgency=critical",
			"oauth2mail: " + n.Account + " needs a new login",
			n.Reason + "\nRun: " + n.Fix()}
	default:
		fmt.Fprintln(log, line)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := shell.Exec(ctx, argv...)
	cmd.Env = append(os.Environ(), n.Env()...)
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("killed after %s", Timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			msg = ": " + msg
		}
		fmt.Fprintf(log, "oauth2mail: notify command for %s failed (%v)%s\n", n.Account, err, msg)
		fmt.Fprintln(log, line)
	}
}

func hasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return false // no notify-send; use notify_command (osascript, msg)
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}
