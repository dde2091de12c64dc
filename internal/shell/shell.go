// Package shell runs the commands a user writes in the config
// (notify_command, client_secret_command): through the system's shell, in
// a process group that dies as a whole when the context ends.
package shell

import (
	"context"
	"os/exec"
	"runtime"
	"time"
)

// Argv is the argument vector that runs line through /bin/sh -c (cmd /c
// on Windows).
func Argv(line string) []string {
	if runtime.GOOS == "windows" {
		return []string{"cmd", "/c", line}
	}
	return []string{"/bin/sh", "-c", line}
}

// Command returns a command running line through the shell, prepared like
// Exec's.
func Command(ctx context.Context, line string) *exec.Cmd { return Exec(ctx, Argv(line)...) }

// Exec returns a command for argv that, when ctx ends, kills its whole
// process group (a shell's children too, where the system has groups) and
// stops waiting for its output a second later.
func Exec(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	killGroup(cmd)
	cmd.WaitDelay = time.Second
	return cmd
}
