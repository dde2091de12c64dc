package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Version is the protocol spoken on the socket. A request of another
// version gets a Fallback answer, so a client and an agent of different
// releases never misunderstand each other: the client takes the direct path.
const Version = 1

// The protocol: a client connects, writes one JSON Request on one line,
// reads one JSON Response on one line, and closes. Requests carry a
// command's own arguments, never a secret; the response carries exactly
// what the command would have printed had it run without the agent.
type Request struct {
	V        int      `json:"v"`
	Op       string   `json:"op"`                  // a command (token, xoauth2, oauthbearer, status), "ping" or "changed"
	Args     []string `json:"args,omitempty"`      // the command's arguments as typed, after the command name
	Config   string   `json:"config,omitempty"`    // absolute path of the config the client reads
	StateDir string   `json:"state_dir,omitempty"` // the client's state directory
	Account  string   `json:"account,omitempty"`   // for "changed"
}

// Response is the command's outcome.
type Response struct {
	V        int    `json:"v"`
	Exit     int    `json:"exit"`
	Stdout   string `json:"stdout,omitempty"`
	Stderr   string `json:"stderr,omitempty"`
	Fallback string `json:"fallback,omitempty"` // the agent will not serve this; the client runs it itself, for this reason
	PID      int    `json:"pid,omitempty"`      // the agent's (ping)
}

// Limits of one message: a request is a command line; a response holds a
// token or a status table.
const (
	maxRequest  = 64 << 10
	maxResponse = 4 << 20
	// maxExit is the highest exit code a shell reports as is.
	maxExit = 125
)

// ErrNoAgent: nothing answers on the socket; the caller takes the direct path.
var ErrNoAgent = errors.New("no agent")

// DialTimeout bounds connecting: a live agent accepts at once.
var DialTimeout = time.Second

// Call sends req to the agent at socket and returns its response. ErrNoAgent
// means no agent listens there (no socket, or a stale one).
func Call(ctx context.Context, socket string, req *Request) (*Response, error) {
	c, err := dial(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoAgent, err)
	}
	defer c.Close()
	resp, err := exchange(c, req)
	if err != nil {
		return nil, fmt.Errorf("agent at %s: %v", socket, err)
	}
	return resp, nil
}

// exchange writes req on c and reads the answer, which must be of this
// protocol: whatever listens on the socket, the client acts on it.
func exchange(c io.ReadWriter, req *Request) (*Response, error) {
	req.V = Version
	if err := writeMsg(c, req); err != nil {
		return nil, err
	}
	var resp Response
	if err := readMsg(c, maxResponse, &resp); err != nil {
		return nil, err
	}
	if resp.V != Version {
		return nil, fmt.Errorf("it speaks protocol %d, not %d (restart it)", resp.V, Version)
	}
	// The client exits with this code: 256 would read as 0, success.
	if resp.Exit < 0 || resp.Exit > maxExit {
		return nil, fmt.Errorf("it answered exit code %d, which no command has", resp.Exit)
	}
	return &resp, nil
}

func writeMsg(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// readMsg reads one line of at most limit bytes and decodes it into v.
func readMsg(r io.Reader, limit int, v any) error {
	br := bufio.NewReaderSize(io.LimitReader(r, int64(limit)+1), 4096)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err != nil {
				return readErr(line, limit, err)
			}
			break
		}
	}
	if len(line) > limit {
		return fmt.Errorf("message longer than %d bytes", limit)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("malformed message: %v", err)
	}
	return nil
}

func readErr(line []byte, limit int, err error) error {
	if len(line) > limit {
		return fmt.Errorf("message longer than %d bytes", limit)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("connection closed before a whole message")
	}
	return err
}
