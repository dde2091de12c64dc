// Package config reads and validates oauth2mail's TOML configuration: the
// accounts, their identity provider and how their tokens are stored. Every
// error names the file, the line and the key so a user can fix it at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Providers, flows and stores a config may name.
const (
	ProviderMicrosoft = "microsoft"
	ProviderGoogle    = "google"
	ProviderGeneric   = "generic"

	FlowAuto    = "auto"
	FlowBrowser = "browser"
	FlowDevice  = "device"
	// FlowClientCredentials is app-only access to service mailboxes
	// (Microsoft only): no person, a client secret or certificate.
	FlowClientCredentials = "client-credentials"

	StoreKeyring = "keyring"
	StoreFile    = "file"

	DefaultAuthorityHost = "https://login.microsoftonline.com"
	DefaultTenant        = "organizations"
)

// maxSize bounds what we read: a config is a few hundred bytes.
const maxSize = 1 << 20

// Account is one mailbox identity and how to get tokens for it.
type Account struct {
	Name          string   `toml:"-"`
	Provider      string   `toml:"provider"`
	Email         string   `toml:"email"`
	ClientID      string   `toml:"client_id"`
	ClientSecret  string   `toml:"client_secret"`
	Tenant        string   `toml:"tenant"`
	AuthorityHost string   `toml:"authority_host"`
	AuthURL       string   `toml:"auth_url"`
	TokenURL      string   `toml:"token_url"`
	DeviceAuthURL string   `toml:"device_auth_url"`
	Scopes        []string `toml:"scopes"`
	Flow          string   `toml:"flow"`
	Store         string   `toml:"store"`
	RedirectHost  string   `toml:"redirect_host"`
	// RedirectURI, when set, is the exact loopback redirect registered for
	// the app: "https://localhost" (optionally with a port and a path)
	// serves the redirect over TLS with a certificate made at run time.
	RedirectURI string `toml:"redirect_uri"`

	// App-only (flow = "client-credentials"): where the app's credential
	// comes from. None set: the secret `oauth2mail login` stored.
	ClientSecretCommand string `toml:"client_secret_command"`
	Certificate         string `toml:"certificate"` // PEM file: certificate and private key

	// Mail servers, "host:port", for `test` and `config`; the TLS mode
	// follows the port unless *_tls says otherwise.
	IMAPServer string `toml:"imap_server"`
	POPServer  string `toml:"pop_server"`
	SMTPServer string `toml:"smtp_server"`
	IMAPTLS    string `toml:"imap_tls"`
	POPTLS     string `toml:"pop_tls"`
	SMTPTLS    string `toml:"smtp_tls"`
	CAFile     string `toml:"ca_file"` // PEM bundle of a private CA for the mail servers
}

// GoString keeps a client secret out of %#v.
func (a Account) GoString() string {
	if a.ClientSecret != "" {
		a.ClientSecret = "<redacted>"
	}
	type plain Account
	return fmt.Sprintf("%#v", plain(a))
}

// Agent tunes `oauth2mail agent` and the notices of a lost login.
type Agent struct {
	// NotifyCommand runs (through sh -c) when an account needs a person
	// to log in again, with OAUTH2MAIL_ACCOUNT, OAUTH2MAIL_EMAIL,
	// OAUTH2MAIL_REASON, OAUTH2MAIL_SINCE and OAUTH2MAIL_FIX set. Never a
	// token. Empty: notify-send when a display exists, else a log line.
	NotifyCommand string   `toml:"notify_command"`
	NotifyEvery   Duration `toml:"notify_every"` // repeat the notice while the login stays lost
	KeepAlive     Duration `toml:"keepalive"`    // refresh at least this often, so the refresh token never idles out
	IdleAfter     Duration `toml:"idle_after"`   // stop refreshing ahead of expiry after this long without a request
}

// Agent defaults.
const (
	DefaultNotifyEvery = Duration(24 * time.Hour)
	DefaultKeepAlive   = Duration(7 * 24 * time.Hour)
	DefaultIdleAfter   = Duration(24 * time.Hour)
)

// Duration is a TOML string like "90m", "24h" or "7d".
type Duration time.Duration

func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days <= 0 || days > 3650 {
			return fmt.Errorf("%s is not a duration like \"7d\", \"24h\" or \"90m\"", quote(s))
		}
		*d = Duration(days * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%s is not a duration like \"7d\", \"24h\" or \"90m\"", quote(s))
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// File is a loaded configuration.
type File struct {
	Path     string
	Accounts map[string]*Account
	Agent    Agent
}

// Names returns the account names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Accounts))
	for n := range f.Accounts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ErrUnknownAccount is returned by Account for a name the file does not define.
var ErrUnknownAccount = errors.New("unknown account")

// Account returns the named account.
func (f *File) Account(name string) (*Account, error) {
	if a, ok := f.Accounts[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%w %q in %s", ErrUnknownAccount, name, f.Path)
}

// Error is a problem in the config file, located as precisely as possible.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, "" when not about one key
	Msg  string
}

// Error is one line however the file is broken: the TOML parser's own
// messages quote the text they stopped at, and a key may hold any
// character; a mail client shows the line in a status bar or a log.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(oneLine(e.File, 0))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + oneLine(e.Key, maxKeyLen))
	}
	b.WriteString(": " + oneLine(e.Msg, maxMsgLen))
	return b.String()
}

// Bounds of an error's parts, and of a value quoted in a message.
const (
	maxKeyLen    = 128
	maxMsgLen    = 320
	maxQuotedLen = 64
)

// oneLine escapes control characters as Go does in a quoted string and
// cuts s after max bytes (0: no limit), marking the cut with "...".
func oneLine(s string, max int) string {
	if PlainText(s) && (max == 0 || len(s) <= max) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
		if max > 0 && b.Len() > max {
			return cut(b.String(), max) + "..."
		}
	}
	return b.String()
}

// quote is %q of a value from the config, cut after maxQuotedLen bytes: the
// start of a value is enough to find it, and a message stays one line.
func quote(s string) string {
	if len(s) <= maxQuotedLen {
		return strconv.Quote(s)
	}
	return strconv.Quote(cut(s, maxQuotedLen)) + "..."
}

// cut returns s's first n bytes or fewer, never splitting a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// DefaultPath is where the config lives when neither --config nor
// OAUTH2MAIL_CONFIG says otherwise.
func DefaultPath() string {
	if p := os.Getenv("OAUTH2MAIL_CONFIG"); p != "" {
		return p
	}
	// $XDG_CONFIG_HOME, else ~/.config, on every Unix (macOS included, as
	// the README says); Windows keeps its own %AppData%.
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "oauth2mail", "config.toml")
	}
	dir, err := os.UserConfigDir()
	if home, herr := os.UserHomeDir(); herr == nil && runtime.GOOS != "windows" {
		dir, err = filepath.Join(home, ".config"), nil
	}
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "oauth2mail", "config.toml")
}

// Cache reuses a loaded config while its file keeps its size and
// modification time; the agent reads the config on every request.
type Cache struct {
	mu    sync.Mutex
	path  string
	size  int64
	mtime time.Time
	f     *File
}

// Load returns the config at path, parsed again only when it changed.
func (c *Cache) Load(path string) (*File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Load(path)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil && c.path == path && c.size == fi.Size() && c.mtime.Equal(fi.ModTime()) {
		return c.f, nil
	}
	f, err := Load(path)
	if err == nil {
		c.path, c.size, c.mtime, c.f = path, fi.Size(), fi.ModTime(), f
	}
	return f, err
}

// ErrNoFile is returned by Load when the file does not exist.
var ErrNoFile = errors.New("no config file")

type fileShape struct {
	Accounts map[string]*Account `toml:"accounts"`
	Agent    Agent               `toml:"agent"`
}

// Load reads and validates the config at path.
func Load(path string) (*File, error) {
	src, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoFile, path)
	}
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	if n > maxSize {
		return nil, &Error{File: path, Msg: "file is larger than 1 MiB; is this the right file?"}
	}
	return buf.Bytes(), nil
}

// Parse validates config text; path is used in errors only.
func Parse(path string, src []byte) (*File, error) {
	var shape fileShape
	md, err := toml.Decode(string(src), &shape)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		// Type mismatches come as plain errors: `toml: line N (last key "K"): msg`.
		if m := decodeErrRE().FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: path, Line: line, Key: m[2], Msg: m[3]}
		}
		return nil, &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	loc := locator{src: src}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, &Error{File: path, Line: loc.line(k...), Key: k.String(), Msg: "unknown key (check its spelling)"}
	}
	f := &File{Path: path, Accounts: shape.Accounts, Agent: shape.Agent}
	if key, msg := f.Agent.validate(); msg != "" {
		return nil, &Error{File: path, Line: loc.line("agent", key), Key: "agent." + key, Msg: msg}
	}
	if f.Accounts == nil {
		f.Accounts = map[string]*Account{}
	}
	for _, name := range f.Names() {
		a := f.Accounts[name]
		a.Name = name
		if key, msg := a.validate(); msg != "" {
			e := &Error{File: path, Key: "accounts." + quoteKey(name)}
			if key != "" {
				e.Key += "." + key
				e.Line = loc.line("accounts", name, key)
			}
			if e.Line == 0 { // a missing key: point at its table
				e.Line = loc.line("accounts", name)
			}
			e.Msg = msg
			return nil, e
		}
	}
	return f, nil
}

func (g *Agent) validate() (key, msg string) {
	if !PlainText(g.NotifyCommand) {
		return "notify_command", "must be one line"
	}
	for _, d := range []struct {
		p   *Duration
		def Duration
		key string
		min time.Duration
	}{{&g.NotifyEvery, DefaultNotifyEvery, "notify_every", time.Minute}, {&g.KeepAlive, DefaultKeepAlive, "keepalive", time.Hour}, {&g.IdleAfter, DefaultIdleAfter, "idle_after", time.Minute}} {
		if *d.p == 0 {
			*d.p = d.def
		}
		if time.Duration(*d.p) < d.min {
			return d.key, fmt.Sprintf("%s is too short; use at least %s", *d.p, d.min)
		}
	}
	if g.KeepAlive > Duration(60*24*time.Hour) {
		return "keepalive", "must be under 60d: Microsoft forgets a refresh token unused for 90 days"
	}
	return "", ""
}

// Regexps used only on error paths compile on first use: the hot path
// (a mail client asking for a token) loads the config on every call.
var decodeErrRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
})

// ValidName reports whether name can be an account name: it is used in file
// names and keyring entries, so it is kept plain.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 || !isAlnum(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && !strings.ContainsRune("._@-", rune(c)) {
			return false
		}
	}
	return true
}

// PlainText reports whether s has no control characters: a mailbox or host
// name goes into SASL strings framed by ^A.
func PlainText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validTenant accepts common, organizations, consumers, a GUID or a domain.
func validTenant(t string) bool {
	switch t {
	case "common", "organizations", "consumers":
		return true
	}
	if len(t) == 36 && t[8] == '-' && t[13] == '-' && t[18] == '-' && t[23] == '-' {
		for i := 0; i < len(t); i++ {
			c := t[i]
			if c != '-' && !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	labels := strings.Split(t, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	return true
}

// validate fills defaults and returns the offending key and a message, or "" "".
func (a *Account) validate() (key, msg string) {
	if !ValidName(a.Name) {
		return "", "account names may use letters, digits and . _ @ - (at most 64)"
	}
	switch a.Provider {
	case ProviderMicrosoft, ProviderGoogle, ProviderGeneric:
	case "":
		return "provider", `missing; set provider = "microsoft", "google" or "generic"`
	default:
		return "provider", fmt.Sprintf(`%s is not a provider; use "microsoft", "google" or "generic"`, quote(a.Provider))
	}
	if a.Email == "" {
		return "email", "missing; set it to the mailbox address you log in as"
	}
	if !strings.Contains(a.Email, "@") || !PlainText(a.Email) || strings.ContainsAny(a.Email, " \t") {
		return "email", fmt.Sprintf("%s is not a mail address", quote(a.Email))
	}
	if a.ClientID == "" {
		return "client_id", "missing; register an app and put its client (application) ID here (see the README)"
	}
	if a.Provider == ProviderMicrosoft {
		if a.Tenant == "" && a.Flow == FlowClientCredentials {
			return "tenant", `missing; app-only access needs your tenant ID or domain (e.g. "contoso.onmicrosoft.com")`
		}
		if a.Tenant == "" {
			a.Tenant = DefaultTenant
		}
		if !validTenant(a.Tenant) {
			return "tenant", fmt.Sprintf("%s is not common, organizations, consumers, a tenant ID or a domain", quote(a.Tenant))
		}
		if a.AuthorityHost == "" {
			a.AuthorityHost = DefaultAuthorityHost
		}
		a.AuthorityHost = strings.TrimRight(a.AuthorityHost, "/")
		if msg := checkURL(a.AuthorityHost); msg != "" {
			return "authority_host", msg
		}
	} else {
		if a.Tenant != "" {
			return "tenant", "only applies to provider = \"microsoft\""
		}
		if a.AuthorityHost != "" {
			return "authority_host", "only applies to provider = \"microsoft\""
		}
	}
	endpoints := []struct{ key, val string }{{"auth_url", a.AuthURL}, {"token_url", a.TokenURL}, {"device_auth_url", a.DeviceAuthURL}}
	for _, ep := range endpoints {
		if ep.val == "" {
			continue
		}
		if a.Provider != ProviderGeneric {
			return ep.key, fmt.Sprintf("only applies to provider = \"generic\" (%s endpoints are built in)", a.Provider)
		}
		if msg := checkURL(ep.val); msg != "" {
			return ep.key, msg
		}
	}
	if a.Provider == ProviderGeneric {
		if a.TokenURL == "" {
			return "token_url", `missing; provider = "generic" needs the token endpoint`
		}
		if a.AuthURL == "" && a.DeviceAuthURL == "" {
			return "auth_url", `missing; provider = "generic" needs auth_url, device_auth_url or both`
		}
		if len(a.Scopes) == 0 {
			return "scopes", `missing; provider = "generic" needs the scopes to request, e.g. ["https://mail.example.com/", "offline_access"]`
		}
	}
	for _, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return "scopes", fmt.Sprintf("%s is not a single scope", quote(s))
		}
	}
	switch a.Flow {
	case "":
		a.Flow = FlowAuto
	case FlowAuto, FlowBrowser, FlowDevice:
	case FlowClientCredentials:
		if key, msg := a.validateApp(); msg != "" {
			return key, msg
		}
	default:
		return "flow", fmt.Sprintf(`%s is not a flow; use "auto", "browser", "device" or "client-credentials"`, quote(a.Flow))
	}
	if a.Flow != FlowClientCredentials {
		for _, k := range []struct{ key, val string }{{"certificate", a.Certificate}, {"client_secret_command", a.ClientSecretCommand}} {
			if k.val != "" {
				return k.key, `only applies to flow = "client-credentials"`
			}
		}
	}
	if key, msg := a.validateServers(); msg != "" {
		return key, msg
	}
	switch a.Store {
	case "":
		a.Store = StoreKeyring
	case StoreKeyring, StoreFile:
	default:
		return "store", fmt.Sprintf(`%s is not a store; use "keyring" or "file"`, quote(a.Store))
	}
	switch a.RedirectHost {
	case "":
		a.RedirectHost = "localhost"
	case "localhost", "127.0.0.1":
	default:
		return "redirect_host", fmt.Sprintf(`%s is not allowed; use "localhost" or "127.0.0.1"`, quote(a.RedirectHost))
	}
	if a.RedirectURI != "" {
		if msg := checkRedirectURI(a.RedirectURI); msg != "" {
			return "redirect_uri", msg
		}
	}
	return "", ""
}

// validateApp checks an app-only (client-credentials) account.
func (a *Account) validateApp() (key, msg string) {
	if a.Provider != ProviderMicrosoft {
		return "flow", `"client-credentials" is for provider = "microsoft" (service mailboxes in Exchange Online)`
	}
	switch a.Tenant {
	case "common", "organizations", "consumers":
		return "tenant", fmt.Sprintf(`%s cannot be used for app-only access; set tenant to your tenant ID or domain (e.g. "contoso.onmicrosoft.com")`, quote(a.Tenant))
	}
	n := 0
	for _, v := range []string{a.ClientSecret, a.ClientSecretCommand, a.Certificate} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return "certificate", "give one of client_secret, client_secret_command and certificate (or none, to use the secret `oauth2mail login` stores)"
	}
	if !PlainText(a.ClientSecretCommand) {
		return "client_secret_command", "must be one line"
	}
	if a.Certificate != "" {
		p, msg := absPath(a.Certificate)
		if msg != "" {
			return "certificate", msg
		}
		a.Certificate = p
	}
	for _, s := range a.Scopes {
		if !strings.HasSuffix(s, "/.default") || len(a.Scopes) > 1 {
			return "scopes", `app-only access takes one scope ending in "/.default" (the default, "https://outlook.office365.com/.default", is right for Exchange Online)`
		}
	}
	return "", ""
}

// TLS modes of a mail server connection.
const (
	TLSImplicit = "tls"      // TLS from the first byte (993, 995, 465)
	TLSStartTLS = "starttls" // plain greeting, then STARTTLS/STLS (143, 110, 587)
)

// Mail protocols of Server.
const (
	IMAP = "imap"
	POP  = "pop"
	SMTP = "smtp"
)

// Server is where an account's mail client connects for one protocol.
type Server struct {
	Host    string
	Port    int
	TLS     string // TLSImplicit or TLSStartTLS
	Default bool   // a built-in default, not from the config
}

// Addr is "host:port".
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// defaultServers are the providers' documented endpoints.
var defaultServers = map[string]map[string]string{
	ProviderMicrosoft: {IMAP: "outlook.office365.com:993", POP: "outlook.office365.com:995", SMTP: "smtp.office365.com:587"},
	ProviderGoogle:    {IMAP: "imap.gmail.com:993", POP: "pop.gmail.com:995", SMTP: "smtp.gmail.com:587"},
}

// tlsByPort is the usual TLS mode of the well-known mail ports.
var tlsByPort = map[int]string{993: TLSImplicit, 995: TLSImplicit, 465: TLSImplicit, 143: TLSStartTLS, 110: TLSStartTLS, 587: TLSStartTLS, 25: TLSStartTLS}

func (a *Account) serverFields(proto string) (server, mode *string) {
	switch proto {
	case IMAP:
		return &a.IMAPServer, &a.IMAPTLS
	case POP:
		return &a.POPServer, &a.POPTLS
	case SMTP:
		return &a.SMTPServer, &a.SMTPTLS
	}
	return nil, nil
}

// ErrNoServer is returned by Server when neither the config nor the
// provider names a server for the protocol.
var ErrNoServer = errors.New("no server")

// Server returns the account's server for proto (IMAP, POP or SMTP): the
// config's, else the provider's default.
func (a *Account) Server(proto string) (Server, error) {
	server, mode := a.serverFields(proto)
	if server == nil {
		return Server{}, fmt.Errorf("%q is not imap, pop or smtp", proto)
	}
	s, def := *server, false
	if s == "" {
		s, def = defaultServers[a.Provider][proto], true
		if a.Provider == ProviderMicrosoft && proto == SMTP && a.Tenant == "consumers" {
			s = "smtp-mail.outlook.com:587" // Outlook.com's documented name
		}
	}
	if s == "" {
		return Server{}, fmt.Errorf("%w: set %s_server = \"host:port\" for %s in the config", ErrNoServer, proto, a.Name)
	}
	srv, msg := parseServer(s, *mode)
	if msg != "" {
		return Server{}, errors.New(msg)
	}
	srv.Default = def
	return srv, nil
}

func parseServer(s, mode string) (Server, string) {
	host, p, err := net.SplitHostPort(s)
	port, perr := strconv.Atoi(p)
	if err != nil || host == "" || perr != nil || port < 1 || port > 65535 || !PlainText(host) || strings.ContainsAny(host, " /") {
		return Server{}, fmt.Sprintf("%s is not host:port (e.g. \"outlook.office365.com:993\")", quote(s))
	}
	srv := Server{Host: host, Port: port, TLS: mode}
	if srv.TLS == "" {
		srv.TLS = tlsByPort[port]
	}
	if srv.TLS == "" {
		return Server{}, fmt.Sprintf("port %d is not a standard mail port, so the TLS mode is unknown", port)
	}
	return srv, ""
}

func (a *Account) validateServers() (key, msg string) {
	for _, proto := range []string{IMAP, POP, SMTP} {
		server, mode := a.serverFields(proto)
		switch *mode {
		case "", TLSImplicit, TLSStartTLS:
		default:
			return proto + "_tls", fmt.Sprintf(`%s is not a TLS mode; use "tls" (implicit TLS) or "starttls" (plain text is never used)`, quote(*mode))
		}
		if *server == "" {
			if *mode != "" {
				return proto + "_tls", fmt.Sprintf("needs %s_server", proto)
			}
			continue
		}
		if _, msg := parseServer(*server, *mode); msg != "" {
			if *mode == "" && strings.HasPrefix(msg, "port ") {
				msg += fmt.Sprintf(`; set %s_tls = "tls" or "starttls"`, proto)
			}
			return proto + "_server", msg
		}
	}
	if a.CAFile != "" {
		p, msg := absPath(a.CAFile)
		if msg != "" {
			return "ca_file", msg
		}
		a.CAFile = p
	}
	return "", ""
}

// absPath expands a leading ~/ and requires an absolute path: the path is
// printed into mail clients' configs, which run from anywhere.
func absPath(p string) (string, string) {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "cannot expand ~: " + err.Error()
		}
		p = filepath.Join(home, rest)
	}
	if !filepath.IsAbs(p) || !PlainText(p) {
		return "", fmt.Sprintf("%s must be an absolute path (or start with ~/)", quote(p))
	}
	return p, ""
}

// RedirectTLS reports whether the browser flow's redirect is https.
func (a *Account) RedirectTLS() bool { return strings.HasPrefix(a.RedirectURI, "https:") }

// checkRedirectURI accepts a loopback redirect: https://localhost or
// http(s)://127.0.0.1 or localhost, with an optional port and path.
func checkRedirectURI(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Sprintf("%s is not a redirect URI like \"https://localhost\" or \"https://localhost:8443/callback\"", quote(raw))
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Sprintf("%s must be an https (or http) URL", quote(raw))
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1":
	default:
		return fmt.Sprintf("%s must be on localhost or 127.0.0.1: oauth2mail receives the redirect itself", quote(raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%s has no valid port", quote(raw))
		}
	}
	return ""
}

// checkURL accepts https URLs, and http ones only on a loopback host.
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("%s is not an absolute URL", quote(raw))
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if isLoopback(u.Hostname()) {
			return ""
		}
		return fmt.Sprintf("%s uses plain http; only https is allowed (http only on 127.0.0.1 or localhost)", quote(raw))
	}
	return fmt.Sprintf("%s must be an https URL", quote(raw))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// locator finds the line of a table or key in TOML source, for errors. It
// understands the plain layout a person writes ([accounts.work] then key =
// value lines), and falls back to 0 (no line) otherwise.
type locator struct{ src []byte }

func (l locator) line(path ...string) int {
	if len(path) == 0 {
		return 0
	}
	lines := strings.Split(string(l.src), "\n")
	table, key := path[:len(path)-1], path[len(path)-1]
	// The key might itself be a table header ([accounts.work]).
	if n := findHeader(lines, path); n > 0 {
		return n
	}
	start := 0
	if len(table) > 0 {
		start = findHeader(lines, table)
		if start == 0 {
			return 0
		}
	}
	for i := start; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, "[") {
			break
		}
		k, _, ok := strings.Cut(t, "=")
		if ok && unquote(strings.TrimSpace(k)) == key {
			return i + 1
		}
	}
	return 0
}

func findHeader(lines []string, table []string) int {
	for i, ln := range lines {
		t := strings.TrimSpace(ln)
		if !strings.HasPrefix(t, "[") || strings.HasPrefix(t, "[[") {
			continue
		}
		end := strings.Index(t, "]")
		if end < 0 {
			continue
		}
		parts := strings.Split(t[1:end], ".")
		if len(parts) != len(table) {
			continue
		}
		match := true
		for j := range parts {
			if unquote(strings.TrimSpace(parts[j])) != table[j] {
				match = false
				break
			}
		}
		if match {
			return i + 1
		}
	}
	return 0
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

func quoteKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return fmt.Sprintf("%q", k)
}
