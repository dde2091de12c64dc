package agent

import "golang.org/x/sys/unix"

// harden keeps the agent's memory (decrypted tokens and keys) out of core
// dumps, and out of reach of ptrace and /proc/PID/mem for other processes
// of the same user that are not root.
func harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
