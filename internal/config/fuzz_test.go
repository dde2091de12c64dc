package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"
)

// FuzzParse feeds Parse arbitrary TOML, seeded with every config the
// project shows a user (README.md's toml blocks) or tests the binary with
// (cmd/oauth2mail/testdata/*.txtar), and checks what a user meets: a
// refusal is one line of bounded length, and an accepted config holds only
// accounts the rest of oauth2mail can use without further checks.
func FuzzParse(f *testing.F) {
	for _, src := range seedConfigs(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("config.toml", []byte(src))
		if err != nil {
			checkError(t, err)
			return
		}
		checkFile(t, file)
	})
}

// maxErrorLen bounds a config error: one line in a mail client's status bar
// or log, however long the value it is about.
const maxErrorLen = 512

func checkError(t *testing.T, err error) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %q (%T) is not a *config.Error", err, err)
	}
	msg := err.Error()
	if !PlainText(msg) {
		t.Errorf("error is not one plain line: %q", msg)
	}
	if len(msg) > maxErrorLen {
		t.Errorf("error of %d bytes (at most %d): %.200q...", len(msg), maxErrorLen, msg)
	}
	if !strings.HasPrefix(msg, "config.toml") {
		t.Errorf("error does not name the file: %q", msg)
	}
}

func checkFile(t *testing.T, f *File) {
	t.Helper()
	g := f.Agent
	if time.Duration(g.NotifyEvery) < time.Minute || time.Duration(g.IdleAfter) < time.Minute ||
		time.Duration(g.KeepAlive) < time.Hour || g.KeepAlive > Duration(60*24*time.Hour) {
		t.Errorf("agent durations out of range: %+v", g)
	}
	if !PlainText(g.NotifyCommand) {
		t.Errorf("notify_command %q is not one line", g.NotifyCommand)
	}
	for _, name := range f.Names() {
		a, err := f.Account(name)
		if err != nil || a.Name != name || !ValidName(name) {
			t.Fatalf("account %q: name %q, %v", name, a.Name, err)
		}
		checkAccount(t, a)
	}
}

func checkAccount(t *testing.T, a *Account) {
	t.Helper()
	oneOf := func(key, v string, allowed ...string) {
		for _, s := range allowed {
			if v == s {
				return
			}
		}
		t.Errorf("%s: %s = %q, want one of %q", a.Name, key, v, allowed)
	}
	oneOf("provider", a.Provider, ProviderMicrosoft, ProviderGoogle, ProviderGeneric)
	oneOf("flow", a.Flow, FlowAuto, FlowBrowser, FlowDevice, FlowClientCredentials)
	oneOf("store", a.Store, StoreKeyring, StoreFile)
	oneOf("redirect_host", a.RedirectHost, "localhost", "127.0.0.1")
	// The mailbox goes into SASL strings framed by ^A.
	if !strings.Contains(a.Email, "@") || !PlainText(a.Email) || a.ClientID == "" {
		t.Errorf("%s: email %q, client_id %q", a.Name, a.Email, a.ClientID)
	}
	if a.Provider == ProviderMicrosoft && (!validTenant(a.Tenant) || checkURL(a.AuthorityHost) != "") {
		t.Errorf("%s: tenant %q, authority_host %q", a.Name, a.Tenant, a.AuthorityHost)
	}
	if a.Provider == ProviderGeneric && (a.TokenURL == "" || len(a.Scopes) == 0) {
		t.Errorf("%s: a generic account without token_url or scopes", a.Name)
	}
	for _, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			t.Errorf("%s: scope %q", a.Name, s)
		}
	}
	for _, p := range []string{a.CAFile, a.Certificate} {
		if p != "" && !filepath.IsAbs(p) {
			t.Errorf("%s: path %q is not absolute", a.Name, p)
		}
	}
	if a.Flow == FlowClientCredentials && (a.Provider != ProviderMicrosoft || a.Tenant == "common" || a.Tenant == "organizations" || a.Tenant == "consumers") {
		t.Errorf("%s: app-only with provider %q, tenant %q", a.Name, a.Provider, a.Tenant)
	}
	if a.RedirectURI != "" && checkRedirectURI(a.RedirectURI) != "" {
		t.Errorf("%s: redirect_uri %q", a.Name, a.RedirectURI)
	}
	for _, proto := range []string{IMAP, POP, SMTP} {
		srv, err := a.Server(proto)
		if err != nil {
			server, _ := a.serverFields(proto)
			if !errors.Is(err, ErrNoServer) || *server != "" || a.Provider != ProviderGeneric {
				t.Errorf("%s: Server(%s) = %v", a.Name, proto, err)
			}
			continue
		}
		if srv.Host == "" || !PlainText(srv.Host) || srv.Port < 1 || srv.Port > 65535 || srv.TLS != TLSImplicit && srv.TLS != TLSStartTLS {
			t.Errorf("%s: Server(%s) = %+v", a.Name, proto, srv)
		}
		if h, p, err := net.SplitHostPort(srv.Addr()); err != nil || h != srv.Host || p != strconv.Itoa(srv.Port) {
			t.Errorf("%s: Server(%s).Addr() = %q does not split back: %q %q %v", a.Name, proto, srv.Addr(), h, p, err)
		}
	}
	// %#v of an account never shows its client secret: it is the same
	// for another secret.
	if a.ClientSecret != "" {
		other := *a
		other.ClientSecret += "x"
		if other.GoString() != a.GoString() {
			t.Errorf("%s: GoString shows the client secret", a.Name)
		}
	}
}

// seedConfigs returns the configs of README.md's toml blocks and of the
// testscripts, with the scripts' variables set to plausible values, and a
// few written here: servers, an https redirect, an app-only account and
// broken files.
func seedConfigs(f *testing.F) []string {
	var seeds []string
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		seeds = append(seeds, m[1])
	}
	scripts, err := filepath.Glob("../../cmd/oauth2mail/testdata/*.txtar")
	if err != nil || len(scripts) == 0 {
		f.Fatalf("no testscripts: %v", err)
	}
	vars := map[string]string{"IDP": "http://127.0.0.1:41234", "IDP_TLS": "https://127.0.0.1:41235", "WORK": "/tmp/work"}
	for _, s := range scripts {
		ar, err := txtar.ParseFile(s)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if strings.HasSuffix(file.Name, ".toml") {
				seeds = append(seeds, os.Expand(string(file.Data), func(k string) string {
					if v, ok := vars[k]; ok {
						return v
					}
					return "$" + k
				}))
			}
		}
	}
	if len(seeds) < 10 {
		f.Fatalf("only %d seed configs found in README.md and the testscripts", len(seeds))
	}
	return append(seeds, extraSeeds...)
}

var extraSeeds = []string{
	// scripts/e2e's account: generic provider, mail servers, private CA.
	`[accounts.demo]
provider        = "generic"
email           = "user@example.test"
client_id       = "oauth2mail-e2e"
auth_url        = "https://localhost:8443/auth"
token_url       = "https://localhost:8443/token"
device_auth_url = "https://localhost:8443/device/auth"
scopes          = ["openid", "offline_access"]
store           = "keyring"
redirect_host   = "127.0.0.1"
imap_server     = "localhost:10143"
imap_tls        = "starttls"
pop_server      = "localhost:10995"
pop_tls         = "tls"
smtp_server     = "localhost:10587"
smtp_tls        = "starttls"
ca_file         = "/tmp/sandbox/ca.pem"
`,
	// Microsoft with servers by port, an https redirect, a sovereign cloud.
	`[accounts."me@contoso.com"]
provider       = "microsoft"
email          = "me@contoso.com"
client_id      = "9e5f94bc-e8a4-4e73-b8be-63364c29d753"
tenant         = "72f988bf-86f1-41af-91ab-2d7cd011db47"
authority_host = "https://login.microsoftonline.us/"
redirect_uri   = "https://localhost:8443/callback"
imap_server    = "[::1]:993"
smtp_server    = "smtp.office365.com:587"
pop_server     = "outlook.office365.com:995"
ca_file        = "~/ca.pem"
flow           = "device"
`,
	// Google with a secret, a personal Outlook.com account.
	`[accounts.gmail]
provider      = "google"
email         = "me@gmail.com"
client_id     = "1234-abc.apps.googleusercontent.com"
client_secret = "GOCSPX-abcdefghijklmnop"
scopes        = ["https://mail.google.com/"]
flow          = "browser"
redirect_uri  = "http://127.0.0.1:8400/cb"

[accounts.personal]
provider = "microsoft"
tenant   = "consumers"
email    = "me@outlook.com"
client_id = "c"
`,
	// App-only with a client secret in the config.
	`[accounts.robot]
provider      = "microsoft"
flow          = "client-credentials"
email         = "robot@contoso.com"
tenant        = "contoso.onmicrosoft.com"
client_id     = "00000000-0000-0000-0000-000000000000"
client_secret = "Abc8Q~secret.value-that-is-long"
scopes        = ["https://outlook.office365.com/.default"]
`,
	// The agent's settings in every unit.
	"[agent]\nnotify_command = \"notify-send x\"\nnotify_every = \"90m\"\nkeepalive = \"1.5d\"\nidle_after = \"1h30m\"\n",
	// Broken: syntax, types, shapes, keys.
	"[accounts.work\nprovider = \"microsoft\"\n",
	"[accounts.work]\nprovider = \"microsoft\"\nprovider = \"google\"\n",
	"[accounts.work]\nscopes = \"a b\"\nemail = 42\n",
	"[[accounts]]\nprovider = \"microsoft\"\n",
	"accounts = 1\n",
	"accounts.work.provider = \"google\"\naccounts.work.email = \"a@b\"\naccounts.work.client_id = \"c\"\n",
	"[accounts]\nwork = { provider = \"google\", email = \"a@b\", client_id = \"c\", emial = \"x\" }\n",
	"[accounts.\"a\\nb\"]\nprovider = \"google\"\n",
	"[accounts.work]\n\"bad\\u0000key\" = 1\n",
	"[accounts.work]\nprovider = \"microsoft\"\nemail = \"me@contoso.com\"\nclient_id = \"c\"\ntenant = \"" + strings.Repeat("x", 300) + "\"\n",
	"[agent]\nkeepalive = \"90d\"\nnotify_every = \"-1h\"\n",
	"[agent]\nidle_after = \"1s\"\n",
	"[accounts.w]\nprovider=\"generic\"\nemail=\"a@b\"\nclient_id=\"c\"\ntoken_url=\"http://example.com/t\"\nauth_url=\"ftp://x\"\nscopes=[\"\"]\n",
	"[accounts.w]\nprovider=\"microsoft\"\nemail=\"a@b\"\nclient_id=\"c\"\nsmtp_server=\"h:2525\"\nimap_tls=\"none\"\n",
	"\xef\xbb\xbf[accounts.w]\nprovider = 'google'\r\nemail = '''a@b'''\r\n",
	"",
}

// Found by FuzzParse: the TOML parser's messages quote the text they
// stopped at (the end of the input, as a NUL, here), a quoted key may hold a newline, and a value of
// any length was quoted whole.
func TestErrorIsOneBoundedLine(t *testing.T) {
	base := "[accounts.work]\nprovider = \"microsoft\"\nclient_id = \"c\"\n"
	long := strings.Repeat("x", 10000)
	tests := []struct{ name, src, want string }{
		{"number at the end", "[00]\n0=0b", `config.toml:2: 00.0: not a binary number: '0b\x00'`},
		{"newline in a key", "[accounts.\"a\\nb\"]\nprovider = \"google\"\n", `config.toml: accounts."a\nb": account names may use`},
		{"long value", base + "email = \"" + long + "\"\n", `config.toml:4: accounts.work.email: "` + long[:maxQuotedLen] + `"... is not a mail address`},
		{"long name", "[accounts." + long + "]\nprovider = \"google\"\n", `config.toml:1: accounts.` + long[:maxKeyLen-len("accounts.")] + `...: account names may use`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.toml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			checkError(t, err)
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}
