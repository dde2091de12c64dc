package main

// Commands of the secret-hygiene scripts (testdata/hygiene_*.txtar): they
// know every secret in play, the fake IdP's and the scripts' own, and look
// for each where none may be.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// hygiene is one script's state: the secrets it added and the files that
// were in $WORK before oauth2mail ran.
type hygiene struct {
	extra  []string
	before map[string][sha256.Size]byte // path → content hash
}

var hygieneStates sync.Map // $WORK → *hygiene

func hygieneOf(ts *testscript.TestScript) *hygiene {
	work := ts.Getenv("WORK")
	v, loaded := hygieneStates.LoadOrStore(work, &hygiene{})
	if !loaded {
		ts.Defer(func() { hygieneStates.Delete(work) })
	}
	return v.(*hygiene)
}

// snapshot: remember the files in $WORK now (the script's own, put there by
// the archive and setup: the app's private key, a secret to pipe in);
// noleak looks only at files written or changed since.
func cmdSnapshot(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: snapshot")
	}
	h := hygieneOf(ts)
	h.before = map[string][sha256.Size]byte{}
	filepath.Walk(ts.Getenv("WORK"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			ts.Check(err)
			h.before[p] = sha256.Sum256(data)
		}
		return nil
	})
}

// secret VALUE... | secret -f FILE...: more secrets to look for besides the
// fake IdP's and the app's private key (a wrong client secret, a value
// planted in an IdP's answer): the values, or the first line of each FILE.
func cmdSecret(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: secret VALUE... | secret -f FILE...")
	}
	vals := args
	if args[0] == "-f" {
		vals = nil
		for _, f := range args[1:] {
			line, _, _ := strings.Cut(ts.ReadFile(f), "\n")
			vals = append(vals, strings.TrimSpace(line))
		}
	}
	for _, v := range vals {
		if len(v) < 16 {
			ts.Fatalf("secret %q: shorter than 16 characters, too short to look for", v)
		}
	}
	h := hygieneOf(ts)
	h.extra = append(h.extra, vals...)
}

// A needle is what noleak looks for: a 16-character piece from the
// middle of a secret, as it is or in base64.
type needle struct {
	piece, secret, form string
}

// secretsOf is every secret of the script: each token and code the fake
// IdP issued, its app secrets, the app's private key (each line of its PEM
// body, and the base64 of its DER unwrapped) and the script's own.
func secretsOf(ts *testscript.TestScript) map[string]string {
	all := map[string]string{} // secret → what it is
	for _, s := range server(ts).Secrets() {
		all[s] = "issued by the fake IdP"
	}
	app, err := testApp()
	ts.Check(err)
	for rest := app.pem; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		all[base64.StdEncoding.EncodeToString(b.Bytes)] = "the app's private key (base64 DER)"
		body := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})
		for i, line := range strings.Split(string(body), "\n") {
			if len(line) == 64 {
				all[line] = fmt.Sprintf("line %d of the app's private key PEM", i)
			}
		}
	}
	all[testAppSecret] = "the app's client secret"
	for _, s := range hygieneOf(ts).extra {
		all[s] = "a secret of the script"
	}
	return all
}

// needlesOf cuts 16 characters from the middle of s, and from the middle
// of its base64 in each of the three alignments a prefix can give it, in
// both alphabets (an XOAUTH2 string, a dumped request body).
func needlesOf(s, what string) []needle {
	mid := func(v string) string { i := (len(v) - 16) / 2; return v[i : i+16] }
	ns := []needle{{mid(s), what, "as is"}}
	for k := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			b := enc.EncodeToString(append(make([]byte, k), s...))
			// Only groups of 3 bytes of s alone are the same whatever
			// comes before and after it.
			from, to := 0, 4*((k+len(s))/3)
			if k > 0 {
				from = 4
			}
			if to-from >= 16 {
				ns = append(ns, needle{mid(b[from:to]), what, "in base64"})
			}
		}
	}
	return ns
}

// noleak PLACE...: no secret of the script (see secretsOf), nor a
// 16-character piece of one, as is or in base64, is in any PLACE: "stdout"
// and "stderr" (of the last command), a file, or every file under a
// directory written or changed since snapshot. Allowed: the encrypted
// state (*.json.enc, and such a file moved aside as unreadable), and the
// copy of the access token the fetchmail snippet keeps for fetchmail's
// passwordfile (*.fetchmail-token, by design plaintext, so mode 0600).
func cmdNoLeak(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: noleak stdout|stderr|PATH...")
	}
	h := hygieneOf(ts)
	if h.before == nil {
		ts.Fatalf("noleak before snapshot: run snapshot first")
	}
	secrets := secretsOf(ts)
	var needles []needle
	for s, what := range secrets {
		needles = append(needles, needlesOf(s, what)...)
	}
	var leaks []string
	scan := func(place string, data []byte) {
		for _, n := range needles {
			if bytes.Contains(data, []byte(n.piece)) {
				whole := ""
				if bytes.Contains(data, []byte(n.secret)) {
					whole = ", the whole of it"
				}
				leaks = append(leaks, fmt.Sprintf("%s holds %s (%.6s..., %d characters) %s%s", place, n.what(), n.secret, len(n.secret), n.form, whole))
			}
		}
	}
	var files []string
	for _, p := range args {
		if p == "stdout" || p == "stderr" {
			scan(p, []byte(ts.ReadFile(p)))
			continue
		}
		filepath.Walk(ts.MkAbs(p), func(path string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			ts.Check(err)
			if sum, ok := h.before[path]; ok && sum == sha256.Sum256(data) {
				return nil
			}
			name := filepath.Base(path)
			switch {
			case strings.HasSuffix(name, ".json.enc") || strings.Contains(name, ".json.enc.unreadable-"):
				return nil // sealed; login moves an unreadable one aside
			case strings.HasSuffix(name, ".fetchmail-token"):
				// By design: fetchmail reads its token from a file.
				if fi.Mode().Perm() != 0o600 {
					leaks = append(leaks, fmt.Sprintf("%s: fetchmail's token file has mode %04o, want 0600", path, fi.Mode().Perm()))
				}
				return nil
			}
			rel, _ := filepath.Rel(ts.Getenv("WORK"), path)
			files = append(files, rel)
			scan(path, data)
			return nil
		})
	}
	if len(leaks) > 0 {
		ts.Fatalf("secrets leaked:\n%s", strings.Join(leaks, "\n"))
	}
	ts.Logf("noleak: %d secrets (%d needles) absent from %s", len(secrets), len(needles), strings.Join(args, " "))
	if len(files) > 0 {
		ts.Logf("noleak: files written since snapshot: %s", strings.Join(files, " "))
	}
}

func (n needle) what() string {
	switch {
	case strings.HasPrefix(n.secret, "EwB"):
		return "an access token"
	case strings.HasPrefix(n.secret, "M.C5_"):
		return "an authorization code"
	case strings.HasPrefix(n.secret, "M.C5"):
		return "a refresh token"
	case strings.HasPrefix(n.secret, "DAQABIQEAAAB"):
		return "a device code"
	}
	return "a secret"
}

// printed token | printed xoauth2 USER | printed oauthbearer USER [HOST
// PORT]: stdout of the last command is exactly one line, and that line is
// exactly what was asked for: a valid access token the fake IdP issued,
// or the SASL string for USER with one (nothing more in it).
func cmdPrinted(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: printed token | xoauth2 USER | oauthbearer USER [HOST PORT]")
	}
	out := ts.ReadFile("stdout")
	line, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.Contains(line, "\n") {
		ts.Fatalf("stdout is not one line: %d bytes, %d newlines", len(out), strings.Count(out, "\n"))
	}
	tok, want := line, line
	switch {
	case args[0] == "token" && len(args) == 1:
	case args[0] == "xoauth2" && len(args) == 2:
		c, err := sasl.DecodeXOAUTH2(line)
		ts.Check(err)
		tok, want = c.Token, sasl.XOAUTH2(args[1], c.Token)
	case args[0] == "oauthbearer" && (len(args) == 2 || len(args) == 4):
		c, err := sasl.DecodeOAuthBearer(line)
		ts.Check(err)
		host, port := "", 0
		if len(args) == 4 {
			host = args[2]
			port, err = strconv.Atoi(args[3])
			ts.Check(err)
		}
		tok, want = c.Token, sasl.OAuthBearer(args[1], host, port, c.Token)
	default:
		ts.Fatalf("usage: printed token | xoauth2 USER | oauthbearer USER [HOST PORT]")
	}
	if !server(ts).ValidAccessToken(tok) {
		ts.Fatalf("stdout: %s does not carry a valid access token of the fake IdP", args[0])
	}
	if line != want {
		ts.Fatalf("stdout: the %s line is not exactly the one for %s with that token", args[0], args[1])
	}
}

// nodump: an agent cannot dump core (RLIMIT_CORE 0) and is not dumpable
// (PR_SET_DUMPABLE 0: other processes of its user can read neither its
// memory nor its /proc files, which then belong to root). It starts an
// agent of its own for the check, as uid 65534 when we are root (a root
// agent's /proc files are root's either way), and stops it.
func cmdNoDump(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 || runtime.GOOS != "linux" {
		ts.Fatalf("usage: nodump (on Linux)")
	}
	// A copy of this test binary, named oauth2mail, in a directory the
	// agent's user may enter; its home is its own.
	dir, err := os.MkdirTemp("", "oauth2mail-nodump")
	ts.Check(err)
	defer os.RemoveAll(dir)
	ts.Check(os.Chmod(dir, 0o755))
	self, err := os.Executable()
	ts.Check(err)
	data, err := os.ReadFile(self)
	ts.Check(err)
	bin, home, conf := filepath.Join(dir, "oauth2mail"), filepath.Join(dir, "home"), filepath.Join(dir, "config.toml")
	ts.Check(os.WriteFile(bin, data, 0o755))
	ts.Check(os.WriteFile(conf, []byte("[accounts.work]\nprovider = \"microsoft\"\nemail = \"me@contoso.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nstore = \"file\"\n"), 0o644))
	ts.Check(os.Mkdir(home, 0o700))
	cmd := exec.Command(bin, "agent", "--config", conf, "--socket", filepath.Join(home, "run", "agent.sock"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + filepath.Join(home, "run"), "XDG_STATE_HOME=" + filepath.Join(home, "state")}
	cmd.Dir = home
	if os.Geteuid() == 0 {
		ts.Check(os.Chown(home, 65534, 65534))
		cmd.SysProcAttr = nobodyAttr()
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	ts.Check(cmd.Start())
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		ts.Logf("nodump: the agent's log:\n%s", log.String())
	}()
	// It hardens itself before it listens.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(home, "run", "agent.sock")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("nodump: the agent did not listen within 20s")
		}
	}
	pid := cmd.Process.Pid
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	ts.Check(err)
	var core []string
	for _, l := range strings.Split(string(limits), "\n") {
		if v, ok := strings.CutPrefix(l, "Max core file size"); ok {
			core = strings.Fields(v)
		}
	}
	if len(core) < 2 || core[0] != "0" || core[1] != "0" {
		ts.Fatalf("agent (pid %d): core file size limits %v, want 0 0", pid, core)
	}
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/environ", pid))
	ts.Check(err)
	// Stat_t.Uid, without naming a type that only unix has.
	owner := reflect.ValueOf(fi.Sys()).Elem().FieldByName("Uid").Uint()
	if owner != 0 {
		ts.Fatalf("agent (pid %d): its /proc files belong to uid %d, not root: it is dumpable", pid, owner)
	}
	ts.Logf("nodump: agent (pid %d): core file size 0; not dumpable (its /proc files are root's)", pid)
}
