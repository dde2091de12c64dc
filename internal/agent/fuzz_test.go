//go:build unix

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/helper"
)

// Real requests, as Call writes them (see proto_test.go), and broken ones.
var requestSeeds = []string{
	`{"v":1,"op":"ping"}` + "\n",
	`{"v":1,"op":"token","args":["work"],"config":"/home/me/.config/oauth2mail/config.toml","state_dir":"/home/me/.local/state/oauth2mail"}` + "\n",
	`{"v":1,"op":"xoauth2","args":["work","--user","shared@contoso.com","--verbose"],"config":"/c/config.toml","state_dir":"/s"}` + "\n",
	`{"v":1,"op":"oauthbearer","args":["gmail","--host","imap.gmail.com","--port","993"],"config":"/c/config.toml","state_dir":"/s"}` + "\n",
	`{"v":1,"op":"status","args":["--json"],"config":"/c/config.toml","state_dir":"/s"}` + "\n",
	`{"v":1,"op":"changed","account":"work"}` + "\n",
	`{"v":2,"op":"token","args":["work"]}` + "\n",
	`{"op":"ping"}` + "\n",
	`{"v":1,"op":"login","args":["work"]}` + "\n",
	`{"v":1}` + "\n",
	`{"v":1,"op":"ping"}`,
	"{\"v\":1,\n",
	"[1,2]\n",
	`{"v":1,"op":"ping"}` + "\n" + `{"v":1,"op":"token"}` + "\n",
	`{"v":1e3,"op":"\ud800","args":null,"config":1}` + "\n",
	"\n", "",
}

// Real responses of the agent and broken ones.
var responseSeeds = []string{
	`{"v":1,"exit":0,"pid":4242}` + "\n",
	`{"v":1,"exit":0,"stdout":"EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA\n"}` + "\n",
	`{"v":1,"exit":3,"stderr":"oauth2mail: error: work: not logged in\noauth2mail: hint: run: oauth2mail login work\n"}` + "\n",
	`{"v":1,"exit":0,"fallback":"the agent does not run \"login\""}` + "\n",
	`{"v":2,"exit":0,"stdout":"from the future"}` + "\n",
	`{"v":1,"exit":256,"stdout":"x\n"}` + "\n",
	`{"v":1,"exit":-1}` + "\n",
	`{"v":1,"exit":1e400}` + "\n",
	"HTTP/1.1 400 Bad Request\r\n\r\n",
	"", "\n",
}

// FuzzReadRequest reads arbitrary bytes from a client, whole and in the
// small pieces a slow client writes: the same outcome either way, never
// more than the limit read, a refusal one short line, and what it accepts
// is what a client would have written. The limit is checked with a small
// one too (limit), which the fuzzer's inputs can exceed.
func FuzzReadRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), uint8(7), uint16(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, limit uint16) {
		lim := int(limit) + 1
		line, _, _ := bytes.Cut(data, []byte("\n"))
		var small Request
		cr := &countingReader{r: chunkReader{bytes.NewReader(data), int(chunk) + 1}}
		serr := readMsg(cr, lim, &small)
		if cr.n > lim+1 {
			t.Fatalf("read %d bytes for a message of at most %d", cr.n, lim)
		}
		if serr == nil && len(line)+1 > lim {
			t.Fatalf("accepted a %d-byte line with a limit of %d", len(line)+1, lim)
		}

		var whole, pieces Request
		cr = &countingReader{r: bytes.NewReader(data)}
		err := readMsg(cr, maxRequest, &whole)
		if cr.n > maxRequest+1 {
			t.Fatalf("read %d bytes, limit %d", cr.n, maxRequest)
		}
		perr := readMsg(chunkReader{bytes.NewReader(data), int(chunk) + 1}, maxRequest, &pieces)
		if (err == nil) != (perr == nil) || err != nil && err.Error() != perr.Error() {
			t.Fatalf("whole: %v; in %d-byte pieces: %v", err, int(chunk)+1, perr)
		}
		if len(line) < len(data) && len(line)+1 <= lim && (err == nil) != (serr == nil) {
			t.Fatalf("a %d-byte line: %v with limit %d, %v with %d", len(line)+1, serr, lim, err, maxRequest)
		}
		if err != nil {
			checkProtoError(t, err)
			return
		}
		if a, b := mustJSON(t, whole), mustJSON(t, pieces); a != b {
			t.Fatalf("whole: %s; in pieces: %s", a, b)
		}
		if len(line)+1 > maxRequest {
			t.Fatalf("accepted a %d-byte line", len(line)+1)
		}
		// What a client writes of this request reads back the same.
		var buf bytes.Buffer
		if err := writeMsg(&buf, &whole); err != nil {
			t.Fatal(err)
		}
		if buf.Len() > maxRequest {
			return // longer once re-escaped; Call's requests are a command line
		}
		var again Request
		if err := readMsg(&buf, maxRequest, &again); err != nil || mustJSON(t, again) != mustJSON(t, whole) {
			t.Fatalf("%s written and read back: %s, %v", mustJSON(t, whole), mustJSON(t, again), err)
		}
	})
}

// FuzzServe sends arbitrary bytes to a served agent (its config has no
// accounts) over a socket pair and reads what it says: it answers one
// well-formed line of its protocol or hangs up, never panics, never
// hangs, and answers exactly when the bytes hold a request.
func FuzzServe(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	// More than the agent reads: it hangs up with bytes unread.
	f.Add([]byte("not json\n" + strings.Repeat("+", 5000)))
	f.Add([]byte(requestSeeds[0] + strings.Repeat("+", 5000)))
	ag := servedAgent(f)
	for _, s := range []string{"token", "xoauth2", "status"} {
		req, _ := json.Marshal(Request{V: Version, Op: s, Args: []string{"work"}, Config: ag.ConfigPath, StateDir: ag.StateDir})
		f.Add(append(req, '\n'))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := socketPair(t)
		defer client.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			ag.serve(context.Background(), server)
		}()
		client.SetDeadline(time.Now().Add(5 * time.Second))
		client.Write(data) // the agent may hang up before it has read everything
		client.CloseWrite()
		// A hang-up with bytes of the client's still unread is a reset.
		answer, err := io.ReadAll(io.LimitReader(client, maxResponse+1))
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the answer: %v", err)
		}
		var resp Response
		rerr := readMsg(bytes.NewReader(answer), maxResponse, &resp)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("serve did not return within 5 s of the client's end of input")
		}
		var req Request
		qerr := readMsg(bytes.NewReader(data), maxRequest, &req)
		switch {
		case qerr != nil && rerr == nil:
			t.Fatalf("the agent answered %+v to a request readMsg refuses (%v)", resp, qerr)
		case qerr == nil && rerr != nil:
			t.Fatalf("no answer to %s: %v", mustJSON(t, req), rerr)
		case rerr != nil:
			return
		}
		// One line, and the agent hangs up.
		if i := bytes.IndexByte(answer, '\n'); i != len(answer)-1 {
			t.Errorf("answer is not one line: %q", answer)
		}
		if resp.V != Version {
			t.Errorf("response of version %d", resp.V)
		}
		switch req.Op {
		case "token", "xoauth2", "oauthbearer", "status", "changed", "ping":
		default:
			req.V = -1 // not served
		}
		switch {
		case req.V != Version:
			if resp.Fallback == "" || resp.Stdout != "" || resp.Exit != 0 {
				t.Errorf("%s answered %+v, want a fallback", mustJSON(t, req), resp)
			}
		case req.Op == "ping" && resp.PID != os.Getpid():
			t.Errorf("ping answered %+v", resp)
		}
	})
}

// FuzzExchange answers a client's request with arbitrary bytes, as a
// process that took the socket's place could, in pieces of any size: the
// client gets an error (one short line) or a response of this protocol
// with an exit code it can exit with, never a panic.
func FuzzExchange(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), uint8(255))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var sent bytes.Buffer
		c := struct {
			io.Reader
			io.Writer
		}{chunkReader{bytes.NewReader(data), int(chunk) + 1}, &sent}
		resp, err := exchange(c, &Request{Op: "token", Args: []string{"work"}, Config: "/c/config.toml", StateDir: "/s"})
		if err != nil {
			checkProtoError(t, err)
			return
		}
		if resp.V != Version || resp.Exit < 0 || resp.Exit > maxExit {
			t.Fatalf("exchange accepted %+v", resp)
		}
	})
}

// Found while writing FuzzExchange's property: a Response with exit code
// 256 made the client exit 0, success, with whatever stdout it carried.
func TestExchangeRefusesExitCode(t *testing.T) {
	for _, exit := range []int{256, -1, 126} {
		var answer bytes.Buffer
		writeMsg(&answer, &Response{V: Version, Exit: exit, Stdout: "not a token\n"})
		c := struct {
			io.Reader
			io.Writer
		}{&answer, io.Discard}
		resp, err := exchange(c, &Request{Op: "token"})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("exit code %d", exit)) {
			t.Errorf("an answer with exit %d = %+v, %v", exit, resp, err)
		}
	}
}

func checkProtoError(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); !config.PlainText(msg) || len(msg) > 200 {
		t.Fatalf("error is not one short line: %q", msg)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// servedAgent is an agent set up on a config without accounts, whose
// handler looks the account up as the commands do.
func servedAgent(f *testing.F) *Agent {
	dir := f.TempDir()
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte("[agent]\nidle_after = \"1h\"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	ag := &Agent{ConfigPath: conf, StateDir: filepath.Join(dir, "state"), Log: io.Discard, Broker: helper.New(filepath.Join(dir, "state"), io.Discard, false), Configs: &config.Cache{}}
	ag.Handle = func(ctx context.Context, req *Request, b *helper.Broker) (*Response, string) {
		if len(req.Args) == 0 {
			return &Response{Exit: 2, Stderr: "oauth2mail: error: no account\n"}, ""
		}
		a, err := ag.Config().Account(req.Args[0])
		if err != nil {
			return &Response{Exit: 2, Stderr: "oauth2mail: error: " + err.Error() + "\n"}, ""
		}
		if _, err := b.Token(ctx, a); err != nil {
			return &Response{Exit: 3, Stderr: "oauth2mail: error: " + err.Error() + "\n"}, a.Name
		}
		return &Response{Stdout: "token\n"}, a.Name
	}
	if err := ag.Setup(); err != nil {
		f.Fatal(err)
	}
	return ag
}

// socketPair is a connected pair of unix stream sockets: the kernel gives
// it peer credentials, ours, as it does to a connection to the agent.
func socketPair(t *testing.T) (server, client *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		file := os.NewFile(uintptr(fd), "socketpair")
		defer file.Close()
		c, err := net.FileConn(file)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}
