package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/clientconf"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/helper"
	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// Version and Commit are set with -ldflags "-X main.Version=... -X
// main.Commit=..." by release builds (scripts/release).
var Version, Commit string

// env is what every command gets: its streams, the global options and the
// values of its own flags.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	verbose        bool
	noAgent        bool

	// served is the agent's broker when the agent runs this command for a
	// client; nil in a command run directly.
	served  *helper.Broker
	configs *config.Cache // the agent's: parse the config once, not per request

	user       string // --user
	bearerHost string
	bearerPort int
	statusJSON bool
	login      loginOptions
	socket     string // agent --socket
	test       testOptions
}

// command is one subcommand: its flags and its body.
type command struct {
	flags func(fs *pflag.FlagSet, e *env)
	run   func(e *env, fs *pflag.FlagSet) error
	// account reports whether the first argument is an account name.
	account bool
	// agent: the agent can answer this command for the caller.
	agent bool
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	code, _ := e.exec(args)
	return code
}

// exec parses args (the command and its arguments) and runs the command,
// through the agent when one answers. It returns the exit code and the
// account the command was for.
func (e *env) exec(args []string) (code int, account string) {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage())
		return exitUsage, ""
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		return runHelp(e, args[1:]), ""
	case "-V", "--version":
		name = "version"
	}
	cmd, ok := commands()[name]
	if !ok {
		return report(e.stderr, explain(usagef("unknown command %q", name), "", false)), ""
	}
	fs, help := e.flagSet(name, cmd)
	err := fs.Parse(args[1:])
	if err == nil && *help {
		printHelp(e.stdout, name)
		return exitOK, ""
	}
	if err != nil {
		err = usagef("%s: %v", name, err)
	} else {
		if cmd.account && fs.NArg() > 0 {
			account = fs.Arg(0)
		}
		if cmd.agent && e.served == nil && !e.noAgent {
			if code, ok := e.viaAgent(name, args[1:]); ok {
				return code, account
			}
		}
		err = cmd.run(e, fs)
	}
	if err != nil {
		return report(e.stderr, explain(err, account, e.verbose)), account
	}
	return exitOK, account
}

func commands() map[string]command {
	return map[string]command{
		"login":       {flags: loginFlags, run: runLogin, account: true},
		"token":       {run: runToken, account: true, agent: true},
		"xoauth2":     {flags: userFlag, run: runXOAUTH2, account: true, agent: true},
		"oauthbearer": {flags: bearerFlags, run: runOAuthBearer, account: true, agent: true},
		"status":      {flags: statusFlags, run: runStatus, account: true, agent: true},
		"logout":      {run: runLogout, account: true},
		"agent":       {flags: agentFlags, run: runAgent},
		"version":     {run: runVersion},
		"test":        {flags: testFlags, run: runTest, account: true},
		"config":      {run: runConfig, account: true},
		"completion":  {run: runCompletion},
		"man":         {run: runMan},
		// The completion scripts' helper; not listed in the help.
		"__accounts": {run: runAccounts},
	}
}

// oneAccount checks the arguments name exactly one account.
func oneAccount(fs *pflag.FlagSet) (string, error) {
	switch fs.NArg() {
	case 0:
		return "", usagef("%s: missing ACCOUNT", fs.Name())
	case 1:
		if !config.ValidName(fs.Arg(0)) {
			return "", usagef("%s: %q is not an account name", fs.Name(), fs.Arg(0))
		}
		return fs.Arg(0), nil
	}
	return "", usagef("%s: too many arguments: %s", fs.Name(), strings.Join(fs.Args()[1:], " "))
}

func (e *env) load() (*config.File, error) {
	if e.configs != nil {
		return e.configs.Load(e.path())
	}
	return config.Load(e.path())
}

func (e *env) path() string {
	if e.configPath != "" {
		return e.configPath
	}
	return config.DefaultPath()
}

// broker returns the broker for a command: the agent's when it serves the
// command, else one of this process that tells the person about a lost
// login as f's [agent] section says.
func (e *env) broker(f *config.File) *helper.Broker {
	if e.served != nil {
		return e.served.With(e.stderr, e.verbose)
	}
	b := helper.New(cache.DefaultDir(), e.stderr, e.verbose)
	if f != nil {
		// The error line already tells this caller; the notice is for a
		// person elsewhere (notify_command, the desktop), not a second line.
		log := io.Discard
		if f.Agent.NotifyCommand != "" {
			log = e.stderr // a failing notify_command is worth a line
		}
		b.Notice, b.NoticeEvery = noticeFunc(e.ctx, func() *config.File { return f }, log), time.Duration(f.Agent.NotifyEvery)
	}
	return b
}

// account loads the config and returns the named account.
func (e *env) account(fs *pflag.FlagSet) (*config.File, *config.Account, error) {
	name, err := oneAccount(fs)
	if err != nil {
		return nil, nil, err
	}
	f, err := e.load()
	if err != nil {
		return nil, nil, err
	}
	a, err := f.Account(name)
	return f, a, err
}

// accountAnd loads the account named by the first of exactly two arguments
// and returns it with the second (`test ACCOUNT imap`, `config ACCOUNT
// msmtp`). want shows the arguments in usage errors; check vets the
// second argument before the config is read.
func (e *env) accountAnd(fs *pflag.FlagSet, want string, check func(string) error) (*config.File, *config.Account, string, error) {
	if fs.NArg() != 2 {
		return nil, nil, "", usagef("%s: want %s", fs.Name(), want)
	}
	name, second := fs.Arg(0), fs.Arg(1)
	if !config.ValidName(name) {
		return nil, nil, "", usagef("%s: %q is not an account name", fs.Name(), name)
	}
	if err := check(second); err != nil {
		return nil, nil, "", err
	}
	f, err := e.load()
	if err != nil {
		return nil, nil, "", err
	}
	a, err := f.Account(name)
	return f, a, second, err
}

// token returns a valid access token for the named account.
func (e *env) token(fs *pflag.FlagSet) (*config.Account, string, error) {
	f, a, err := e.account(fs)
	if err != nil {
		return nil, "", err
	}
	st, err := e.broker(f).Token(e.ctx, a)
	if err != nil {
		return nil, "", err
	}
	return a, st.AccessToken, nil
}

func runToken(e *env, fs *pflag.FlagSet) error {
	_, tok, err := e.token(fs)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

func userFlag(fs *pflag.FlagSet, e *env) {
	fs.StringVar(&e.user, "user", "", "`MAILBOX` to log in to (a shared mailbox); default: the account's email")
}

func (e *env) mailbox(a *config.Account) (string, error) {
	if e.user == "" {
		return a.Email, nil
	}
	if !config.PlainText(e.user) || !strings.Contains(e.user, "@") {
		return "", usagef("--user %q is not a mail address", e.user)
	}
	return e.user, nil
}

// saslInput returns the mailbox (--user, else the account's email) and a
// valid token for the SASL commands.
func (e *env) saslInput(fs *pflag.FlagSet) (user, token string, err error) {
	a, tok, err := e.token(fs)
	if err != nil {
		return "", "", err
	}
	user, err = e.mailbox(a)
	return user, tok, err
}

func runXOAUTH2(e *env, fs *pflag.FlagSet) error {
	user, tok, err := e.saslInput(fs)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, sasl.XOAUTH2(user, tok))
	return err
}

func bearerFlags(fs *pflag.FlagSet, e *env) {
	userFlag(fs, e)
	fs.StringVar(&e.bearerHost, "host", "", "server `HOST` name for the host= field")
	fs.IntVar(&e.bearerPort, "port", 0, "server `PORT` for the port= field")
}

func runOAuthBearer(e *env, fs *pflag.FlagSet) error {
	if e.bearerPort < 0 || e.bearerPort > 65535 {
		return usagef("oauthbearer: --port %d is not a port", e.bearerPort)
	}
	if !config.PlainText(e.bearerHost) || strings.ContainsAny(e.bearerHost, " ,") {
		return usagef("oauthbearer: --host %q is not a host name", e.bearerHost)
	}
	user, tok, err := e.saslInput(fs)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, sasl.OAuthBearer(user, e.bearerHost, e.bearerPort, tok))
	return err
}

func runLogout(e *env, fs *pflag.FlagSet) error {
	f, a, err := e.account(fs)
	if err != nil {
		return err
	}
	if err := e.broker(f).Logout(e.ctx, a); err != nil {
		return err
	}
	// The copy of the access token the fetchmail snippet keeps, if any.
	tf := clientconf.FetchmailTokenFile(cache.DefaultDir(), a.Name)
	for _, p := range []string{tf, tf + ".new"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: logged out, but cannot remove %s: %w", a.Name, p, err)
		}
	}
	e.tellAgent(a.Name)
	fmt.Fprintf(e.stderr, "oauth2mail: %s: logged out; stored tokens and key removed\n", a.Name)
	return nil
}

func runVersion(e *env, fs *pflag.FlagSet) error {
	_, err := fmt.Fprintf(e.stdout, "oauth2mail %s\n", versionString())
	return err
}

// versionString is the version, and the commit when known.
func versionString() string {
	v := Version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	if c := commit(); c != "" {
		v += " (" + c + ")"
	}
	return v
}

// commit is the commit the binary was built from: Commit, else what the
// go command recorded (vcs.revision, with "+dirty" for local changes).
func commit() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

func statusFlags(fs *pflag.FlagSet, e *env) {
	fs.BoolVar(&e.statusJSON, "json", false, "machine-readable output")
}

func runStatus(e *env, fs *pflag.FlagSet) error {
	if fs.NArg() > 1 {
		return usagef("status: too many arguments")
	}
	f, err := e.load()
	if err != nil {
		return err
	}
	names := f.Names()
	if fs.NArg() == 1 {
		if _, err := f.Account(fs.Arg(0)); err != nil {
			return err
		}
		names = []string{fs.Arg(0)}
	}
	b := e.broker(f)
	var all []helper.Status
	var worst error
	for _, n := range names {
		s := b.Status(f.Accounts[n])
		all = append(all, s)
		if s.Err != nil && worst == nil {
			worst = s.Err
		}
	}
	if e.statusJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if all == nil {
			all = []helper.Status{}
		}
		if err := enc.Encode(all); err != nil {
			return err
		}
	} else {
		var table strings.Builder
		printStatus(&table, f.Path, all)
		e.printTable(table.String())
	}
	if worst != nil && fs.NArg() == 1 {
		return worst
	}
	return nil
}

func printStatus(w io.Writer, path string, all []helper.Status) {
	if len(all) == 0 {
		fmt.Fprintf(w, "no accounts in %s\n", path)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tEMAIL\tSTORE\tSTATE\tACCESS TOKEN\tREFRESH TOKEN\tLAST REFRESH")
	for _, s := range all {
		access, refresh, last := "-", "-", "-"
		if s.AccessExpiry != nil {
			access = "expires " + relTime(*s.AccessExpiry)
		}
		if s.HasRefreshToken {
			refresh = "yes"
			if s.RefreshTokenAge != "" {
				refresh = "age " + s.RefreshTokenAge
			}
		}
		if s.LastRefresh != nil {
			last = relTime(*s.LastRefresh)
		}
		state := s.State
		if s.LoginNeededSince != nil {
			state += " since " + max(time.Since(*s.LoginNeededSince), 0).Round(time.Second).String() + " ago"
		}
		if s.Detail != "" && s.State != "ok" && s.State != "expired" {
			state += " (" + s.Detail + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Account, s.Email, s.Store, state, access, refresh, last)
	}
	tw.Flush()
}

// printTable writes status's output, with the STATE column coloured when
// stdout is a terminal: green for ok and expired (refreshed on the next
// use), bold red for states that need the person. The agent's answer is
// coloured here too, by the client, which knows its terminal.
func (e *env) printTable(out string) error {
	if colour(e.stdout) {
		out = colourStates(out)
	}
	_, err := io.WriteString(e.stdout, out)
	return err
}

// colourStates colours the STATE column of a status table; other text
// (JSON, "no accounts") is returned as it is. Colour goes in after the
// table is laid out, so the escapes move no column.
func colourStates(table string) string {
	lines := strings.SplitAfter(table, "\n")
	col, end := strings.Index(lines[0], "  STATE  "), strings.Index(lines[0], "  ACCESS TOKEN")
	if !strings.HasPrefix(lines[0], "ACCOUNT  ") || col < 0 || end < col {
		return table
	}
	col, end = col+2, end+2
	for i, l := range lines[1:] {
		if len(l) < end {
			continue
		}
		state := strings.TrimRight(l[col:end], " ")
		code := "32" // green
		if s, _, _ := strings.Cut(state, " "); s != "ok" && s != "expired" {
			code = "1;31" // bold red
		}
		lines[i+1] = l[:col] + "\x1b[" + code + "m" + state + "\x1b[0m" + l[col+len(state):]
	}
	return strings.Join(lines, "")
}

// colour reports whether w is a terminal that wants colour: not when
// NO_COLOR is set (no-color.org) or TERM is dumb.
func colour(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

func relTime(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	if d >= 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}
