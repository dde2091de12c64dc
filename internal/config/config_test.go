package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `# my accounts
[accounts.work]
provider  = "microsoft"
email     = "me@contoso.com"
client_id = "00000000-0000-0000-0000-000000000000"

[accounts.gmail]
provider  = "google"
email     = "me@gmail.com"
client_id = "x.apps.googleusercontent.com"
client_secret = "not-really-secret"
store     = "file"
`

func TestParseDefaults(t *testing.T) {
	f, err := Parse("c.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.Names(), ","), "gmail,work"; got != want {
		t.Errorf("Names() = %s, want %s", got, want)
	}
	w, _ := f.Account("work")
	if w.Tenant != "organizations" || w.AuthorityHost != DefaultAuthorityHost || w.Flow != "auto" || w.Store != "keyring" || w.RedirectHost != "localhost" {
		t.Errorf("defaults not filled: %#v", w)
	}
	if _, err := f.Account("nope"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("Account(nope) err = %v, want ErrUnknownAccount", err)
	}
}

func TestGoStringRedactsSecret(t *testing.T) {
	f, err := Parse("c.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := f.Account("gmail")
	if s := g.GoString(); strings.Contains(s, "not-really-secret") {
		t.Errorf("GoString leaks the client secret: %s", s)
	}
}

func TestParseErrors(t *testing.T) {
	base := "[accounts.work]\nprovider = \"microsoft\"\nemail = \"me@contoso.com\"\nclient_id = \"id\"\n"
	tests := []struct {
		name, src, want string
	}{
		{"syntax", "[accounts.work\n", "c.toml:2"},
		{"unknown key", base + "emial = \"x\"\n", `c.toml:5: accounts.work.emial: unknown key`},
		{"bad provider", strings.Replace(base, `"microsoft"`, `"yahoo"`, 1), `c.toml:2: accounts.work.provider: "yahoo" is not a provider`},
		{"missing email", "[accounts.work]\nprovider = \"google\"\nclient_id = \"x\"\n", `c.toml:1: accounts.work.email: missing`},
		{"bad tenant", base + "tenant = \"not a tenant\"\n", `c.toml:5: accounts.work.tenant:`},
		{"http authority", base + "authority_host = \"http://login.example.com\"\n", `c.toml:5: accounts.work.authority_host: "http://login.example.com" uses plain http`},
		{"http loopback ok", base + "authority_host = \"http://127.0.0.1:8080\"\n", ""},
		{"generic url on microsoft", base + "token_url = \"https://x/token\"\n", `accounts.work.token_url: only applies to provider = "generic"`},
		{"generic needs scopes", "[accounts.g]\nprovider=\"generic\"\nemail=\"a@b\"\nclient_id=\"c\"\ntoken_url=\"https://t\"\nauth_url=\"https://a\"\n", `c.toml:1: accounts.g.scopes: missing`},
		{"bad flow", base + "flow = \"magic\"\n", `c.toml:5: accounts.work.flow: "magic" is not a flow`},
		{"bad store", base + "store = \"disk\"\n", `accounts.work.store`},
		{"bad redirect host", base + "redirect_host = \"[::1]\"\n", `accounts.work.redirect_host`},
		{"bad name", "[accounts.\"a/b\"]\nprovider = \"google\"\nemail=\"a@b\"\nclient_id=\"x\"\n", `account names may use`},
		{"wrong type", base + "scopes = \"a b\"\n", `c.toml:5: accounts.work.scopes: incompatible types`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.toml", []byte(tt.src))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingAndHuge(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none.toml")); !errors.Is(err, ErrNoFile) {
		t.Errorf("missing file: err = %v, want ErrNoFile", err)
	}
	huge := filepath.Join(dir, "huge.toml")
	os.WriteFile(huge, make([]byte, maxSize+10), 0o600)
	if _, err := Load(huge); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("huge file: err = %v", err)
	}
}

func TestAddAccountKeepsExistingText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.toml")
	if err := AddAccount(path, &Account{Name: "work", Provider: "microsoft", Email: "me@contoso.com", ClientID: "id", Tenant: "contoso.com"}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new config mode = %v, want 0600", st.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	if err := AddAccount(path, &Account{Name: "g", Provider: "google", Email: "a@gmail.com", ClientID: "x", Scopes: []string{"https://mail.google.com/"}}); err != nil {
		t.Fatal(err)
	}
	both, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(both), string(first)) {
		t.Errorf("existing text was rewritten:\n%s", both)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := f.Account("work"); w.Tenant != "contoso.com" {
		t.Errorf("tenant = %q", w.Tenant)
	}
	if err := AddAccount(path, &Account{Name: "work", Provider: "google", Email: "a@b", ClientID: "x"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate add: err = %v", err)
	}
	if err := AddAccount(path, &Account{Name: "bad", Provider: "nope", Email: "a@b", ClientID: "x"}); err == nil {
		t.Error("invalid account was added")
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(both) {
		t.Error("a failed add changed the file")
	}
}

func TestValidators(t *testing.T) {
	for _, n := range []string{"work", "a", "me@contoso.com", "x_y-z.1"} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", "-x", "a/b", "a b", strings.Repeat("a", 65), "../x"} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
	for _, tn := range []string{"common", "organizations", "consumers", "contoso.com", "contoso.onmicrosoft.com", "72f988bf-86f1-41af-91ab-2d7cd011db47"} {
		if !validTenant(tn) {
			t.Errorf("validTenant(%q) = false", tn)
		}
	}
	for _, tn := range []string{"", "contoso", "my tenant", "a..b", "72f988bf-86f1-41af-91ab-2d7cd011db4g", ".com"} {
		if validTenant(tn) {
			t.Errorf("validTenant(%q) = true", tn)
		}
	}
}
