package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

// benchEnv logs an account in against a fake IdP in a throwaway home and
// returns the environment that reaches it. store is "file" or "keyring".
func benchEnv(b *testing.B, store string) []string {
	b.Helper()
	if store == "keyring" && (os.Getenv("OAUTH2MAIL_TEST_KEYRING") != "1" || os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "") {
		b.Skip("needs the private keyring of scripts/bench")
	}
	idp := fakeidp.New(fakeidp.Options{AccessTokenLifetime: 3600e9})
	b.Cleanup(idp.Close)
	home := b.TempDir()
	conf := filepath.Join(home, "config.toml")
	os.WriteFile(conf, []byte(`[accounts.work]
provider = "microsoft"
email = "me@contoso.com"
client_id = "c"
authority_host = "`+idp.URL+`"
store = "`+store+`"
`), 0o600)
	env := []string{"HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state"), "OAUTH2MAIL_CONFIG=" + conf,
		"PATH=" + os.Getenv("PATH"), "DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	if code := run(context.Background(), []string{"login", "work", "--device"}, nil, io.Discard, io.Discard); code != 0 {
		b.Fatalf("login exited %d", code)
	}
	return env
}

// BenchmarkTokenCached is the in-process hot path: load config, decrypt the
// state, print the cached token.
func BenchmarkTokenCached(b *testing.B) {
	for _, store := range []string{"file", "keyring"} {
		b.Run(store, func(b *testing.B) {
			benchEnv(b, store)
			b.ResetTimer()
			for b.Loop() {
				if code := run(context.Background(), []string{"token", "work"}, nil, io.Discard, io.Discard); code != 0 {
					b.Fatalf("token exited %d", code)
				}
			}
		})
	}
}

// buildBinary builds a package into dir once per benchmark run, the way
// release binaries are built (static, stripped).
func buildBinary(b *testing.B, pkg, src string) string {
	b.Helper()
	dir := b.TempDir()
	if src != "" {
		os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600)
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n"), 0o600)
		pkg = "."
	}
	out := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if src != "" {
		cmd.Dir = dir
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	return out
}

// startAgent runs `bin agent` in env until the benchmark ends and returns
// the environment of its clients and its process.
func startAgent(b *testing.B, bin string, env []string) ([]string, *os.Process) {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "agent.sock")
	cmd := exec.Command(bin, "agent", "--socket", sock)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 500 {
			b.Fatal("the agent did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return append(env, "OAUTH2MAIL_AGENT="+sock), cmd.Process
}

// execLoop times exec of bin args in env (nil: this process's).
func execLoop(b *testing.B, env []string, bin string, args ...string) {
	b.Helper()
	for b.Loop() {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExec measures what a mail client waits for: exec of the real
// binary with a cached token, through the agent and directly, beside exec
// of a hello-world Go binary.
func BenchmarkExec(b *testing.B) {
	hello := buildBinary(b, "", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n")
	bin := buildBinary(b, ".", "")
	b.Run("hello", func(b *testing.B) { execLoop(b, nil, hello) })
	// The floor of any oauth2mail command: starting this binary at all.
	b.Run("version", func(b *testing.B) { execLoop(b, nil, bin, "version") })
	for _, store := range []string{"file", "keyring"} {
		b.Run("token-"+store+"-direct", func(b *testing.B) {
			env := benchEnv(b, store)
			execLoop(b, append(env, "OAUTH2MAIL_AGENT=off"), bin, "token", "work")
		})
		b.Run("token-"+store+"-agent", func(b *testing.B) {
			env, _ := startAgent(b, bin, benchEnv(b, store))
			execLoop(b, env, bin, "token", "work")
		})
	}
}

// BenchmarkAgentTenAccounts: the agent with 10 logged-in accounts; reports
// its resident memory after serving them, and the CPU it uses while idle.
func BenchmarkAgentTenAccounts(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	bin := buildBinary(b, ".", "")
	env := benchEnv(b, "file")
	conf := os.Getenv("OAUTH2MAIL_CONFIG")
	data, err := os.ReadFile(conf)
	if err != nil {
		b.Fatal(err)
	}
	all := string(data)
	for i := 1; i < 10; i++ {
		acct := fmt.Sprintf("acct%d", i)
		all += strings.ReplaceAll(string(data), "[accounts.work]", "\n[accounts."+acct+"]")
		os.WriteFile(conf, []byte(all), 0o600)
		if code := run(context.Background(), []string{"login", acct, "--device"}, nil, io.Discard, io.Discard); code != 0 {
			b.Fatalf("login %s exited %d", acct, code)
		}
	}
	env, proc := startAgent(b, bin, env)
	n := 0
	for b.Loop() {
		cmd := exec.Command(bin, "xoauth2", fmt.Sprintf("acct%d", n%9+1))
		cmd.Env = env
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", proc.Pid))
	for _, field := range []string{"VmRSS", "VmHWM"} {
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				b.ReportMetric(float64(kb)/1024, field+"-MiB")
			}
		}
	}
	before := cpuTicks(b, proc.Pid)
	time.Sleep(5 * time.Second)
	b.ReportMetric(float64(cpuTicks(b, proc.Pid)-before), "idle-CPU-ticks/5s")
}

// cpuTicks is the user+system time of pid, in clock ticks (1/100 s).
func cpuTicks(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the ")" that ends the command name: utime is 14th, stime 15th overall.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}
