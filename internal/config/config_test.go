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
		{"app needs tenant", base + "flow = \"client-credentials\"\n", `c.toml:1: accounts.work.tenant: missing; app-only access needs your tenant ID`},
		{"app rejects organizations", base + "flow = \"client-credentials\"\ntenant = \"organizations\"\n", `accounts.work.tenant: "organizations" cannot be used for app-only access`},
		{"app rejects common", base + "flow = \"client-credentials\"\ntenant = \"common\"\n", `"common" cannot be used`},
		{"app ok", base + "flow = \"client-credentials\"\ntenant = \"contoso.com\"\ncertificate = \"/etc/app.pem\"\n", ""},
		{"app only microsoft", "[accounts.g]\nprovider=\"google\"\nemail=\"a@b\"\nclient_id=\"c\"\nflow=\"client-credentials\"\n", `accounts.g.flow: "client-credentials" is for provider = "microsoft"`},
		{"app two credentials", base + "flow = \"client-credentials\"\ntenant = \"contoso.com\"\ncertificate = \"/a.pem\"\nclient_secret_command = \"pass x\"\n", `give one of client_secret, client_secret_command and certificate`},
		{"app relative certificate", base + "flow = \"client-credentials\"\ntenant = \"contoso.com\"\ncertificate = \"app.pem\"\n", `accounts.work.certificate: "app.pem" must be an absolute path`},
		{"app scope", base + "flow = \"client-credentials\"\ntenant = \"contoso.com\"\nscopes = [\"https://outlook.office.com/IMAP.AccessAsUser.All\"]\n", `accounts.work.scopes: app-only access takes one scope ending in "/.default"`},
		{"certificate needs app flow", base + "certificate = \"/a.pem\"\n", `accounts.work.certificate: only applies to flow = "client-credentials"`},
		{"server not host:port", base + "imap_server = \"mail.example.com\"\n", `c.toml:5: accounts.work.imap_server: "mail.example.com" is not host:port`},
		{"server odd port", base + "smtp_server = \"mail.example.com:2525\"\n", `accounts.work.smtp_server: port 2525 is not a standard mail port, so the TLS mode is unknown; set smtp_tls = "tls" or "starttls"`},
		{"server odd port with mode", base + "smtp_server = \"mail.example.com:2525\"\nsmtp_tls = \"starttls\"\n", ""},
		{"bad tls mode", base + "pop_tls = \"none\"\n", `accounts.work.pop_tls: "none" is not a TLS mode`},
		{"tls mode needs server", base + "imap_tls = \"tls\"\n", `accounts.work.imap_tls: needs imap_server`},
		{"relative ca", base + "ca_file = \"ca.pem\"\n", `accounts.work.ca_file: "ca.pem" must be an absolute path`},
		{"https redirect", base + "redirect_uri = \"https://localhost\"\n", ""},
		{"https redirect port path", base + "redirect_uri = \"https://localhost:8443/cb\"\n", ""},
		{"redirect elsewhere", base + "redirect_uri = \"https://example.com/cb\"\n", `accounts.work.redirect_uri: "https://example.com/cb" must be on localhost or 127.0.0.1`},
		{"redirect query", base + "redirect_uri = \"https://localhost/?a=b\"\n", `is not a redirect URI like`},
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

func TestServers(t *testing.T) {
	src := good + `
[accounts.onprem]
provider = "generic"
email = "me@example.org"
client_id = "c"
token_url = "https://idp.example.org/token"
auth_url = "https://idp.example.org/auth"
scopes = ["mail"]
imap_server = "mail.example.org:143"
smtp_server = "mail.example.org:10465"
smtp_tls = "tls"
ca_file = "~/ca.pem"

[accounts.personal]
provider = "microsoft"
tenant = "consumers"
email = "me@outlook.com"
client_id = "c"
`
	f, err := Parse("c.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	tests := []struct {
		account, proto, want string
	}{
		{"work", IMAP, "outlook.office365.com:993 tls default"},
		{"work", POP, "outlook.office365.com:995 tls default"},
		{"work", SMTP, "smtp.office365.com:587 starttls default"},
		{"personal", SMTP, "smtp-mail.outlook.com:587 starttls default"},
		{"gmail", IMAP, "imap.gmail.com:993 tls default"},
		{"gmail", SMTP, "smtp.gmail.com:587 starttls default"},
		{"onprem", IMAP, "mail.example.org:143 starttls"},
		{"onprem", SMTP, "mail.example.org:10465 tls"},
		{"onprem", POP, "error: no server: set pop_server = \"host:port\" for onprem in the config"},
	}
	for _, tt := range tests {
		a, _ := f.Account(tt.account)
		s, err := a.Server(tt.proto)
		got := s.Addr() + " " + s.TLS
		if s.Default {
			got += " default"
		}
		if err != nil {
			got = "error: " + err.Error()
			if !errors.Is(err, ErrNoServer) {
				t.Errorf("%s %s: error %v is not ErrNoServer", tt.account, tt.proto, err)
			}
		}
		if got != tt.want {
			t.Errorf("%s %s: got %q, want %q", tt.account, tt.proto, got, tt.want)
		}
	}
	if a, _ := f.Account("onprem"); a.CAFile != filepath.Join(home, "ca.pem") {
		t.Errorf("ca_file = %q, want ~ expanded", a.CAFile)
	}
}
