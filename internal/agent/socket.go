package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"
)

// EnvAgent selects the agent: "off" (or "0", "no") never asks one, a path
// names its socket, empty means the default socket.
const EnvAgent = "OAUTH2MAIL_AGENT"

// Socket returns where clients look for the agent, or "" when EnvAgent
// turns it off.
func Socket() string {
	switch v := os.Getenv(EnvAgent); v {
	case "off", "0", "no", "false":
		return ""
	case "", "on", "1", "yes", "auto":
		return DefaultSocket()
	default:
		return v
	}
}

// DefaultSocket is $XDG_RUNTIME_DIR/oauth2mail/agent.sock. Cron jobs often
// run without XDG_RUNTIME_DIR; they find the same socket under
// /run/user/UID, which is what systemd sets XDG_RUNTIME_DIR to. Without
// either, a private directory in the temp dir.
func DefaultSocket() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "oauth2mail", "agent.sock")
	}
	uid := strconv.Itoa(os.Getuid())
	if fi, err := os.Stat("/run/user/" + uid); err == nil && fi.IsDir() {
		return filepath.Join("/run/user", uid, "oauth2mail", "agent.sock")
	}
	return filepath.Join(os.TempDir(), "oauth2mail-"+uid, "agent.sock")
}

// ErrRunning: another agent already serves this socket.
var ErrRunning = errors.New("another agent is already running")

// ErrUnsupported: this system cannot tell who connects to a socket.
var ErrUnsupported = errors.New("the agent needs peer credentials on its socket, which this system does not offer; the commands work without it")

// listener is the agent's socket and the lock that makes it ours.
type listener struct {
	net.Listener
	path string
	lock *flock.Flock
}

// listen creates the socket at path, mode 0600 in a 0700 directory owned by
// us. A lock beside it makes a second agent fail at once; a socket left by
// an agent that crashed is replaced.
func listen(path string) (*listener, error) {
	if !peerSupported {
		return nil, ErrUnsupported
	}
	dir := filepath.Dir(path)
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	lk := flock.New(path+".lock", flock.SetPermissions(0o600))
	ok, err := lk.TryLock()
	if err != nil {
		return nil, fmt.Errorf("%s.lock: %v", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w on %s", ErrRunning, path)
	}
	// We hold the lock, so a socket file here is stale: its agent died.
	// Check that it is a socket before removing anything.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			lk.Unlock()
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another --socket", path)
		}
		if err := os.Remove(path); err != nil {
			lk.Unlock()
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lk.Unlock()
		return nil, err
	}
	return &listener{Listener: ln, path: path, lock: lk}, nil
}

// Close stops listening, removes the socket and releases the lock.
func (l *listener) Close() error {
	err := l.Listener.Close()
	// The lock file stays: removing it could let two agents lock two files.
	l.lock.Unlock()
	return err
}

// privateDir makes dir (0700) when it is missing. An existing directory
// must be ours; its mode is left alone (it may be a home directory): the
// socket itself is 0600 and every caller's uid is checked.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid, ok := owner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you; choose another --socket", dir, uid)
	}
	return nil
}

// Ping reports whether an agent answers at socket, and its pid.
func Ping(ctx context.Context, socket string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := Call(ctx, socket, &Request{Op: "ping"})
	if err != nil {
		return 0, err
	}
	return resp.PID, nil
}
