package notify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var notice = Notice{
	Account: "work",
	Email:   "me@contoso.com",
	// Shell syntax in a value must reach the command as text, never run.
	Reason: `refresh: the refresh token was revoked (AADSTS70043) "quoted" $(touch pwned) ; x`,
	Since:  time.Date(2024, 3, 1, 12, 30, 0, 0, time.FixedZone("X", 3600)),
}

func needUnix(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("sh and process groups are Unix")
	}
}

// quote makes s one single-quoted shell word.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// noDisplay makes sure Send cannot take the notify-send path.
func noDisplay(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
}

// envMap parses NUL-separated NAME=VALUE records (env -0).
func envMap(t *testing.T, data []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for rec := range strings.SplitSeq(strings.TrimSuffix(string(data), "\x00"), "\x00") {
		k, v, ok := strings.Cut(rec, "=")
		if !ok {
			t.Fatalf("env record %q has no '='", rec)
		}
		m[k] = v
	}
	return m
}

func TestCommandEnvironment(t *testing.T) {
	needUnix(t)
	noDisplay(t)
	// A stale value in our own environment must be replaced, not kept.
	t.Setenv("OAUTH2MAIL_ACCOUNT", "stale")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	var log bytes.Buffer
	start := time.Now()
	Send(context.Background(), "env -0 > "+quote(out), notice, &log)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %s", d)
	}
	if log.Len() != 0 {
		t.Errorf("log = %q, want nothing for a command that succeeds", log.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(t, data)
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a $(...) in the reason was run by the shell")
	}

	want := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		want[k] = v
	}
	five := map[string]string{
		"OAUTH2MAIL_ACCOUNT": "work",
		"OAUTH2MAIL_EMAIL":   "me@contoso.com",
		"OAUTH2MAIL_REASON":  notice.Reason,
		"OAUTH2MAIL_SINCE":   "2024-03-01T11:30:00Z", // UTC, RFC 3339
		"OAUTH2MAIL_FIX":     "oauth2mail login work",
	}
	for k, v := range five {
		want[k] = v
	}
	// The shell itself may set PWD, to where it runs; nothing else.
	delete(want, "PWD")
	if pwd, ok := got["PWD"]; ok {
		wd, _ := os.Getwd()
		if real, _ := filepath.EvalSymlinks(wd); pwd != wd && pwd != real {
			t.Errorf("PWD = %q, want %q", pwd, wd)
		}
		want["PWD"] = pwd
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("the command did not get %s", k)
		case !wok:
			t.Errorf("the command got an unexpected %s=%q", k, g)
		case g != w:
			t.Errorf("the command got %s=%q, want %q", k, g, w)
		}
	}
}

// alive reports whether pid is a process that has not exited (a zombie
// has exited).
func alive(pid int) bool {
	if data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// pid (comm) S ...: the state follows the last ')'.
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			return s[i+2] != 'Z' && s[i+2] != 'X'
		}
		return true
	} else if runtime.GOOS == "linux" {
		return false
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the command did not start: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestHungCommandKilledWithItsChildren(t *testing.T) {
	needUnix(t)
	noDisplay(t)
	old := Timeout
	Timeout = 300 * time.Millisecond
	t.Cleanup(func() { Timeout = old })
	dir := t.TempDir()
	shPid, childPid := filepath.Join(dir, "sh.pid"), filepath.Join(dir, "child.pid")
	// The shell waits for a child that holds the output pipe too.
	cmd := "echo $$ > " + quote(shPid) + "; sleep 60 & echo $! > " + quote(childPid) + "; wait"
	var log bytes.Buffer
	start := time.Now()
	Send(context.Background(), cmd, notice, &log)
	elapsed := time.Since(start)
	// Killing the group ends the pipe at once; had only the shell died,
	// Send would wait for WaitDelay (1 s) more.
	if elapsed < Timeout || elapsed > Timeout+900*time.Millisecond {
		t.Errorf("Send returned after %s, want about %s", elapsed, Timeout)
	}
	for _, f := range []string{shPid, childPid} {
		pid := readPid(t, f)
		deadline := time.Now().Add(2 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("%s: pid %d still runs after Send returned", filepath.Base(f), pid)
		}
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("log = %q, want a failure line and the notice line", log.String())
	}
	if !strings.Contains(lines[0], "notify command for work failed") || !strings.Contains(lines[0], "killed after 300ms") {
		t.Errorf("failure line = %q", lines[0])
	}
	checkNoticeLine(t, lines[1])
}

func checkNoticeLine(t *testing.T, line string) {
	t.Helper()
	for _, want := range []string{"work", "me@contoso.com", notice.Reason, "run: oauth2mail login work", notice.Since.Local().Format("2006-01-02 15:04")} {
		if !strings.Contains(line, want) {
			t.Errorf("notice line %q does not contain %q", line, want)
		}
	}
}

func TestFailingCommandLogsFirstStderrLine(t *testing.T) {
	needUnix(t)
	noDisplay(t)
	var log bytes.Buffer
	Send(context.Background(), "echo 'no mail server here' >&2; echo 'second line' >&2; exit 3", notice, &log)
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("log = %q, want a failure line and the notice line", log.String())
	}
	if want := "oauth2mail: notify command for work failed (exit status 3): no mail server here"; lines[0] != want {
		t.Errorf("failure line = %q, want %q", lines[0], want)
	}
	if strings.Contains(log.String(), "second line") {
		t.Error("log holds more than the first line of the command's output")
	}
	checkNoticeLine(t, lines[1])
}

func TestNoCommandNoDisplayLogsOneLine(t *testing.T) {
	noDisplay(t)
	// notify-send, were it installed, must not be run without a display.
	dir := fakeNotifySend(t, 0)
	var log bytes.Buffer
	Send(context.Background(), "", notice, &log)
	if n := strings.Count(log.String(), "\n"); n != 1 || !strings.HasSuffix(log.String(), "\n") {
		t.Fatalf("log = %q, want exactly one line", log.String())
	}
	checkNoticeLine(t, log.String())
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("notify-send ran without a display")
	}
}

// fakeNotifySend puts a notify-send first in PATH that saves each of its
// arguments in dir/argN and exits with code.
func fakeNotifySend(t *testing.T, code int) string {
	t.Helper()
	needUnix(t)
	dir := t.TempDir()
	script := "#!/bin/sh\n: > " + quote(filepath.Join(dir, "ran")) + "\ni=0\nfor a; do i=$((i+1)); printf '%s' \"$a\" > " + quote(dir) + "/arg$i; done\n"
	if code != 0 {
		script += "echo 'cannot reach the notification daemon' >&2\nexit " + strconv.Itoa(code) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "notify-send"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func args(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for i := 1; ; i++ {
		data, err := os.ReadFile(filepath.Join(dir, "arg"+strconv.Itoa(i)))
		if errors.Is(err, os.ErrNotExist) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
}

func TestNotifySendOnDisplay(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("no notify-send here")
	}
	for _, display := range []string{"DISPLAY", "WAYLAND_DISPLAY"} {
		t.Run(display, func(t *testing.T) {
			noDisplay(t)
			t.Setenv(display, ":0")
			dir := fakeNotifySend(t, 0)
			var log bytes.Buffer
			Send(context.Background(), "", notice, &log)
			if log.Len() != 0 {
				t.Errorf("log = %q after notify-send succeeded", log.String())
			}
			got := args(t, dir)
			var title, body string
			var opts []string
			for _, a := range got {
				if strings.HasPrefix(a, "-") {
					opts = append(opts, a)
				} else if title == "" {
					title = a
				} else {
					body += a
				}
			}
			if !strings.Contains(title, "work") {
				t.Errorf("title %q does not name the account", title)
			}
			if !strings.Contains(body, "oauth2mail login work") || !strings.Contains(body, notice.Reason) {
				t.Errorf("body %q does not hold the reason and the fix", body)
			}
			if len(got) != 4 || !slices.Contains(opts, "--urgency=critical") {
				t.Errorf("notify-send arguments = %q", got)
			}
		})
	}
}

func TestNotifySendFailsOrMissing(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("no notify-send here")
	}
	t.Run("fails", func(t *testing.T) {
		noDisplay(t)
		t.Setenv("DISPLAY", ":0")
		fakeNotifySend(t, 1)
		var log bytes.Buffer
		Send(context.Background(), "", notice, &log)
		lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "failed (exit status 1): cannot reach the notification daemon") {
			t.Fatalf("log = %q", log.String())
		}
		checkNoticeLine(t, lines[1])
	})
	t.Run("missing", func(t *testing.T) {
		noDisplay(t)
		t.Setenv("DISPLAY", ":0")
		t.Setenv("PATH", t.TempDir())
		var log bytes.Buffer
		Send(context.Background(), "", notice, &log)
		if strings.Count(log.String(), "\n") != 1 {
			t.Fatalf("log = %q, want one line", log.String())
		}
		checkNoticeLine(t, log.String())
	})
}

func TestCommandWinsOverDisplay(t *testing.T) {
	needUnix(t)
	noDisplay(t)
	t.Setenv("DISPLAY", ":0")
	dir := fakeNotifySend(t, 0)
	mark := filepath.Join(t.TempDir(), "mark")
	var log bytes.Buffer
	Send(context.Background(), `printf '%s' "$OAUTH2MAIL_FIX" > `+quote(mark), notice, &log)
	if data, err := os.ReadFile(mark); err != nil || string(data) != "oauth2mail login work" {
		t.Errorf("command output = %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("notify-send ran although notify_command is set")
	}
	if log.Len() != 0 {
		t.Errorf("log = %q", log.String())
	}
}

func TestEnvAndFix(t *testing.T) {
	if got := notice.Fix(); got != "oauth2mail login work" {
		t.Errorf("Fix = %q", got)
	}
	env := notice.Env()
	if len(env) != 5 {
		t.Fatalf("Env = %q, want five variables", env)
	}
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OAUTH2MAIL_") {
			t.Errorf("Env has %q", kv)
		}
	}
}
