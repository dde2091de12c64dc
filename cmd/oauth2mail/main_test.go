package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"oauth2mail":  func() { os.Exit(main1()) },
		"fakebrowser": func() { os.Exit(fakeBrowser()) },
	})
}

// The CLI contract: each testdata/*.txtar drives the real binary against a
// fresh fake Microsoft identity platform.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup:               setup,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"idp":      cmdIDP,
			"exits":    cmdExits,
			"parallel": cmdParallel,
			"sasl":     cmdSASL,
			"nosecret": cmdNoSecret,
			"nodump":   cmdNoDump,
			"printed":  cmdPrinted,
			"noleak":   cmdNoLeak,
			"secret":   cmdSecret,
			"snapshot": cmdSnapshot,
			"perm":     cmdPerm,
			"sleep":    cmdSleep,
			"waitfor":  cmdWaitFor,
			"same":     cmdSame,
			"nobody":   cmdNobody,
			"publicdir": func(ts *testscript.TestScript, neg bool, args []string) {
				// publicdir VAR: a new directory every user may enter, in VAR.
				dir, err := os.MkdirTemp("", "oauth2mail-public")
				ts.Check(err)
				ts.Defer(func() { os.RemoveAll(dir) })
				ts.Check(os.Chmod(dir, 0o755))
				ts.Setenv(args[0], dir)
			},
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			case "keyring":
				// Only a private keyring started by scripts/test, never the user's.
				return os.Getenv("OAUTH2MAIL_TEST_KEYRING") == "1" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

func setup(e *testscript.Env) error {
	idp := fakeidp.New(fakeidp.Options{ClientID: "11111111-2222-3333-4444-555555555555", DefaultUser: "me@contoso.com", StrictRotation: true})
	e.Defer(idp.Close)
	e.Values["idp"] = idp
	// The same fake over https, with a confidential app, for app-only
	// accounts (MSAL wants an https authority): scripts set
	// SSL_CERT_FILE=$WORK/idp-ca.pem to trust it.
	tlsURL, tlsCert := idp.StartTLS()
	app, err := testApp()
	if err != nil {
		return err
	}
	idp.AddApp(fakeidp.App{ClientID: testAppID, Secret: testAppSecret, Cert: app.cert})
	if err := os.WriteFile(filepath.Join(e.WorkDir, "idp-ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsCert.Raw}), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.WorkDir, "app.pem"), app.pem, 0o600); err != nil {
		return err
	}
	home := filepath.Join(e.WorkDir, "home")
	for k, v := range map[string]string{
		"IDP":                      idp.URL,
		"IDP_TLS":                  tlsURL,
		"SSL_CERT_FILE":            "",
		"HOME":                     home,
		"XDG_CONFIG_HOME":          filepath.Join(home, ".config"),
		"XDG_STATE_HOME":           filepath.Join(home, ".local", "state"),
		"XDG_RUNTIME_DIR":          filepath.Join(e.WorkDir, "run"),
		"STATE":                    filepath.Join(home, ".local", "state", "oauth2mail"),
		"OAUTH2MAIL_CONFIG":        "",
		"OAUTH2MAIL_AGENT":         "",
		"GORACE":                   "atexit_sleep_ms=0", // -race children must not sleep 1 s at exit
		"DISPLAY":                  "",
		"WAYLAND_DISPLAY":          "",
		"BROWSER":                  "",
		"FAKEBROWSER_MODE":         "",
		"FAKEBROWSER_LOG":          filepath.Join(e.WorkDir, "browser.log"),
		"DBUS_SESSION_BUS_ADDRESS": "",
	} {
		e.Setenv(k, v)
	}
	if os.Getenv("OAUTH2MAIL_TEST_KEYRING") == "1" {
		e.Setenv("KEYRING_BUS", os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
	}
	// Config files in scripts name the fake IdP as $IDP.
	return filepath.Walk(e.WorkDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".toml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		data = bytes.ReplaceAll(data, []byte("$IDP_TLS"), []byte(tlsURL))
		data = bytes.ReplaceAll(data, []byte("$WORK"), []byte(e.WorkDir))
		return os.WriteFile(p, bytes.ReplaceAll(data, []byte("$IDP"), []byte(idp.URL)), 0o600)
	})
}

// The confidential app of the fake IdP (app-only accounts in scripts).
const (
	testAppID     = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testAppSecret = "app-secret~Value.0123456789"
)

// testApp is the app's certificate, made once per test binary (an RSA key
// takes a while).
var testApp = sync.OnceValues(func() (testAppCert, error) {
	cert, pemData, err := fakeidp.NewAppCert()
	return testAppCert{cert, pemData}, err
})

type testAppCert struct {
	cert *x509.Certificate
	pem  []byte
}

func server(ts *testscript.TestScript) *fakeidp.Server { return ts.Value("idp").(*fakeidp.Server) }

// idp stats FIELD N | idp revoke AADSTS | idp fail N STATUS CTYPE BODY |
// idp device-script STEP... | idp lifetime DURATION | idp delay DURATION |
// idp deny ERROR DESC
func cmdIDP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: idp SUBCOMMAND ...")
	}
	s := server(ts)
	switch args[0] {
	case "stats":
		if len(args) != 3 {
			ts.Fatalf("usage: idp stats FIELD N")
		}
		st := reflect.ValueOf(s.Stats())
		f := st.FieldByName(args[1])
		if !f.IsValid() {
			ts.Fatalf("no stats field %q", args[1])
		}
		want, _ := strconv.Atoi(args[2])
		got := int(f.Int())
		if (got == want) == neg {
			ts.Fatalf("idp %s = %d, want %s%d", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
		}
	case "revoke":
		code, err := strconv.Atoi(args[1])
		ts.Check(err)
		s.Revoke(code)
	case "fail":
		n, _ := strconv.Atoi(args[1])
		status, _ := strconv.Atoi(args[2])
		s.FailNext(n, status, args[3], strings.Join(args[4:], " "))
	case "device-script":
		s.SetDeviceScript(args[1:]...)
	case "lifetime":
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		s.SetAccessTokenLifetime(d)
	case "delay":
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		s.SetTokenDelay(d)
	case "deny":
		s.DenyAuthorize(args[1], strings.Join(args[2:], " "))
	case "await": // idp await FIELD N TIMEOUT: wait until the stat reaches N
		want, _ := strconv.Atoi(args[2])
		limit, err := time.ParseDuration(args[3])
		ts.Check(err)
		start := time.Now()
		for got := 0; ; time.Sleep(100 * time.Millisecond) {
			got = int(reflect.ValueOf(s.Stats()).FieldByName(args[1]).Int())
			if got >= want {
				ts.Logf("idp %s reached %d after %s", args[1], got, time.Since(start).Round(time.Second))
				break
			}
			if time.Since(start) > limit {
				ts.Fatalf("idp %s = %d after %s, want %d", args[1], got, limit, want)
			}
		}
	default:
		ts.Fatalf("unknown idp subcommand %q", args[0])
	}
}

// exits CODE PROG ARGS...: run PROG and require exit status CODE; its
// stdout and stderr are then checked with the stdout/stderr commands.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// parallel N OUTFILE PROG ARGS...: run N copies at once; all must succeed
// and print the same stdout, which is written to OUTFILE.
func cmdParallel(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: parallel N OUTFILE PROG [ARGS...]")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	prog, err := exec.LookPath(args[2])
	if err != nil {
		// LookPath uses the test process's PATH, which RunMain set up too.
		ts.Fatalf("%v", err)
	}
	env := scriptEnv(ts)
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd, out, stderr := scriptCmd(ts, env, prog, args[3:]...)
			<-start
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, stderr.String())
			}
			outs[i] = out.String()
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			ts.Fatalf("process %d: %v", i, errs[i])
		}
		if outs[i] != outs[0] {
			ts.Fatalf("process %d printed a different output than process 0", i)
		}
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(outs[0]), 0o600))
}

var envKeys = []string{"PATH", "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "OAUTH2MAIL_CONFIG", "OAUTH2MAIL_AGENT", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "HTTPS_PROXY", "DBUS_SESSION_BUS_ADDRESS", "TMPDIR", "SYSTEMROOT", "GOCOVERDIR", "GORACE"}

// scriptCmd is prog run in the script's work directory with env, its
// output captured.
func scriptCmd(ts *testscript.TestScript, env []string, prog string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	cmd.Dir = ts.Getenv("WORK")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range envKeys {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// sasl xoauth2|oauthbearer FILE USER TOKENFILE [HOST PORT]: FILE holds one
// base64 SASL string carrying USER and the token in TOKENFILE.
func cmdSASL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 4 {
		ts.Fatalf("usage: sasl xoauth2|oauthbearer FILE USER TOKENFILE [HOST PORT]")
	}
	b64 := strings.TrimSpace(ts.ReadFile(args[1]))
	tok := strings.TrimSpace(ts.ReadFile(args[3]))
	var c sasl.Credentials
	var err error
	if args[0] == "xoauth2" {
		c, err = sasl.DecodeXOAUTH2(b64)
	} else {
		c, err = sasl.DecodeOAuthBearer(b64)
	}
	ts.Check(err)
	ok := c.User == args[2] && c.Token == tok
	if len(args) == 6 {
		port, _ := strconv.Atoi(args[5])
		ok = ok && c.Host == args[4] && c.Port == port
	}
	if ok == neg {
		ts.Fatalf("decoded %v; want user %q and the token of %s", c, args[2], args[3])
	}
}

// nosecret TOKENFILE PATH...: no file under PATH (or the last stdout and
// stderr, named "stdout"/"stderr") contains the token in TOKENFILE.
func cmdNoSecret(ts *testscript.TestScript, neg bool, args []string) {
	tok := strings.TrimSpace(ts.ReadFile(args[0]))
	if len(tok) < 16 {
		ts.Fatalf("token file %s holds no token", args[0])
	}
	for _, p := range args[1:] {
		if p == "stdout" || p == "stderr" {
			if strings.Contains(ts.ReadFile(p), tok) {
				ts.Fatalf("the token appears in %s", p)
			}
			continue
		}
		filepath.Walk(ts.MkAbs(p), func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(path)
			if bytes.Contains(data, []byte(tok)) {
				ts.Fatalf("the token appears in plaintext in %s", path)
			}
			return nil
		})
	}
}

// perm MODE FILE...: every FILE has exactly this permission (octal).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	for _, f := range args[1:] {
		fi, err := os.Stat(ts.MkAbs(f))
		ts.Check(err)
		if got := uint64(fi.Mode().Perm()); got != want {
			ts.Fatalf("%s: mode %o, want %o", f, got, want)
		}
	}
}

// fakeBrowser plays a person's browser for the browser flow: oauth2mail runs
// it as $BROWSER with the authorize URL. It follows the IdP's redirect back
// to oauth2mail's loopback listener (tampering with state when
// FAKEBROWSER_MODE=tamper-state) and logs what the listener answered. An
// https listener is trusted as a careful person does: only if its
// certificate has the SHA-256 fingerprint oauth2mail printed on the
// terminal, which the script saves in the file $FAKEBROWSER_TERMINAL.
func fakeBrowser() int {
	logf := func(format string, args ...any) {
		if p := os.Getenv("FAKEBROWSER_LOG"); p != "" {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintf(f, format+"\n", args...)
				f.Close()
			}
		}
	}
	if len(os.Args) != 2 {
		logf("fakebrowser: want one URL argument, got %q", os.Args[1:])
		return 2
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(os.Args[1])
	if err != nil {
		logf("authorize: %v", err)
		return 1
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		logf("authorize: status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
		return 1
	}
	if os.Getenv("FAKEBROWSER_MODE") == "tamper-state" {
		q := loc.Query()
		q.Set("state", "forged-"+q.Get("state"))
		loc.RawQuery = q.Encode()
	}
	logf("redirect to %s://%s%s", loc.Scheme, loc.Host, loc.Path)
	if loc.Scheme == "https" {
		pin, err := terminalFingerprint(os.Getenv("FAKEBROWSER_TERMINAL"))
		if err != nil {
			logf("tls: %v", err)
			return 1
		}
		client.Transport = pinnedTransport(pin, logf)
	}
	resp, err = client.Get(loc.String())
	if err != nil {
		logf("loopback: %v", err)
		return 1
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	var title string
	if i := bytes.Index(body, []byte("<h1>")); i >= 0 {
		title = string(body[i+4:])
		title, _, _ = strings.Cut(title, "</h1>")
	}
	logf("loopback: status %d, page %q", resp.StatusCode, title)
	return 0
}

// terminalFingerprint is the certificate fingerprint oauth2mail printed on
// the terminal (saved in the file terminal): 64 hex digits.
func terminalFingerprint(terminal string) (string, error) {
	if terminal == "" {
		return "", errors.New("an https redirect, and no FAKEBROWSER_TERMINAL to read oauth2mail's fingerprint from")
	}
	text, err := os.ReadFile(terminal)
	if err != nil {
		return "", err
	}
	_, rest, ok := bytes.Cut(text, []byte("SHA-256 fingerprint: "))
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	hex := strings.ReplaceAll(strings.TrimSpace(string(line)), ":", "")
	if !ok || len(hex) != 64 {
		return "", fmt.Errorf("no SHA-256 fingerprint on the terminal (%s)", terminal)
	}
	return strings.ToUpper(hex), nil
}

// pinnedTransport trusts one TLS certificate: the one whose SHA-256 is pin.
func pinnedTransport(pin string, logf func(string, ...any)) *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // no CA vouches for it: the pin is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got := fmt.Sprintf("%X", sum); got != pin {
				logf("tls: certificate fingerprint %s, but the terminal shows %s: not proceeding", got, pin)
				return errors.New("certificate fingerprint mismatch")
			}
			logf("tls: the certificate's fingerprint matches the terminal's")
			return nil
		},
	}}
}

// sleep DURATION
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// waitfor PATH: wait (at most 20s) until PATH exists, e.g. the agent's socket.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] waitfor PATH")
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(ts.MkAbs(args[0]))
		if (err == nil) != neg {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s: still %s after 20s", args[0], map[bool]string{true: "there", false: "missing"}[neg])
		}
	}
}

// same PROG ARGS...: PROG prints the same stdout and stderr and exits with
// the same code through the agent (the script's environment) and with
// OAUTH2MAIL_AGENT=off (the direct path).
func cmdSame(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: same PROG [ARGS...]")
	}
	prog, err := exec.LookPath(args[0])
	ts.Check(err)
	runOnce := func(extra ...string) (string, string, int) {
		cmd, out, errb := scriptCmd(ts, append(scriptEnv(ts), extra...), prog, args[1:]...)
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			ts.Fatalf("%v", err)
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}
	ao, ae, ac := runOnce()
	do, de, dc := runOnce("OAUTH2MAIL_AGENT=off")
	if ao != do || ae != de || ac != dc {
		ts.Fatalf("agent and direct path differ:\nagent:  exit %d, stdout %q, stderr %q\ndirect: exit %d, stdout %q, stderr %q", ac, ao, ae, dc, do, de)
	}
	ts.Logf("same: exit %d, %d bytes of stdout, %d of stderr", ac, len(ao), len(ae))
	ts.Check(os.WriteFile(ts.MkAbs("same.out"), []byte(ao), 0o600))
	ts.Check(os.WriteFile(ts.MkAbs("same.err"), []byte(ae), 0o600))
}

// nobody PROG ARGS...: run PROG (a program of this test binary) as uid and
// gid 65534, from a copy of the binary that user can execute; its stdout and
// stderr go to nobody.out and nobody.err. Needs root (condition [root]).
func cmdNobody(ts *testscript.TestScript, neg bool, args []string) {
	if os.Geteuid() != 0 {
		ts.Fatalf("nobody needs root: guard it with [root]")
	}
	self, err := os.Executable()
	ts.Check(err)
	dir, err := os.MkdirTemp("", "nobody")
	ts.Check(err)
	defer os.RemoveAll(dir)
	ts.Check(os.Chmod(dir, 0o755))
	data, err := os.ReadFile(self)
	ts.Check(err)
	bin := filepath.Join(dir, args[0])
	ts.Check(os.WriteFile(bin, data, 0o755))
	cmd := exec.Command(bin, args[1:]...)
	cmd.Env = append(scriptEnv(ts), "HOME=/nonexistent")
	cmd.Dir = "/"
	cmd.SysProcAttr = nobodyAttr()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	ts.Logf("nobody %s: %v", args[0], err)
	ts.Check(os.WriteFile(ts.MkAbs("nobody.out"), out.Bytes(), 0o600))
	ts.Check(os.WriteFile(ts.MkAbs("nobody.err"), errb.Bytes(), 0o600))
}
