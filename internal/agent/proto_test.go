package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/helper"
)

// sockPath is a socket path in a fresh directory, short enough for
// sun_path (108 bytes) whatever the test's name.
func sockPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "ag"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return filepath.Join(dir, "run", "agent.sock")
}

// running is an agent serving on a socket.
type running struct {
	*fixture
	sock string

	mu    sync.Mutex
	calls []Request // what reached Handle
	block chan struct{}
	stop  func() error // stops the agent and returns Run's error
}

// startAgent runs an agent for one account ("work", not logged in) whose
// Handle echoes the request; Args[0] "big" answers 1 MiB, "block" waits
// until r.block is closed or the agent stops.
func startAgent(t *testing.T) *running {
	t.Helper()
	r := &running{fixture: newFixture(t, agentConf, "work"), sock: sockPath(t), block: make(chan struct{})}
	r.setup()
	r.ag.Socket = r.sock
	r.ag.Handle = func(ctx context.Context, req *Request, b *helper.Broker) (*Response, string) {
		r.mu.Lock()
		r.calls = append(r.calls, *req)
		r.mu.Unlock()
		resp := &Response{Exit: 2, Stdout: "out " + req.Op + " " + strings.Join(req.Args, " ") + "\n", Stderr: "err\n"}
		if len(req.Args) > 0 {
			switch req.Args[0] {
			case "big":
				resp.Stdout = strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
			case "block":
				select {
				case <-r.block:
				case <-ctx.Done():
				}
			}
		}
		return resp, "work"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ag.Run(ctx) }()
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() { r.stop() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := Ping(context.Background(), r.sock); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not answer within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r
}

func (r *running) handled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// request is a command request the agent serves.
func (r *running) request(op string, args ...string) *Request {
	return &Request{Op: op, Args: args, Config: r.confPath, StateDir: r.stateDir}
}

func (r *running) call(t *testing.T, req *Request) *Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := Call(ctx, r.sock, req)
	if err != nil {
		t.Fatalf("Call %s: %v", req.Op, err)
	}
	if resp.V != Version {
		t.Errorf("response version %d", resp.V)
	}
	return resp
}

// raw sends line as is and returns the agent's answer, or the error that
// ended the read.
func (r *running) raw(t *testing.T, line []byte) (*Response, error) {
	t.Helper()
	c, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(line) // the agent may hang up before it has read everything
	var resp Response
	if err := readMsg(c, maxResponse, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func TestCallNoAgent(t *testing.T) {
	dir := t.TempDir()
	check := func(what, sock string) {
		t.Helper()
		if _, err := Call(context.Background(), sock, &Request{Op: "ping"}); !errors.Is(err, ErrNoAgent) {
			t.Errorf("Call with %s: %v, want ErrNoAgent", what, err)
		}
		if _, err := Ping(context.Background(), sock); !errors.Is(err, ErrNoAgent) {
			t.Errorf("Ping with %s: %v, want ErrNoAgent", what, err)
		}
	}
	check("no socket", filepath.Join(dir, "none", "agent.sock"))
	check("a stale socket", staleSocket(t, filepath.Join(dir, "stale.sock")))
	plain := filepath.Join(dir, "file")
	os.WriteFile(plain, []byte("x"), 0o600)
	check("a regular file", plain)
}

// staleSocket leaves a socket file nobody listens on, as an agent that
// crashed does.
func staleSocket(t *testing.T, path string) string {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket at %s: %v", path, err)
	}
	return path
}

func TestPing(t *testing.T) {
	r := startAgent(t)
	pid, err := Ping(context.Background(), r.sock)
	if err != nil || pid != os.Getpid() {
		t.Errorf("Ping = %d, %v; want %d", pid, err, os.Getpid())
	}
	if resp := r.call(t, &Request{Op: "ping"}); resp.PID != os.Getpid() || resp.Fallback != "" {
		t.Errorf("ping = %+v", resp)
	}
	if r.handled() != 0 {
		t.Error("ping reached the command handler")
	}
	if !strings.Contains(r.log.String(), "listening on "+r.sock) {
		t.Errorf("log = %q", r.log.String())
	}
}

func TestFallbacks(t *testing.T) {
	r := startAgent(t)
	tests := []struct {
		name string
		line string
		want string // in the Fallback
	}{
		{"newer client", `{"v":2,"op":"token","args":["work"]}`, "protocol 1, the client 2"},
		{"no version", `{"op":"ping"}`, "protocol 1, the client 0"},
		{"unknown op", `{"v":1,"op":"login","args":["work"]}`, `does not run "login"`},
		{"empty op", `{"v":1}`, `does not run ""`},
		{"other config", `{"v":1,"op":"token","args":["work"],"config":"/elsewhere/config.toml","state_dir":` + jsonString(r.stateDir) + `}`, "the agent serves " + r.confPath},
		{"other state", `{"v":1,"op":"token","args":["work"],"config":` + jsonString(r.confPath) + `,"state_dir":"/elsewhere"}`, "state in " + r.stateDir},
		{"no paths", `{"v":1,"op":"status"}`, "the agent serves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.raw(t, []byte(tt.line+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(resp.Fallback, tt.want) || resp.V != Version || resp.Stdout != "" || resp.PID != 0 {
				t.Errorf("response = %+v, want a Fallback with %q", resp, tt.want)
			}
		})
	}
	if n := r.handled(); n != 0 {
		t.Errorf("%d declined requests reached the command handler", n)
	}

	// The right paths are served, the handler's answer passed on as is.
	resp := r.call(t, r.request("token", "work", "--verbose"))
	if resp.Fallback != "" || resp.Exit != 2 || resp.Stdout != "out token work --verbose\n" || resp.Stderr != "err\n" {
		t.Errorf("response = %+v", resp)
	}
	if r.handled() != 1 || r.calls[0].Config != r.confPath || r.calls[0].V != Version {
		t.Errorf("handler calls = %+v", r.calls)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestChangedReloads(t *testing.T) {
	r := startAgent(t)
	r.writeConfig(agentConf, "work", "home")
	if resp := r.call(t, &Request{Op: "changed", Account: "home"}); resp.Fallback != "" || resp.Exit != 0 {
		t.Errorf("changed = %+v", resp)
	}
	if _, ok := r.ag.Config().Accounts["home"]; !ok {
		t.Error("changed did not reload the config")
	}
	if r.handled() != 0 {
		t.Error("changed reached the command handler")
	}
}

func TestOversizedRequest(t *testing.T) {
	r := startAgent(t)
	// The largest request: exactly maxRequest bytes with its newline.
	ping := `{"v":1,"op":"ping"}`
	exact := ping + strings.Repeat(" ", maxRequest-len(ping)-1) + "\n"
	if resp, err := r.raw(t, []byte(exact)); err != nil || resp.PID != os.Getpid() {
		t.Errorf("a request of exactly %d bytes: %+v, %v", maxRequest, resp, err)
	}
	for _, size := range []int{maxRequest + 1, maxRequest + 4096, 4 << 20} {
		line := ping + strings.Repeat(" ", size-len(ping)-1) + "\n"
		if resp, err := r.raw(t, []byte(line)); err == nil {
			t.Errorf("a request of %d bytes was answered: %+v", size, resp)
		}
		// The agent lives on and serves the next client.
		if pid, err := Ping(context.Background(), r.sock); err != nil || pid != os.Getpid() {
			t.Fatalf("after a request of %d bytes: Ping = %d, %v", size, pid, err)
		}
	}
	// One long line without a newline at all.
	if resp, err := r.raw(t, []byte(strings.Repeat("x", maxRequest*2))); err == nil {
		t.Errorf("an endless line was answered: %+v", resp)
	}
	if _, err := Ping(context.Background(), r.sock); err != nil {
		t.Fatal(err)
	}
	if r.handled() != 0 {
		t.Error("a rejected request reached the handler")
	}
}

func TestSilentClientDoesNotBlock(t *testing.T) {
	r := startAgent(t)
	var silent []net.Conn
	for range 3 {
		c, err := net.Dial("unix", r.sock)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
		defer c.Close()
	}
	// A client that sends half a line and stops.
	silent[2].Write([]byte(`{"v":1,"op":`))
	for i := range 5 {
		start := time.Now()
		resp := r.call(t, r.request("token", "work"))
		if d := time.Since(start); d > 2*time.Second || resp.Exit != 2 {
			t.Fatalf("call %d took %s with silent clients connected: %+v", i, d, resp)
		}
	}
	// A request the handler keeps waiting does not hold up others either.
	go Call(context.Background(), r.sock, r.request("token", "block"))
	deadline := time.Now().Add(5 * time.Second)
	for r.handled() < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if pid, err := Ping(context.Background(), r.sock); err != nil || pid != os.Getpid() {
		t.Errorf("Ping while a request is in the handler: %d, %v", pid, err)
	}
	close(r.block)
}

// Stopping the agent while a client is connected but silent.
func TestStopWithSilentClient(t *testing.T) {
	r := startAgent(t)
	c, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Ping(context.Background(), r.sock); err != nil { // the silent one has been accepted
		t.Fatal(err)
	}
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(time.Second):
		c.Close() // let it go
		<-stopped
		t.Fatalf("Run returned only %s after its context ended, once the silent client was closed: serve waits for the request until its 10 s deadline and Run waits for serve (agent.go: serve reads with no regard for ctx)", time.Since(start).Round(time.Millisecond))
	}
	if _, err := os.Lstat(r.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is left after Run: %v", err)
	}
	if !strings.Contains(r.log.String(), "stopped") {
		t.Errorf("log = %q", r.log.String())
	}
}

func TestRunRemovesSocketAndReleasesLock(t *testing.T) {
	r := startAgent(t)
	// A second agent on the same socket fails at once.
	second := &Agent{Socket: r.sock, ConfigPath: r.confPath, StateDir: r.stateDir, Log: io.Discard, Broker: r.ag.Broker}
	if err := second.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	if _, err := Ping(context.Background(), r.sock); err != nil {
		t.Errorf("the first agent stopped answering: %v", err)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := os.Lstat(r.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Run: %v", err)
	}
	ln, err := listen(r.sock)
	if err != nil {
		t.Fatalf("listen after the agent stopped: %v", err)
	}
	ln.Close()
}

func TestBigResponse(t *testing.T) {
	r := startAgent(t)
	resp := r.call(t, r.request("token", "big"))
	if len(resp.Stdout) != 1<<20 || resp.Stdout[:16] != "0123456789abcdef" {
		t.Errorf("stdout of %d bytes", len(resp.Stdout))
	}
}

// A request written a few bytes at a time.
func TestRequestInSmallWrites(t *testing.T) {
	r := startAgent(t)
	c, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := r.request("token", "work", strings.Repeat("a", 5000))
	req.V = Version
	data, _ := json.Marshal(req)
	data = append(data, '\n')
	for len(data) > 0 {
		n := min(len(data), 7)
		if _, err := c.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
		if len(data)%700 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	var resp Response
	if err := readMsg(c, maxResponse, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Exit != 2 || !strings.HasPrefix(resp.Stdout, "out token work aaaa") || len(resp.Stdout) != len("out token work \n")+5000 {
		t.Errorf("response = %.80q...", resp.Stdout)
	}
}

func TestCallCancelled(t *testing.T) {
	r := startAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Call(ctx, r.sock, r.request("token", "block"))
	if err == nil || errors.Is(err, ErrNoAgent) {
		t.Errorf("Call cancelled while the agent works = %v, want an error other than ErrNoAgent", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a cancelled Call returned after %s", d)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := Call(ctx, r.sock, r.request("token", "block")); err == nil {
		t.Error("Call past its deadline succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Call with a 100 ms deadline returned after %s", d)
	}
	close(r.block)
}

// Call's context needs no deadline: an agent that takes a moment (a
// refresh) is waited for.
func TestCallWithoutDeadline(t *testing.T) {
	r := startAgent(t)
	time.AfterFunc(50*time.Millisecond, func() { close(r.block) })
	resp, err := Call(context.Background(), r.sock, r.request("token", "block"))
	if err != nil {
		t.Fatalf("Call(context.Background()) to an agent that answers after 50 ms: %v (dial_unix.go: without a deadline the read timeout becomes max(0, 1ms) = 1 ms instead of none)", err)
	}
	if resp.Exit != 2 {
		t.Errorf("response = %+v", resp)
	}
}

func TestCallRefusesOtherProtocol(t *testing.T) {
	sock := sockPath(t)
	os.MkdirAll(filepath.Dir(sock), 0o700)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte(`{"v":2,"exit":0,"stdout":"from the future"}` + "\n"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := Call(ctx, sock, &Request{Op: "ping"})
	if err == nil || errors.Is(err, ErrNoAgent) || !strings.Contains(err.Error(), "protocol 2") {
		t.Errorf("Call to an agent of protocol 2 = %+v, %v", resp, err)
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestReadMsg(t *testing.T) {
	want := Request{V: 1, Op: "token", Args: []string{strings.Repeat("x", 10000)}, Config: "/c"}
	line, _ := json.Marshal(want)
	line = append(line, '\n')

	check := func(name string, r io.Reader) {
		t.Helper()
		var got Request
		if err := readMsg(r, maxRequest, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Op != want.Op || got.Args[0] != want.Args[0] || got.Config != want.Config {
			t.Errorf("%s: read %d-byte arg, op %q", name, len(got.Args[0]), got.Op)
		}
	}
	check("one read", strings.NewReader(string(line)))
	check("one byte per read", iotest.OneByteReader(strings.NewReader(string(line))))
	check("13 bytes per read", chunkReader{strings.NewReader(string(line)), 13})
	check("reads with no data", iotest.DataErrReader(chunkReader{strings.NewReader(string(line)), 4095}))

	// Many small writes on a pipe, as from a slow client.
	pr, pw := net.Pipe()
	go func() {
		for rest := line; len(rest) > 0; {
			n := min(len(rest), 9)
			pw.Write(rest[:n])
			rest = rest[n:]
		}
		// and more after the line, which readMsg must not wait for
	}()
	done := make(chan struct{})
	go func() { defer close(done); check("pipe in 9-byte writes", pr) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("readMsg hung on a message in small writes")
	}
	pr.Close()
	pw.Close()

	errCases := []struct {
		name, in, want string
	}{
		{"unterminated", `{"v":1,"op":"ping"}`, "closed before a whole message"},
		{"empty", "", "closed before a whole message"},
		{"malformed", "{\"v\":1,\n", "malformed message"},
		{"not an object", "[1,2]\n", "malformed message"},
		{"too long", strings.Repeat("x", maxRequest) + "\n", "longer than 65536 bytes"},
		{"too long unterminated", strings.Repeat("x", maxRequest+10), "longer than 65536 bytes"},
	}
	for _, c := range errCases {
		var got Request
		err := readMsg(chunkReader{strings.NewReader(c.in), 100}, maxRequest, &got)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	// The limit counts the newline: a line of exactly limit bytes is fine.
	var v map[string]any
	if err := readMsg(strings.NewReader(`{"a":1}`+"\n"), 8, &v); err != nil {
		t.Errorf("a message of exactly the limit: %v", err)
	}
	if err := readMsg(strings.NewReader(`{"a":12}`+"\n"), 8, &v); err == nil {
		t.Error("a message one byte over the limit was read")
	}
	// A message over the limit is refused without reading all of it.
	cr := &countingReader{r: iotest.OneByteReader(strings.NewReader(strings.Repeat("x", 10*maxRequest)))}
	readMsg(cr, maxRequest, &v)
	if cr.n > maxRequest+1 {
		t.Errorf("read %d bytes of an oversized message, want at most %d", cr.n, maxRequest+1)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Run's scheduler acts on what is due at start, and again when poked.
func TestRunSchedules(t *testing.T) {
	f := newFixture(t, agentConf, "work")
	first := f.login("work", time.Hour)
	f.set(first.Expiry.Add(-7 * time.Minute)) // inside the lead: due
	r := &running{fixture: f, sock: sockPath(t), block: make(chan struct{})}
	r.setup()
	r.ag.Socket = r.sock
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ag.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen within 5 s; log:\n%s", what, f.log.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the refresh at start", func() bool { _, ok := f.refreshes(); return ok == 1 })
	waitFor("the new state", func() bool { return !f.state("work").LastRefresh.IsZero() })
	// The scheduler now sleeps until the next due time, 52 minutes away;
	// a "changed" request wakes it, and it finds the account due.
	st := f.state("work")
	f.set(st.Expiry.Add(-7 * time.Minute))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := Call(ctx2, r.sock, &Request{Op: "changed", Account: "work"}); err != nil {
		t.Fatal(err)
	}
	waitFor("the refresh after the poke", func() bool { _, ok := f.refreshes(); return ok == 2 })
}
