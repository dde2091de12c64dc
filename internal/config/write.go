package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/oauth2mail/oauth2mail/internal/atomicfile"
)

// AddAccount appends a new account to the config file at path, creating the
// file (0600) and its directory (0700) when needed. It never rewrites what is
// already there: the new table is appended after the existing text, which is
// kept byte for byte, and the result is validated before it replaces the file.
func AddAccount(path string, a *Account) error {
	old, err := readBounded(path)
	if err != nil && !errors.Is(err, ErrNoFile) {
		return err
	}
	if err == nil {
		f, err := Parse(path, old)
		if err != nil {
			return err
		}
		if _, ok := f.Accounts[a.Name]; ok {
			return &Error{File: path, Key: "accounts." + quoteKey(a.Name), Msg: "already exists"}
		}
	}
	var b strings.Builder
	b.Write(old)
	if len(old) > 0 && !strings.HasSuffix(string(old), "\n") {
		b.WriteString("\n")
	}
	if len(old) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "[accounts.%s]\n", quoteKey(a.Name))
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-14s = %s\n", k, tomlString(v))
		}
	}
	kv("provider", a.Provider)
	kv("email", a.Email)
	kv("client_id", a.ClientID)
	kv("tenant", a.Tenant)
	kv("authority_host", a.AuthorityHost)
	kv("auth_url", a.AuthURL)
	kv("token_url", a.TokenURL)
	kv("device_auth_url", a.DeviceAuthURL)
	if len(a.Scopes) > 0 {
		q := make([]string, len(a.Scopes))
		for i, s := range a.Scopes {
			q[i] = tomlString(s)
		}
		fmt.Fprintf(&b, "%-14s = [%s]\n", "scopes", strings.Join(q, ", "))
	}
	kv("flow", a.Flow)
	kv("store", a.Store)
	kv("redirect_host", a.RedirectHost)
	out := []byte(b.String())
	if _, err := Parse(path, out); err != nil {
		return err
	}
	return writeFileAtomic(path, out)
}

func tomlString(s string) string {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(map[string]string{"v": s}); err != nil {
		return fmt.Sprintf("%q", s)
	}
	_, v, _ := strings.Cut(strings.TrimSpace(b.String()), "= ")
	return v
}

// writeFileAtomic replaces path with data; new files are 0600 (a config may
// hold a client secret), an existing file keeps its mode.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return atomicfile.WriteFile(path, data, mode)
}
