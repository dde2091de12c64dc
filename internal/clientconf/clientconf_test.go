package clientconf

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// accounts are the shapes users have; each is parsed and validated like a
// real config, so the defaults (tenant, servers) are the real ones.
const accounts = `
[accounts.work]
provider  = "microsoft"
email     = "me@contoso.com"
client_id = "00000000-0000-0000-0000-000000000000"

[accounts.gmail]
provider      = "google"
email         = "me@gmail.com"
client_id     = "1234-abc.apps.googleusercontent.com"
client_secret = "GOCSPX-not-a-secret"

[accounts.mail]
provider    = "generic"
email       = "me@example.com"
client_id   = "abc"
auth_url    = "https://idp.example.com/authorize"
token_url   = "https://idp.example.com/token"
scopes      = ["https://mail.example.com/", "offline_access"]
imap_server = "imap.example.com:143"
pop_server  = "pop.example.com:995"
smtp_server = "smtp.example.com:465"

[accounts.lab]
provider    = "generic"
email       = "user@example.test"
client_id   = "abc"
token_url   = "http://127.0.0.1:14080/token"
device_auth_url = "http://127.0.0.1:14080/device/auth"
scopes      = ["openid", "offline_access"]
imap_server = "localhost:14143"
imap_tls    = "starttls"
smtp_server = "localhost:14587"
smtp_tls    = "starttls"
ca_file     = "/srv/lab ca/ca.pem"

[accounts.robot]
provider      = "microsoft"
email         = "robot@contoso.com"
client_id     = "00000000-0000-0000-0000-000000000001"
tenant        = "contoso.onmicrosoft.com"
flow          = "client-credentials"
certificate   = "/etc/oauth2mail/robot.pem"

[accounts.sendonly]
provider    = "generic"
email       = "me@example.com"
client_id   = "abc"
token_url   = "https://idp.example.com/token"
auth_url    = "https://idp.example.com/authorize"
scopes      = ["mail"]
smtp_server = "smtp.example.com:587"
`

func account(t *testing.T, name string) *config.Account {
	t.Helper()
	f, err := config.Parse("config.toml", []byte(accounts))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.Account(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func params(t *testing.T, name string) Params {
	return Params{Account: account(t, name), Binary: "oauth2mail", StateDir: "/home/me/.local/state/oauth2mail"}
}

// golden compares got with testdata/NAME.golden (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./internal/clientconf -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
	}
}

func TestSnippetGolden(t *testing.T) {
	quoted := params(t, "lab")
	quoted.Binary = "/opt/mail tools/it's here/oauth2mail"
	quoted.ConfigPath = "/home/me/my config/$HOME`x`.toml"
	quoted.StateDir = "/home/me/state dir"
	cases := map[string]Params{
		"microsoft":     params(t, "work"),
		"google":        params(t, "gmail"),
		"generic":       params(t, "mail"),
		"ca_file":       params(t, "lab"),
		"app_only":      params(t, "robot"),
		"quoted_paths":  quoted,
		"explicit_conf": {Account: account(t, "work"), Binary: "oauth2mail", ConfigPath: "/home/me/mail/oauth2mail.toml", StateDir: "/home/me/.local/state/oauth2mail"},
	}
	for name, p := range cases {
		for _, client := range Clients {
			t.Run(name+"/"+client, func(t *testing.T) {
				text, warnings, err := Snippet(client, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				golden(t, name+"."+client, text)
			})
		}
	}
}

func TestSnippetNoServer(t *testing.T) {
	p := params(t, "sendonly")
	if _, _, err := Snippet("msmtp", p); err != nil {
		t.Errorf("msmtp needs only smtp_server, got %v", err)
	}
	for _, client := range []string{"mbsync", "neomutt", "mutt", "aerc", "fetchmail"} {
		_, _, err := Snippet(client, p)
		if !errors.Is(err, config.ErrNoServer) || !strings.Contains(err.Error(), `set imap_server = "host:port" for sendonly`) {
			t.Errorf("%s without imap_server: got %v, want ErrNoServer naming imap_server", client, err)
		}
	}
	p = params(t, "mail")
	p.Account.SMTPServer = ""
	for _, client := range []string{"msmtp", "neomutt", "mutt", "aerc"} {
		if _, _, err := Snippet(client, p); !errors.Is(err, config.ErrNoServer) || !strings.Contains(err.Error(), "smtp_server") {
			t.Errorf("%s without smtp_server: got %v", client, err)
		}
	}
}

func TestSnippetRefuses(t *testing.T) {
	p := params(t, "work")
	if _, _, err := Snippet("pine", p); err == nil {
		t.Error("an unknown client was accepted")
	}
	p.Binary = "/tmp/a\nb/oauth2mail"
	if _, _, err := Snippet("msmtp", p); !errors.Is(err, ErrUnquotable) {
		t.Errorf("a binary path with a newline: got %v", err)
	}
	p = params(t, "work")
	p.StateDir = `/home/it's "odd"`
	if _, _, err := Snippet("fetchmail", p); !errors.Is(err, ErrUnquotable) {
		t.Errorf("fetchmail with both quotes in a path: got %v", err)
	}
}

func TestSnippetLineLimit(t *testing.T) {
	p := params(t, "work")
	p.ConfigPath = "/" + strings.Repeat("d", 600) + "/config.toml"
	_, warnings, err := Snippet("msmtp", p)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "msmtp reads at most 500") {
		t.Errorf("a 600-character passwordeval: warnings %q, err %v", warnings, err)
	}
	if _, warnings, _ := Snippet("mbsync", p); len(warnings) != 0 {
		t.Errorf("mbsync reads 1022 characters, warned: %q", warnings)
	}
}

// The shell quoting is checked against the real /bin/sh: each word comes
// back as it went in.
func TestShellQuote(t *testing.T) {
	words := []string{"oauth2mail", "plain-word_1.2@x:y,z=%+", "", "with space", "it's", `"dq"`, `back\slash`, "$HOME", "`id`", "a;b|c&d", "*?[x]", "~user", "new\tline"}
	out, err := exec.Command("/bin/sh", "-c", `for w in `+shellJoin(words...)+`; do printf '%s\n' "[$w]"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range words {
		want.WriteString("[" + w + "]\n")
	}
	if string(out) != want.String() {
		t.Errorf("sh read back\n%s\nwant\n%s", out, want.String())
	}
	if got := shellQuote("oauth2mail"); got != "oauth2mail" {
		t.Errorf("a plain word was quoted: %s", got)
	}
}

func TestClientQuotes(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"msmtp keeps the text", msmtpQuote(`'a b'\''c "d"'`), `"'a b'\''c "d"'"`},
		{"msmtp plain file", msmtpArg("/etc/ca.pem"), "/etc/ca.pem"},
		{"msmtp file with a blank", msmtpArg("/my ca/ca.pem"), `"/my ca/ca.pem"`},
		{"mbsync escapes", mbsyncQuote(`'a'\''b "c"'`), `"'a'\\''b \"c\"'"`},
		{"mutt escapes", muttQuote("a\\b\"c`d`$e"), "\"a\\\\b\\\"c\\`d\\`\\$e\""},
		{"ini plain", iniValue("oauth2mail token work"), "oauth2mail token work"},
		{"ini comment chars", iniValue("x --config '/a#b;c'"), "`x --config '/a#b;c'`"},
		{"ini trailing backslash", iniValue(`a\`), "`a\\`"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
	for in, want := range map[string]string{`a\b`: `"a\\b"`, `say "hi"`: `'say "hi"'`, "it's": `"it's"`} {
		if got, err := fetchmailQuote(in); err != nil || got != want {
			t.Errorf("fetchmailQuote(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}
