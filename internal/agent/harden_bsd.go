//go:build unix && !linux

package agent

import "golang.org/x/sys/unix"

// harden keeps the agent's memory out of core dumps. macOS and the BSDs
// have no PR_SET_DUMPABLE; their ptrace rules for processes of the same
// user are the system's.
func harden() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
}
