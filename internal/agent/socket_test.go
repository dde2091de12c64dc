package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func mustListen(t *testing.T, path string) *listener {
	t.Helper()
	ln, err := listen(path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serves checks that ln accepts a connection made to path.
func serves(t *testing.T, ln *listener, path string) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.Close()
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the listener did not accept")
	}
}

func TestListenModes(t *testing.T) {
	sock := sockPath(t) // its directory does not exist yet
	ln := mustListen(t, sock)
	if m := mode(t, filepath.Dir(sock)); !m.IsDir() || m.Perm() != 0o700 {
		t.Errorf("directory mode %s, want drwx------", m)
	}
	if m := mode(t, sock); m&os.ModeSocket == 0 || m.Perm() != 0o600 {
		t.Errorf("socket mode %s, want srw-------", m)
	}
	if m := mode(t, sock+".lock"); m.Perm() != 0o600 {
		t.Errorf("lock file mode %s", m)
	}
	serves(t, ln, sock)
}

// An existing directory (say a home directory given with --socket
// ~/agent.sock) keeps its mode; the socket in it is still 0600.
func TestListenLeavesExistingDirectory(t *testing.T) {
	sock := sockPath(t)
	dir := filepath.Dir(sock)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	mustListen(t, sock)
	if m := mode(t, dir); m.Perm() != 0o755 {
		t.Errorf("directory mode %s after listen, want it left drwxr-xr-x", m)
	}
	if m := mode(t, sock); m.Perm() != 0o600 {
		t.Errorf("socket mode %s, want 0600", m)
	}
}

func TestListenSecondFails(t *testing.T) {
	sock := sockPath(t)
	first, err := listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = listen(sock)
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), sock) {
		t.Fatalf("second listen = %v, want ErrRunning naming the socket", err)
	}
	serves(t, first, sock) // untouched by the attempt
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: %v", err)
	}
	again := mustListen(t, sock)
	serves(t, again, sock)
}

// An agent that died leaves its socket file; the lock died with it.
func TestListenReplacesStaleSocket(t *testing.T) {
	sock := sockPath(t)
	first, err := listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	// Die without cleaning up: the kernel closes the socket and drops
	// the lock, the file stays.
	first.Listener.(*net.UnixListener).SetUnlinkOnClose(false)
	first.Listener.Close()
	first.lock.Close()
	if m := mode(t, sock); m&os.ModeSocket == 0 {
		t.Fatal("no leftover socket")
	}
	if _, err := Call(context.Background(), sock, &Request{Op: "ping"}); !errors.Is(err, ErrNoAgent) {
		t.Errorf("Call to the leftover socket = %v, want ErrNoAgent", err)
	}
	ln := mustListen(t, sock)
	serves(t, ln, sock)

	// A leftover socket made by someone else than an agent, with no lock
	// file at all, is replaced too.
	ln.Close()
	os.Remove(sock + ".lock")
	staleSocket(t, sock)
	serves(t, mustListen(t, sock), sock)
}

func TestListenRefusesNonSocket(t *testing.T) {
	sock := sockPath(t)
	os.MkdirAll(filepath.Dir(sock), 0o700)
	if err := os.WriteFile(sock, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := listen(sock)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file = %v", err)
	}
	if data, err := os.ReadFile(sock); err != nil || string(data) != "precious" {
		t.Errorf("the file is now %q, %v", data, err)
	}
	// The lock was let go.
	fl := flock.New(sock + ".lock")
	if ok, err := fl.TryLock(); err != nil || !ok {
		t.Errorf("lock held after the refusal: %v, %v", ok, err)
	}
	fl.Close()

	// Nor a directory, nor a symlink to a socket.
	os.Remove(sock)
	os.Mkdir(sock, 0o700)
	if _, err := listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen over a directory = %v", err)
	}
	os.Remove(sock)
	target := staleSocket(t, filepath.Join(filepath.Dir(sock), "other.sock"))
	os.Symlink(target, sock)
	if _, err := listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen over a symlink = %v", err)
	}
	if m := mode(t, target); m&os.ModeSocket == 0 {
		t.Error("the symlink's target was removed")
	}
}

func TestListenRefusesForeignDirectory(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	sock := sockPath(t)
	dir := filepath.Dir(sock)
	os.Mkdir(dir, 0o700)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Skip(err)
	}
	if _, err := listen(sock); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("listen in another user's directory = %v", err)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("a socket was made in another user's directory")
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1234")
	for v, want := range map[string]string{
		"off": "", "0": "", "no": "", "false": "",
		"": "/run/user/1234/oauth2mail/agent.sock", "on": "/run/user/1234/oauth2mail/agent.sock",
		"/tmp/x.sock": "/tmp/x.sock",
	} {
		t.Setenv(EnvAgent, v)
		if got := Socket(); got != want {
			t.Errorf("%s=%q: Socket() = %q, want %q", EnvAgent, v, got, want)
		}
	}
	t.Setenv("XDG_RUNTIME_DIR", "relative")
	if got := DefaultSocket(); !filepath.IsAbs(got) || strings.HasPrefix(got, "relative") {
		t.Errorf("DefaultSocket with a relative XDG_RUNTIME_DIR = %q", got)
	}
}
