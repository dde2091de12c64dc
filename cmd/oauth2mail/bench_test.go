package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

// buildBinary builds a package into dir once per benchmark run.
func buildBinary(b *testing.B, pkg, src string) string {
	b.Helper()
	dir := b.TempDir()
	if src != "" {
		os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600)
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n"), 0o600)
		pkg = "."
	}
	out := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	if src != "" {
		cmd.Dir = dir
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	return out
}

// BenchmarkExec measures what a mail client waits for: exec of the real
// binary with a cached token, beside exec of a hello-world Go binary.
func BenchmarkExec(b *testing.B) {
	hello := buildBinary(b, "", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n")
	bin := buildBinary(b, ".", "")
	b.Run("hello", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command(hello).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, store := range []string{"file", "keyring"} {
		b.Run("token-"+store, func(b *testing.B) {
			env := benchEnv(b, store)
			b.ResetTimer()
			for b.Loop() {
				cmd := exec.Command(bin, "token", "work")
				cmd.Env = env
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
