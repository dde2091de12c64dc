package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr strings.Builder
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-client-id", "cid", "-user", "zoe@contoso.com", "-at-lifetime", "90s", "-strict"}, outW, &stderr)
		outW.Close()
		done <- err
	}()

	sc := bufio.NewScanner(outR)
	if !sc.Scan() {
		t.Fatalf("no output; stderr: %s", stderr.String())
	}
	line := sc.Text()
	m := regexp.MustCompile(`^FAKEIDP_URL=(http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line: got %q, want FAKEIDP_URL=http://127.0.0.1:PORT", line)
	}
	base := m[1]

	resp, err := http.Get(base + "/_fake/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st["Refreshes"] != float64(0) {
		t.Errorf("stats: got %v", st)
	}
	resp, err = http.PostForm(base+"/common/oauth2/v2.0/devicecode", map[string][]string{"client_id": {"cid"}, "scope": {"offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	var da map[string]any
	json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	if da["verification_uri"] != base+"/devicelogin" {
		t.Errorf("verification_uri: got %v, want %s/devicelogin", da["verification_uri"], base)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if sc.Scan() {
		t.Errorf("extra stdout line %q: want exactly one line", sc.Text())
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"[::1]:0", true},
		{"127.0.0.53:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"[::]:0", false},
		{"192.0.2.1:0", false},
		{"example.com:0", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		if err := checkLoopback(tt.addr); (err == nil) != tt.ok {
			t.Errorf("checkLoopback(%q): got %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
	var stderr strings.Builder
	err := run(context.Background(), []string{"-addr", "0.0.0.0:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Errorf("run -addr 0.0.0.0:0: got %v, want a refusal", err)
	}
}
