package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/oauth2mail/oauth2mail/internal/agent"
	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/flows"
	"github.com/oauth2mail/oauth2mail/internal/helper"
	"github.com/oauth2mail/oauth2mail/internal/notify"
)

func agentFlags(fs *pflag.FlagSet, e *env) {
	fs.StringVar(&e.socket, "socket", "", "socket `PATH` (default $XDG_RUNTIME_DIR/oauth2mail/agent.sock)")
}

// runAgent runs the agent in the foreground until SIGTERM or SIGINT.
func runAgent(e *env, fs *pflag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("agent: unexpected argument %q", fs.Arg(0))
	}
	conf, err := filepath.Abs(e.path())
	if err != nil {
		return err
	}
	sock := e.socket
	if sock == "" {
		sock = agent.DefaultSocket()
	}
	if sock, err = filepath.Abs(sock); err != nil {
		return err
	}
	if pid, err := agent.Ping(e.ctx, sock); err == nil {
		return runningError(sock, pid)
	}
	b := helper.New(cache.DefaultDir(), e.stderr, e.verbose)
	ag := &agent.Agent{Socket: sock, ConfigPath: conf, StateDir: b.StateDir, Log: e.stderr, Verbose: e.verbose, Broker: b, Handle: serveCommand, Configs: &agentConfigs}
	if err := ag.Setup(); err != nil {
		return err
	}
	b.Notice, b.NoticeEvery = noticeFunc(e.ctx, ag.Config, e.stderr), time.Duration(ag.Config().Agent.NotifyEvery)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			ag.Reload()
		}
	}()
	err = ag.Run(e.ctx)
	switch {
	case errors.Is(err, agent.ErrRunning):
		pid, _ := agent.Ping(context.Background(), sock)
		return runningError(sock, pid)
	case errors.Is(err, agent.ErrUnsupported):
		return usagef("agent: %v", err)
	}
	return err
}

var agentConfigs config.Cache

func runningError(sock string, pid int) error {
	return usagef("agent: another agent is already running on %s (pid %d); stop it first (systemctl --user stop oauth2mail-agent, or kill %d), or give this one another --socket", sock, pid, pid)
}

// serveCommand runs a client's command inside the agent, with the agent's
// broker, exactly as the client would have run it: same code, same output,
// same exit code.
func serveCommand(ctx context.Context, req *agent.Request, b *helper.Broker) (*agent.Response, string) {
	var out, errs bytes.Buffer
	e := &env{ctx: ctx, stdin: strings.NewReader(""), stdout: &out, stderr: &errs, served: b, configs: &agentConfigs}
	code, account := e.exec(append([]string{req.Op, "--config", req.Config}, req.Args...))
	if code == exitStore {
		// The agent cannot reach this account's store (started without
		// D-Bus, keyring locked since): the caller may, so let it try.
		line, _, _ := strings.Cut(errs.String(), "\n")
		return &agent.Response{Fallback: "the agent cannot use this account's store (" + strings.TrimPrefix(line, "oauth2mail: error: ") + ")"}, ""
	}
	if code != exitOK {
		account = "" // not an account the agent should keep fresh
	}
	return &agent.Response{Exit: code, Stdout: out.String(), Stderr: errs.String()}, account
}

// viaAgent asks the agent to run the command. ok is false when no agent
// answers or it declines; the caller then runs the command itself.
func (e *env) viaAgent(name string, args []string) (code int, ok bool) {
	sock := agent.Socket()
	if sock == "" {
		return 0, false
	}
	conf, err := filepath.Abs(e.path())
	if err != nil {
		return 0, false
	}
	// The agent reads the config itself, from conf: drop a relative
	// --config the client was given.
	// A refresh takes at most flows.HTTPTimeout; an agent that takes much
	// longer is stuck, and the caller does better on its own.
	ctx, cancel := context.WithTimeout(e.ctx, flows.HTTPTimeout+5*time.Second)
	defer cancel()
	resp, err := agent.Call(ctx, sock, &agent.Request{Op: name, Args: withoutConfig(args), Config: conf, StateDir: cache.DefaultDir()})
	switch {
	case errors.Is(err, agent.ErrNoAgent):
		e.debugf("no agent at %s; working directly", sock)
		return 0, false
	case err != nil:
		e.debugf("%v; working directly", err)
		return 0, false
	case resp.Fallback != "":
		e.debugf("the agent at %s declined: %s; working directly", sock, resp.Fallback)
		return 0, false
	}
	e.debugf("answered by the agent at %s", sock)
	io.WriteString(e.stderr, resp.Stderr)
	write := func(s string) error { _, err := io.WriteString(e.stdout, s); return err }
	if name == "status" {
		write = e.printTable
	}
	if err := write(resp.Stdout); err != nil {
		return report(e.stderr, explain(err, "", e.verbose)), true
	}
	return resp.Exit, true
}

// withoutConfig drops --config and its value from args.
func withoutConfig(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--":
			return append(out, args[i:]...)
		case a == "--config":
			i++
		case strings.HasPrefix(a, "--config="):
		default:
			out = append(out, a)
		}
	}
	return out
}

func (e *env) debugf(format string, args ...any) {
	if e.verbose {
		fmt.Fprintf(e.stderr, "oauth2mail: "+format+"\n", args...)
	}
}

// tellAgent lets a running agent know that account changed (login,
// logout), so it reschedules at once. Nothing happens without an agent.
func (e *env) tellAgent(account string) {
	sock := agent.Socket()
	if sock == "" {
		return
	}
	if _, err := os.Stat(sock); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	if _, err := agent.Call(ctx, sock, &agent.Request{Op: "changed", Account: account}); err == nil {
		e.debugf("told the agent at %s", sock)
	}
}

// noticeFunc tells the person that an account's login is lost, with the
// notify_command of the current config.
func noticeFunc(ctx context.Context, conf func() *config.File, log io.Writer) func(*config.Account, *cache.State) {
	return func(a *config.Account, st *cache.State) {
		notify.Send(ctx, conf().Agent.NotifyCommand, notify.Notice{Account: a.Name, Email: a.Email, Reason: st.LoginNeededReason, Since: st.LoginNeeded}, log)
	}
}
