//go:build darwin || freebsd

package agent

import "golang.org/x/sys/unix"

// peerOf reads LOCAL_PEERCRED, what getpeereid(3) reads; no pid.
func peerOf(fd int) (uid, pid int, err error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, 0, err
	}
	return int(cred.Uid), 0, nil
}
