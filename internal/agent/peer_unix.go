//go:build linux || darwin || freebsd

package agent

import "net"

// peer returns the uid (and, where the kernel says, the pid) of the process
// at the other end of c, as the kernel recorded them at connect.
func peer(c *net.UnixConn) (uid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	uid, pid = -1, 0
	cerr := raw.Control(func(fd uintptr) { uid, pid, err = peerOf(int(fd)) })
	if cerr != nil {
		return -1, 0, cerr
	}
	return uid, pid, err
}

const peerSupported = true
