package clientconf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// System is what the checks look at: the real one is OS; tests give a
// fake plugin directory or a client's version output.
type System struct {
	LookPath func(file string) (string, error)
	// Output runs a client with args (to ask its version) and returns
	// what it printed on stdout and stderr.
	Output func(name string, args ...string) (string, error)
	Getenv func(key string) string
	Glob   func(pattern string) ([]string, error)
}

// checkTimeout bounds each client asked for its version.
const checkTimeout = 5 * time.Second

// OS is the machine this runs on.
func OS(ctx context.Context) System {
	return System{
		LookPath: exec.LookPath,
		Output: func(name string, args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, name, args...)
			cmd.Stdin = nil
			out, err := cmd.CombinedOutput()
			return string(out), err
		},
		Getenv: os.Getenv,
		Glob:   filepath.Glob,
	}
}

// program and package of each client.
var (
	program = map[string]string{"msmtp": "msmtp", "mbsync": "mbsync", "neomutt": "neomutt", "mutt": "mutt", "aerc": "aerc", "fetchmail": "fetchmail"}
	debPkg  = map[string]string{"msmtp": "msmtp", "mbsync": "isync", "neomutt": "neomutt", "mutt": "mutt", "aerc": "aerc", "fetchmail": "fetchmail"}
)

// Check returns what stands between the client's snippet and a working
// login on this machine, one warning a line: the client missing, mbsync
// without a SASL XOAUTH2 plugin, an msmtp or Mutt too old for XOAUTH2, a
// fetchmail without OAuth, an OpenSSL build that cannot take ca_file.
func Check(client string, p Params, sys System) []string {
	var w []string
	prog := program[client]
	if client == "mbsync" {
		w = append(w, checkPlugin(sys)...)
	}
	if prog == "" {
		return w
	}
	if _, err := sys.LookPath(prog); err != nil {
		return append(w, fmt.Sprintf("%s is not installed here (Debian/Ubuntu: apt install %s)", prog, debPkg[client]))
	}
	switch client {
	case "msmtp":
		w = append(w, checkMsmtp(sys)...)
	case "mutt", "neomutt":
		w = append(w, checkMutt(client, p, sys)...)
	case "fetchmail":
		w = append(w, checkFetchmail(sys)...)
	}
	return w
}

// PluginDirs are where Cyrus SASL looks for plugins: $SASL_PATH alone
// when it is set (as libsasl2 does), else the usual places of Linux
// distributions, the BSDs, Homebrew and MacPorts.
func PluginDirs(getenv func(string) string) []string {
	if p := getenv("SASL_PATH"); p != "" {
		return filepath.SplitList(p)
	}
	return []string{"/usr/lib/*/sasl2", "/usr/lib/sasl2", "/usr/lib64/sasl2", "/usr/local/lib/sasl2",
		"/opt/homebrew/lib/sasl2", "/usr/local/opt/cyrus-sasl/lib/sasl2", "/opt/local/lib/sasl2", "/usr/pkg/lib/sasl2"}
}

// pluginFiles are the XOAUTH2 plugins that take the raw token as the
// password, as PassCmd gives it: KDE's (Debian's
// libsasl2-modules-kdexoauth2) and moriyoshi/cyrus-sasl-xoauth2 (Fedora's
// cyrus-sasl-xoauth2, and what one builds elsewhere).
var pluginFiles = []string{"libxoauth2.so*", "libkdexoauth2.so*", "libxoauth2*.dylib"}

// FindPlugin returns the first XOAUTH2 plugin in dirs, or "".
func FindPlugin(dirs []string, glob func(string) ([]string, error)) string {
	for _, d := range dirs {
		for _, f := range pluginFiles {
			if m, _ := glob(filepath.Join(d, f)); len(m) > 0 {
				return m[0]
			}
		}
	}
	return ""
}

func checkPlugin(sys System) []string {
	dirs := PluginDirs(sys.Getenv)
	if FindPlugin(dirs, sys.Glob) != "" {
		return nil
	}
	return []string{fmt.Sprintf("mbsync needs a Cyrus SASL XOAUTH2 plugin and there is none in %s: "+
		"Debian/Ubuntu: apt install libsasl2-modules-kdexoauth2; Fedora: dnf install cyrus-sasl-xoauth2; "+
		"Homebrew has none: build github.com/moriyoshi/cyrus-sasl-xoauth2 into its sasl2 directory (without a plugin mbsync offers no XOAUTH2)",
		strings.Join(dirs, ", "))}
}

// checkMsmtp reads the authentication methods `msmtp --version` lists.
func checkMsmtp(sys System) []string {
	out, err := sys.Output("msmtp", "--version")
	if err != nil {
		return []string{fmt.Sprintf("msmtp --version failed (%v); cannot tell whether it supports xoauth2", err)}
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, "Supported authentication methods:")
		if !ok {
			continue
		}
		if strings.TrimSpace(rest) == "" && i+1 < len(lines) {
			rest = lines[i+1]
		}
		for _, m := range strings.Fields(rest) {
			if m == "xoauth2" {
				return nil
			}
		}
		return []string{fmt.Sprintf("this msmtp (%s) does not list xoauth2 among its authentication methods (%s): install a newer one (Debian 12's 1.8.23 has it)",
			firstLine(out), strings.TrimSpace(rest))}
	}
	return []string{"msmtp --version lists no authentication methods; cannot tell whether it supports xoauth2"}
}

var muttVersion = regexp.MustCompile(`^Mutt (\d+)\.`)

// checkMutt: Mutt learnt XOAUTH2 in 2.0; ssl_ca_certificates_file exists
// only in GnuTLS builds.
func checkMutt(client string, p Params, sys System) []string {
	out, err := sys.Output(client, "-v")
	if err != nil {
		return nil // an old or odd build; the snippet's comments say what it needs
	}
	var w []string
	if m := muttVersion.FindStringSubmatch(firstLine(out)); client == "mutt" && m != nil {
		if major, _ := strconv.Atoi(m[1]); major < 2 {
			w = append(w, fmt.Sprintf("this %s has no XOAUTH2 (it came with Mutt 2.0): install Mutt 2 or NeoMutt", firstLine(out)))
		}
	}
	openssl := strings.Contains(out, "+USE_SSL_OPENSSL") || strings.Contains(out, "+openssl")
	if p.Account.CAFile != "" && openssl {
		w = append(w, fmt.Sprintf("this %s is built with OpenSSL, which has no ssl_ca_certificates_file: drop that line and start it as SSL_CERT_FILE=%s %s", client, shellQuote(p.Account.CAFile), client))
	}
	return w
}

// checkFetchmail: fetchmail 6 (Debian's) rejects auth oauthbearer.
func checkFetchmail(sys System) []string {
	out, err := sys.Output("fetchmail", "--auth", "oauthbearer", "--version")
	if err == nil && !strings.Contains(out, "Invalid authentication") {
		return nil
	}
	if !strings.Contains(out, "Invalid authentication") {
		return []string{fmt.Sprintf("fetchmail --auth oauthbearer --version failed (%v); cannot tell whether it supports OAuth", err)}
	}
	release := "fetchmail"
	version, _ := sys.Output("fetchmail", "--version")
	for _, l := range strings.Split(version, "\n") {
		if v, ok := strings.CutPrefix(l, "This is fetchmail release "); ok {
			release = "fetchmail " + strings.SplitN(v, "+", 2)[0]
		}
	}
	return []string{fmt.Sprintf("this %s has no OAuth mechanism (it rejects auth oauthbearer): the snippet needs fetchmail 7 or an OAUTHBEARER-patched build; here, fetch with mbsync instead", release)}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

// Binary returns how a snippet names this program, given its own path
// (os.Executable): "oauth2mail" when that name on $PATH is this same
// file, else the path itself; and warnings when that path is another
// program's or will not last (a `go run` build).
func Binary(exe string, lookPath func(string) (string, error)) (string, []string) {
	var w []string
	onPath, err := lookPath("oauth2mail")
	if err == nil && sameFile(onPath, exe) && !underHome(onPath) {
		return "oauth2mail", nil
	}
	if err == nil && sameFile(onPath, exe) {
		// ~/go/bin, ~/.local/bin: often on the PATH of an interactive
		// shell only, not of cron or a systemd service running the client.
		return exe, nil
	}
	if err == nil {
		w = append(w, fmt.Sprintf("oauth2mail on $PATH is %s, not this program: the snippet names this one by its full path, %s", onPath, exe))
	}
	if temporary(exe) {
		w = append(w, fmt.Sprintf("this oauth2mail runs from a temporary build (%s; go run?), which will be gone when the mail client needs it: install it (go install ./cmd/oauth2mail) and run this again", exe))
	}
	return exe, w
}

// underHome reports whether path is in the user's home directory.
func underHome(path string) bool {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return false
	}
	rel, err := filepath.Rel(home, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// temporary reports whether path is in a Go build directory: go run's
// $TMPDIR/go-build*/ or the build cache.
func temporary(path string) bool {
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if strings.HasPrefix(part, "go-build") {
			return true
		}
	}
	return false
}
