package clientconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystem has every client installed, with the given version outputs.
func fakeSystem(env map[string]string, outputs map[string]string) System {
	return System{
		LookPath: func(f string) (string, error) { return "/usr/bin/" + f, nil },
		Output: func(name string, args ...string) (string, error) {
			out, ok := outputs[name+" "+strings.Join(args, " ")]
			if !ok {
				return "", errors.New("exit status 1")
			}
			return out, nil
		},
		Getenv: func(k string) string { return env[k] },
		Glob:   filepath.Glob,
	}
}

func TestCheckPlugin(t *testing.T) {
	dir := t.TempDir()
	p := params(t, "work")
	sys := fakeSystem(map[string]string{"SASL_PATH": dir}, nil)
	w := Check("mbsync", p, sys)
	if len(w) != 1 || !strings.Contains(w[0], "there is none in "+dir+": Debian/Ubuntu: apt install libsasl2-modules-kdexoauth2; Fedora: dnf install cyrus-sasl-xoauth2") {
		t.Fatalf("no plugin in %s: warnings %q", dir, w)
	}
	for _, name := range []string{"libkdexoauth2.so.3", "libxoauth2.so"} {
		plugin := filepath.Join(dir, name)
		if err := os.WriteFile(plugin, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if w := Check("mbsync", p, sys); len(w) != 0 {
			t.Errorf("with %s: warnings %q", name, w)
		}
		if got := FindPlugin(PluginDirs(sys.Getenv), sys.Glob); got != plugin {
			t.Errorf("FindPlugin = %q, want %q", got, plugin)
		}
		os.Remove(plugin)
	}
	// $SASL_PATH replaces the built-in list, as in libsasl2; a list of two is searched in order.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "libkdexoauth2.so"), nil, 0o644)
	sys.Getenv = func(string) string { return dir + string(filepath.ListSeparator) + other }
	if w := Check("mbsync", p, sys); len(w) != 0 {
		t.Errorf("plugin in the second $SASL_PATH directory: warnings %q", w)
	}
	if d := PluginDirs(func(string) string { return "" }); len(d) < 5 || d[0] != "/usr/lib/*/sasl2" {
		t.Errorf("default plugin dirs: %q", d)
	}
}

func TestCheckMsmtp(t *testing.T) {
	p := params(t, "work")
	debian := "msmtp version 1.8.23\nPlatform: x86_64-pc-linux-gnu\nTLS/SSL library: GnuTLS\nAuthentication library: GNU SASL; oauthbearer and xoauth2: built-in\nSupported authentication methods:\nplain scram-sha-1 scram-sha-256 external gssapi cram-md5 digest-md5 login ntlm oauthbearer xoauth2 \n"
	if w := Check("msmtp", p, fakeSystem(nil, map[string]string{"msmtp --version": debian})); len(w) != 0 {
		t.Errorf("Debian 12's msmtp: warnings %q", w)
	}
	old := "msmtp version 1.6.6\nSupported authentication methods:\nplain cram-md5 login oauthbearer\n"
	w := Check("msmtp", p, fakeSystem(nil, map[string]string{"msmtp --version": old}))
	if len(w) != 1 || !strings.Contains(w[0], "this msmtp (msmtp version 1.6.6) does not list xoauth2") {
		t.Errorf("msmtp without xoauth2: warnings %q", w)
	}
	if w := Check("msmtp", p, fakeSystem(nil, nil)); len(w) != 1 || !strings.Contains(w[0], "cannot tell") {
		t.Errorf("msmtp --version failing: warnings %q", w)
	}
}

func TestCheckMutt(t *testing.T) {
	lab := params(t, "lab") // has ca_file
	gnutls := "Mutt 2.2.12 (2023-09-09)\n-USE_SSL_OPENSSL  +USE_SSL_GNUTLS  -USE_SASL  +USE_GSASL\n"
	if w := Check("mutt", lab, fakeSystem(nil, map[string]string{"mutt -v": gnutls})); len(w) != 0 {
		t.Errorf("Debian 12's mutt: warnings %q", w)
	}
	old := "Mutt 1.10.1 (2018-07-13)\n+USE_SSL_OPENSSL\n"
	w := Check("mutt", lab, fakeSystem(nil, map[string]string{"mutt -v": old}))
	if len(w) != 2 || !strings.Contains(w[0], "has no XOAUTH2 (it came with Mutt 2.0)") || !strings.Contains(w[1], "built with OpenSSL") {
		t.Errorf("Mutt 1.10 with OpenSSL: warnings %q", w)
	}
	neo := "NeoMutt 20240425\n  +nls +notmuch +openssl +pgp\n"
	w = Check("neomutt", lab, fakeSystem(nil, map[string]string{"neomutt -v": neo}))
	if len(w) != 1 || !strings.Contains(w[0], "SSL_CERT_FILE='/srv/lab ca/ca.pem' neomutt") {
		t.Errorf("NeoMutt with OpenSSL and ca_file: warnings %q", w)
	}
	if w := Check("neomutt", params(t, "work"), fakeSystem(nil, map[string]string{"neomutt -v": neo})); len(w) != 0 {
		t.Errorf("NeoMutt with OpenSSL, no ca_file: warnings %q", w)
	}
}

func TestCheckFetchmail(t *testing.T) {
	p := params(t, "work")
	debian := map[string]string{
		"fetchmail --auth oauthbearer --version": "fetchmail: WARNING: Running as root is discouraged.\nInvalid authentication `oauthbearer' specified.\nusage:  fetchmail [options] [server ...]\n",
		"fetchmail --version":                    "This is fetchmail release 6.4.37+GSS+NTLM+SDPS+SSL-SSLv2-SSLv3+NLS+KRB5.\n",
	}
	w := Check("fetchmail", p, fakeSystem(nil, debian))
	if len(w) != 1 || !strings.Contains(w[0], "this fetchmail 6.4.37 has no OAuth mechanism") {
		t.Errorf("fetchmail 6.4: warnings %q", w)
	}
	seven := map[string]string{"fetchmail --auth oauthbearer --version": "This is fetchmail release 7.0.0-alpha11+SSL\n"}
	if w := Check("fetchmail", p, fakeSystem(nil, seven)); len(w) != 0 {
		t.Errorf("fetchmail 7: warnings %q", w)
	}
}

func TestCheckNotInstalled(t *testing.T) {
	sys := fakeSystem(nil, nil)
	sys.LookPath = func(string) (string, error) { return "", errors.New("not found") }
	w := Check("mbsync", params(t, "work"), sys)
	if len(w) == 0 || !strings.Contains(w[len(w)-1], "mbsync is not installed here (Debian/Ubuntu: apt install isync)") {
		t.Errorf("mbsync missing: warnings %q", w)
	}
	if w := Check("aerc", params(t, "work"), sys); len(w) != 1 || !strings.Contains(w[0], "apt install aerc") {
		t.Errorf("aerc missing: warnings %q", w)
	}
}

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "oauth2mail")
	other := filepath.Join(dir, "other")
	link := filepath.Join(dir, "link")
	for _, f := range []string{exe, other} {
		if err := os.WriteFile(f, []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	found := func(p string) func(string) (string, error) {
		return func(string) (string, error) { return p, nil }
	}
	missing := func(string) (string, error) { return "", errors.New("not found") }
	// ~/go/bin is on an interactive shell's PATH, rarely on cron's: the
	// snippet names the full path.
	home := t.TempDir()
	t.Setenv("HOME", home)
	homeExe := filepath.Join(home, "go", "bin", "oauth2mail")
	os.MkdirAll(filepath.Dir(homeExe), 0o755)
	if err := os.WriteFile(homeExe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		exe      string
		lookPath func(string) (string, error)
		want     string
		warn     string
	}{
		{"this program on PATH", exe, found(exe), "oauth2mail", ""},
		{"a symlink to it on PATH", exe, found(link), "oauth2mail", ""},
		{"another oauth2mail on PATH", exe, found(other), exe, "oauth2mail on $PATH is " + other + ", not this program"},
		{"none on PATH", exe, missing, exe, ""},
		{"go run", "/tmp/go-build2093/b001/exe/oauth2mail", missing, "/tmp/go-build2093/b001/exe/oauth2mail", "temporary build"},
		{"on PATH in the home directory (~/go/bin)", homeExe, found(homeExe), homeExe, ""},
	} {
		got, w := Binary(tc.exe, tc.lookPath)
		if got != tc.want {
			t.Errorf("%s: Binary = %q, want %q", tc.name, got, tc.want)
		}
		if tc.warn == "" && len(w) != 0 || tc.warn != "" && (len(w) != 1 || !strings.Contains(w[0], tc.warn)) {
			t.Errorf("%s: warnings %q, want one with %q", tc.name, w, tc.warn)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	p := params(t, "work")
	if got := p.TokenCommand(); got != "oauth2mail token work" {
		t.Errorf("got %s", got)
	}
	p.Binary, p.ConfigPath = "/opt/o m/oauth2mail", "/home/me/oauth2mail.toml"
	if got, want := p.TokenCommand(), "'/opt/o m/oauth2mail' token work --config /home/me/oauth2mail.toml"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
