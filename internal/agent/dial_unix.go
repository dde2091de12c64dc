//go:build unix

package agent

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dial connects to the socket with plain blocking system calls: a client
// process makes one request and exits, and starting Go's network poller
// for it would cost more than the whole exchange with the agent.
func dial(ctx context.Context, socket string) (io.ReadWriteCloser, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	c := &rawConn{fd: fd}
	timeout := DialTimeout
	if err := c.setTimeout(timeout); err != nil {
		c.Close()
		return nil, err
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: socket})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	timeout = 0 // no deadline: no timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	if err := c.setTimeout(timeout); err != nil {
		c.Close()
		return nil, err
	}
	// Ctrl-C (the context ends) wakes a blocked read.
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed {
			unix.Shutdown(fd, unix.SHUT_RDWR)
		}
	})
	return c, nil
}

type rawConn struct {
	fd     int
	stop   func() bool
	mu     sync.Mutex // closed and the fd, against the context's shutdown
	closed bool
}

func (c *rawConn) setTimeout(d time.Duration) error {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	return unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
}

func (c *rawConn) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(c.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errors.New("the agent did not answer in time")
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c *rawConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(c.fd, p[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

func (c *rawConn) Close() error {
	if c.stop != nil {
		c.stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return unix.Close(c.fd)
}
