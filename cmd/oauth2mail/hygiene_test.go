package main

// Commands of the secret-hygiene scripts (testdata/hygiene_*.txtar): they
// know every secret in play, the fake IdP's and the scripts' own, and look
// for each where none may be.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
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
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// hygiene is one script's state: the files that were in $WORK before
// oauth2mail ran, the secrets the script added, and the index of every
// secret seen so far.
type hygiene struct {
	before map[string][sha256.Size]byte // path → content hash
	extra  []string
	index  map[string]piece // a window of a secret, as is or in base64 → whose
	known  map[string]bool
}

// piece is what noleak found: a piece of a secret, and in what form.
type piece struct{ secret, what, form string }

// A secret is indexed by its windows of 16 characters at every 8th offset
// (and its middle and last ones), so any 23 consecutive characters of it
// hold one: a secret cut short, wrapped or quoted in part is found too.
const (
	window = 16
	stride = 8
)

var hygieneStates sync.Map // $WORK → *hygiene

func hygieneOf(ts *testscript.TestScript) *hygiene {
	work := ts.Getenv("WORK")
	v, loaded := hygieneStates.LoadOrStore(work, &hygiene{index: map[string]piece{}, known: map[string]bool{}})
	if !loaded {
		ts.Defer(func() { hygieneStates.Delete(work) })
	}
	return v.(*hygiene)
}

// learn indexes secret s: its windows as it is, and those of its base64
// in each of the three alignments a prefix can give it, in both alphabets
// (an XOAUTH2 string, the dump of a request body).
func (h *hygiene) learn(s, what string) {
	if h.known[s] {
		return
	}
	h.known[s] = true
	add := func(v, form string) {
		for i := 0; i+window <= len(v); i += stride {
			h.index[v[i:i+window]] = piece{s, what, form}
		}
		mid := (len(v) - window) / 2
		h.index[v[mid:mid+window]] = piece{s, what, form}
		h.index[v[len(v)-window:]] = piece{s, what, form}
	}
	add(s, "as is")
	for k := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			b := enc.EncodeToString(append(make([]byte, k), s...))
			// Only the groups of 3 bytes of s alone are the same whatever
			// comes before and after it.
			from, to := 0, 4*((k+len(s))/3)
			if k > 0 {
				from = 4
			}
			if to-from >= window {
				add(b[from:to], "in base64")
			}
		}
	}
}

// find returns the secrets data holds a window of, once per secret and form.
func (h *hygiene) find(data []byte) []piece {
	var found []piece
	seen := map[piece]bool{}
	for i := 0; i+window <= len(data); i++ {
		if p, ok := h.index[string(data[i:i+window])]; ok && !seen[p] {
			seen[p] = true
			found = append(found, p)
		}
	}
	return found
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
		if len(v) < window+stride-1 {
			ts.Fatalf("secret %q: shorter than %d characters, too short to look for", v, window+stride-1)
		}
	}
	h := hygieneOf(ts)
	h.extra = append(h.extra, vals...)
}

// secretsOf is every secret of the script: each token and code the fake
// IdP issued, its app secrets, the app's private key (each line of its PEM
// body and the base64 of its DER unwrapped, past the public modulus) and
// the script's own.
func secretsOf(ts *testscript.TestScript) map[string]string {
	all := map[string]string{} // secret → what it is
	for _, s := range server(ts).Secrets() {
		all[s] = issued(s)
	}
	// The private part of the app's key: from its private exponent on (the
	// modulus before it is in the certificate, which is no secret).
	app, err := testApp()
	ts.Check(err)
	b, _ := pem.Decode(app.pem[bytes.Index(app.pem, []byte("-----BEGIN PRIVATE KEY")):])
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	ts.Check(err)
	from := bytes.Index(b.Bytes, key.(*rsa.PrivateKey).D.Bytes())
	all[base64.StdEncoding.EncodeToString(b.Bytes[from:])] = "the app's private key (base64 of its DER)"
	for i, line := range strings.Split(string(pem.EncodeToMemory(b)), "\n") {
		if len(line) == 64 && (i-1)*48 >= from { // line i holds bytes from (i-1)*48
			all[line] = fmt.Sprintf("line %d of the app's private key PEM", i)
		}
	}
	all[testAppSecret] = "the app's client secret"
	for _, s := range hygieneOf(ts).extra {
		all[s] = "a secret of the script"
	}
	return all
}

// issued names what the fake IdP issued by its shape.
func issued(s string) string {
	switch {
	case strings.HasPrefix(s, "EwB"):
		return "an access token"
	case strings.HasPrefix(s, "M.C5_"):
		return "an authorization code"
	case strings.HasPrefix(s, "M.C5"):
		return "a refresh token"
	case strings.HasPrefix(s, "DAQABIQEAAAB"):
		return "a device code"
	}
	return "an app's client secret"
}

// noleak PLACE...: no secret of the script (see secretsOf), nor any 23
// consecutive characters of one, nor its middle 16, as is or in base64,
// is in any PLACE:
// "stdout" and "stderr" (of the last command), a file, or every file under
// a directory written or changed since snapshot. Allowed: the encrypted
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
	for s, what := range secrets {
		h.learn(s, what)
	}
	var leaks []string
	scan := func(place string, data []byte) {
		for _, p := range h.find(data) {
			whole := ""
			if p.form == "as is" && bytes.Contains(data, []byte(p.secret)) {
				whole = ", the whole of it"
			}
			leaks = append(leaks, fmt.Sprintf("%s holds %s (%.6s..., %d characters) %s%s", place, p.what, p.secret, len(p.secret), p.form, whole))
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
	ts.Logf("noleak: %d secrets (%d windows) absent from %s", len(secrets), len(h.index), strings.Join(args, " "))
	if len(files) > 0 {
		ts.Logf("noleak: files written since snapshot: %s", strings.Join(files, " "))
	}
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

// noleak finds a token however it is dumped: whole, cut short, wrapped,
// quoted in part, inside a SASL string or the base64 of a request; and
// nothing in text that holds fewer than 16 characters of it.
func TestLeakIndex(t *testing.T) {
	random := make([]byte, 1125)
	rand.Read(random)
	tok := "EwB" + base64.RawURLEncoding.EncodeToString(random)
	h := &hygiene{index: map[string]piece{}, known: map[string]bool{}}
	h.learn(tok, "an access token")
	var wrapped strings.Builder
	for i := 0; i < len(tok); i += 76 {
		wrapped.WriteString(tok[i:min(i+76, len(tok))] + "\n")
	}
	for name, text := range map[string]string{
		"whole":       "token: " + tok,
		"first 23":    fmt.Sprintf("token %.23s...", tok),
		"last 23":     "..." + tok[len(tok)-23:],
		"23 inside":   tok[701:724],
		"middle 16":   tok[(len(tok)-16)/2 : (len(tok)+16)/2],
		"wrapped":     wrapped.String(),
		"xoauth2":     sasl.XOAUTH2("me@contoso.com", tok),
		"oauthbearer": sasl.OAuthBearer("me@contoso.com", "outlook.office365.com", 993, tok),
		"url base64":  base64.URLEncoding.EncodeToString([]byte("access_token=" + tok)),
		"quoted":      fmt.Sprintf("%q", tok[100:200]),
		"in json":     `{"access_token":"` + tok + `"}`,
	} {
		if len(h.find([]byte(text))) == 0 {
			t.Errorf("%s: not found", name)
		}
	}
	for _, text := range []string{"cached access token (1503 bytes)", tok[200:215], "EwB"} {
		if found := h.find([]byte(text)); len(found) > 0 {
			t.Errorf("%q: found %v, but holds fewer than 16 characters of the token", text, found)
		}
	}
}
