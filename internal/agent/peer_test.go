//go:build linux

package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envDial makes the test binary, run as another user, connect to the
// socket it names, send a ping and print what came back.
const envDial = "OAUTH2MAIL_AGENT_TEST_DIAL"

func TestMain(m *testing.M) {
	if sock := os.Getenv(envDial); sock != "" {
		os.Exit(dialAsHelper(sock))
	}
	os.Exit(m.Run())
}

func dialAsHelper(sock string) int {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, `{"v":%d,"op":"ping"}`+"\n", Version)
	data, err := io.ReadAll(c)
	fmt.Printf("answer %q, %v\n", data, err)
	return 0
}

// Only the agent's own user is served, whatever the socket's mode.
func TestPeerOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	r := startAgent(t)
	// Open the way to the socket for uid 65534, and give it a copy of
	// this test binary.
	for dir := filepath.Dir(r.sock); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o711)
	}
	os.Chmod(r.sock, 0o666)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(r.sock), "agent.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), envDial+"="+r.sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("cannot run as uid 65534: %v: %s", err, out)
	}
	// No answer: the agent hangs up (a reset, as the request is unread).
	if !strings.HasPrefix(string(out), `answer "",`) {
		t.Errorf("uid 65534 got %s", out)
	}
	if !strings.Contains(r.log.String(), "refused a connection from uid 65534") {
		t.Errorf("log = %q", r.log.String())
	}
	if pid, err := Ping(context.Background(), r.sock); err != nil || pid != os.Getpid() {
		t.Errorf("Ping after the refusal: %d, %v", pid, err)
	}
}
