//go:build !linux && !darwin && !freebsd

package agent

import (
	"errors"
	"net"
)

// Without a way to learn a peer's uid the agent does not run: it would
// hand tokens to whoever can reach the socket.
func peer(c *net.UnixConn) (uid, pid int, err error) {
	return -1, 0, errors.New("peer credentials are not supported on this system")
}

const peerSupported = false
