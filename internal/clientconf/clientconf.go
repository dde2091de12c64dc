// Package clientconf writes the configuration snippets of `oauth2mail
// config`: msmtp, mbsync, NeoMutt, Mutt, aerc and fetchmail settings that
// run oauth2mail for a raw access token (the clients build the SASL
// string themselves), quoted for each client's own parser, and the checks
// that tell whether the installed client can use them.
package clientconf

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// Clients are the clients `oauth2mail config` writes for, in the order
// the usage text names them.
var Clients = []string{"msmtp", "mbsync", "neomutt", "mutt", "aerc", "fetchmail"}

// Params is what a snippet is made of.
type Params struct {
	Account *config.Account
	// Binary names this program in the snippet: "oauth2mail", or an
	// absolute path when that name on $PATH is another program (Binary).
	Binary string
	// ConfigPath, when not empty, is added as --config: the config in use
	// was chosen by --config or $OAUTH2MAIL_CONFIG, which the mail client
	// would not know. Absolute.
	ConfigPath string
	// StateDir is oauth2mail's state directory (0700): fetchmail, which
	// has no credential command, reads its token from a file there.
	StateDir string
}

// TokenCommand is the shell command that prints a fresh access token.
func (p Params) TokenCommand() string {
	words := []string{p.Binary, "token", p.Account.Name}
	if p.ConfigPath != "" {
		words = append(words, "--config", p.ConfigPath)
	}
	return shellJoin(words...)
}

// Snippet returns the configuration of client for the account, and
// warnings about it that belong on stderr. A server the client needs and
// the account lacks is an error wrapping config.ErrNoServer.
func Snippet(client string, p Params) (text string, warnings []string, err error) {
	for _, s := range []string{p.Binary, p.ConfigPath, p.StateDir} {
		if !config.PlainText(s) {
			return "", nil, fmt.Errorf("%q %w (it has a control character)", s, ErrUnquotable)
		}
	}
	s := &snippet{p: p, a: p.Account, client: client, cmd: p.TokenCommand()}
	switch client {
	case "msmtp":
		err = s.msmtp()
	case "mbsync":
		err = s.mbsync()
	case "neomutt", "mutt":
		err = s.mutt()
	case "aerc":
		err = s.aerc()
	case "fetchmail":
		err = s.fetchmail()
	default:
		return "", nil, fmt.Errorf("%q is not a client I know; use one of %s", client, strings.Join(Clients, ", "))
	}
	if err != nil {
		return "", nil, err
	}
	return s.b.String(), s.lineWarnings(), nil
}

// snippet accumulates one client's text.
type snippet struct {
	p      Params
	a      *config.Account
	client string
	cmd    string // the token command, quoted for sh
	b      strings.Builder
}

func (s *snippet) line(format string, args ...any) { fmt.Fprintf(&s.b, format+"\n", args...) }

// comment writes each text as one "# " line.
func (s *snippet) comment(texts ...string) {
	for _, t := range texts {
		if t == "" {
			s.b.WriteString("#\n")
			continue
		}
		s.b.WriteString("# " + t + "\n")
	}
}

// header names what the snippet is for and where it goes.
func (s *snippet) header(where string) {
	s.comment(fmt.Sprintf("%s for oauth2mail account %q (%s, %s): oauth2mail config %s %s",
		clientTitle[s.client], s.a.Name, providerTitle(s.a), mech, s.a.Name, s.client))
	s.comment(where)
}

var clientTitle = map[string]string{"msmtp": "msmtp", "mbsync": "mbsync (isync)", "neomutt": "NeoMutt", "mutt": "Mutt", "aerc": "aerc", "fetchmail": "fetchmail"}

func providerTitle(a *config.Account) string {
	t := map[string]string{config.ProviderMicrosoft: "Microsoft 365", config.ProviderGoogle: "Gmail", config.ProviderGeneric: "generic OAuth provider"}[a.Provider]
	if a.Flow == config.FlowClientCredentials {
		t += " app-only"
	}
	return t
}

// mech is the SASL mechanism of every snippet: XOAUTH2 is what Microsoft
// accepts, Gmail accepts it beside OAUTHBEARER, and the Cyrus SASL plugins
// mbsync relies on implement only XOAUTH2.
const mech = "XOAUTH2"

// server returns the account's server for proto, or an error naming the
// key to set.
func (s *snippet) server(proto string) (config.Server, error) {
	srv, err := s.a.Server(proto)
	if err != nil {
		return srv, fmt.Errorf("%s needs the account's %s server: %w", s.client, protoTitle[proto], err)
	}
	return srv, nil
}

var protoTitle = map[string]string{config.IMAP: "IMAP", config.POP: "POP3", config.SMTP: "SMTP"}

// sharedIMAP and sharedSMTP are the notes on mailboxes other than the
// account's own, in the client's words (key names the user setting).
func (s *snippet) sharedIMAP(key string) {
	switch {
	case s.a.Flow == config.FlowClientCredentials:
		s.comment(fmt.Sprintf("App-only account: %s is the service mailbox the app opens (IMAP.AccessAsApp); for another one, change %s and keep the command.", key, key))
	case s.a.Provider != config.ProviderGoogle:
		s.comment(fmt.Sprintf("A shared mailbox: set %s to its address and keep the same command: your own token opens it (you need FullAccess on it).", key))
	}
}

func (s *snippet) sharedSMTP(userKey, fromKey string) {
	switch {
	case s.a.Flow == config.FlowClientCredentials:
		s.comment(fmt.Sprintf("App-only account: %s is the service mailbox the app sends as (SMTP.SendAsApp).", userKey))
	case s.a.Provider != config.ProviderGoogle:
		s.comment(fmt.Sprintf("Sending as a shared mailbox: keep %s = you (SMTP authenticates you, with your token) and set %s to the shared address (you need Send As); authenticating as the shared mailbox is refused (535 5.7.3).", userKey, fromKey))
	}
}

// caNote says where the client takes the account's ca_file from.
func (s *snippet) caNote() {
	if s.a.CAFile != "" {
		s.comment("ca_file: the servers' certificates are checked against " + s.a.CAFile + " (and only it).")
	}
}

// lineLimits are the longest lines the clients read (msmtp: 500
// characters; isync: 1022), measured on Debian 12's builds.
var lineLimits = map[string]int{"msmtp": 500, "mbsync": 1022}

func (s *snippet) lineWarnings() []string {
	limit := lineLimits[s.client]
	if limit == 0 {
		return nil
	}
	var w []string
	for i, l := range strings.Split(s.b.String(), "\n") {
		if len(l) > limit && !strings.HasPrefix(l, "#") {
			w = append(w, fmt.Sprintf("line %d of the %s snippet has %d characters; %s reads at most %d: use shorter paths (install oauth2mail on $PATH, keep the config in its default place)", i+1, s.client, len(l), s.client, limit))
		}
	}
	return w
}

func hostPort(srv config.Server) string { return net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port)) }

// mailURL is scheme://user@host:port with the user percent-encoded
// (user@example.com becomes user%40example.com), as mutt and aerc want.
func mailURL(scheme, user string, srv config.Server, path string) string {
	u := url.URL{Scheme: scheme, User: url.User(user), Host: hostPort(srv), Path: path}
	return u.String()
}

func (s *snippet) msmtp() error {
	smtp, err := s.server(config.SMTP)
	if err != nil {
		return err
	}
	s.header("Add it to ~/.msmtprc (or ~/.config/msmtp/config; chmod 600), then: msmtp -a " + s.a.Name + " RECIPIENT < MESSAGE")
	s.comment("msmtp runs passwordeval before every send and builds the XOAUTH2 string from the raw token itself.")
	s.caNote()
	kv := func(k, v string) { s.line("%-15s%s", k, v) }
	kv("account", s.a.Name)
	kv("host", smtp.Host)
	kv("port", strconv.Itoa(smtp.Port))
	kv("tls", "on")
	kv("tls_starttls", scheme(smtp, "on", "off"))
	if s.a.CAFile != "" {
		kv("tls_trust_file", msmtpArg(s.a.CAFile))
	}
	kv("auth", "xoauth2")
	kv("user", s.a.Email)
	kv("from", s.a.Email)
	kv("passwordeval", msmtpQuote(s.cmd))
	s.sharedSMTP("user", "from")
	return nil
}

func (s *snippet) mbsync() error {
	imap, err := s.server(config.IMAP)
	if err != nil {
		return err
	}
	n := s.a.Name
	dir := "~/Mail/" + n + "/"
	s.header("Add it to ~/.mbsyncrc; create the local folder once (mbsync does not): mkdir -p " + dir + "; then: mbsync " + n)
	s.comment("mbsync runs PassCmd at every login; a Cyrus SASL XOAUTH2 plugin builds the XOAUTH2 string from the raw token",
		"(Debian/Ubuntu: apt install libsasl2-modules-kdexoauth2; Fedora: dnf install cyrus-sasl-xoauth2; elsewhere build github.com/moriyoshi/cyrus-sasl-xoauth2).",
		"SSLType is the name isync 1.4 knows (Debian 12); isync 1.5 calls it TLSType and still reads SSLType. Far/Near need isync 1.4 or later.")
	s.caNote()
	s.line("IMAPAccount %s", n)
	s.line("Host %s", imap.Host)
	s.line("Port %d", imap.Port)
	s.line("User %s", mbsyncQuote(s.a.Email))
	s.line("PassCmd %s", mbsyncQuote(s.cmd))
	s.line("AuthMechs XOAUTH2")
	s.line("SSLType %s", scheme(imap, "STARTTLS", "IMAPS"))
	if s.a.CAFile != "" {
		s.line("CertificateFile %s", mbsyncQuote(s.a.CAFile))
	}
	s.sharedIMAP("User")
	s.line("")
	s.line("IMAPStore %s-remote", n)
	s.line("Account %s", n)
	s.line("")
	s.line("MaildirStore %s-local", n)
	s.line("Path %s", dir)
	s.line("Inbox %sINBOX", dir)
	s.line("SubFolders Verbatim")
	s.line("")
	s.line("Channel %s", n)
	s.line("Far :%s-remote:", n)
	s.line("Near :%s-local:", n)
	s.line("Patterns *")
	s.line("Create Near")
	s.line("SyncState *")
	return nil
}

// readSend returns the IMAP and SMTP servers of a client that reads and
// sends.
func (s *snippet) readSend() (imap, smtp config.Server, err error) {
	if imap, err = s.server(config.IMAP); err == nil {
		smtp, err = s.server(config.SMTP)
	}
	return imap, smtp, err
}

// scheme returns the client's word for srv's TLS mode: starttls, or
// implicit for TLS from the first byte.
func scheme(srv config.Server, starttls, implicit string) string {
	if srv.TLS == config.TLSImplicit {
		return implicit
	}
	return starttls
}

func (s *snippet) mutt() error {
	imap, smtp, err := s.readSend()
	if err != nil {
		return err
	}
	if s.client == "neomutt" {
		s.header("Put it in ~/.config/neomutt/neomuttrc (or source it from there), then: neomutt")
	} else {
		s.header("Put it in ~/.muttrc (or source it from there), then: mutt. XOAUTH2 needs Mutt 2.0 or later (Debian 12: 2.2).")
	}
	s.comment(clientTitle[s.client] + " runs the *_oauth_refresh_command at every login and builds the XOAUTH2 string from the raw token itself.")
	s.caNote()
	set := func(k, v string) { s.line("set %s = %s", k, v) }
	imapScheme, smtpScheme := scheme(imap, "imap", "imaps"), scheme(smtp, "smtp", "smtps")
	set("from", muttQuote(s.a.Email))
	set("imap_user", muttQuote(s.a.Email))
	s.sharedIMAP("imap_user")
	set("folder", muttQuote(imapScheme+"://"+hostPort(imap)+"/"))
	set("spoolfile", muttQuote("+INBOX"))
	set("imap_authenticators", muttQuote("xoauth2"))
	set("imap_oauth_refresh_command", muttQuote(s.cmd))
	set("smtp_url", muttQuote(mailURL(smtpScheme, s.a.Email, smtp, "/")))
	set("smtp_authenticators", muttQuote("xoauth2"))
	set("smtp_oauth_refresh_command", muttQuote(s.cmd))
	s.sharedSMTP("the user in smtp_url", "from")
	s.comment("imap:// and smtp:// upgrade with STARTTLS; ssl_force_tls refuses any connection without TLS.")
	set("ssl_starttls", "yes")
	set("ssl_force_tls", "yes")
	if s.a.CAFile != "" {
		s.comment("ssl_ca_certificates_file exists in GnuTLS builds (Debian's); an OpenSSL build has none: drop the line and start it as SSL_CERT_FILE=" + shellQuote(s.a.CAFile) + " " + s.client + ".")
		set("ssl_ca_certificates_file", muttQuote(s.a.CAFile))
	}
	return nil
}

func (s *snippet) aerc() error {
	imap, smtp, err := s.readSend()
	if err != nil {
		return err
	}
	s.header("Add it to ~/.config/aerc/accounts.conf (chmod 600: aerc refuses a file others can read), then: aerc")
	s.comment("aerc runs source-cred-cmd once, when it starts: a reconnect after the token's hour may fail; restart aerc then.",
		"outgoing-cred-cmd runs before every send (outgoing-cred-cmd-cache = false).")
	if s.a.CAFile != "" {
		s.comment("ca_file: aerc has no CA setting; on Linux start it as: SSL_CERT_FILE=" + shellQuote(s.a.CAFile) + " aerc")
	}
	imapScheme, smtpScheme := scheme(imap, "imap+xoauth2", "imaps+xoauth2"), scheme(smtp, "smtp+xoauth2", "smtps+xoauth2")
	kv := func(k, v string) { s.line("%-23s = %s", k, v) }
	s.line("[%s]", s.a.Name)
	kv("source", iniValue(mailURL(imapScheme, s.a.Email, imap, "")))
	kv("source-cred-cmd", iniValue(s.cmd))
	s.sharedIMAP("the user in source")
	kv("outgoing", iniValue(mailURL(smtpScheme, s.a.Email, smtp, "")))
	kv("outgoing-cred-cmd", iniValue(s.cmd))
	kv("outgoing-cred-cmd-cache", "false")
	if smtp.TLS == config.TLSStartTLS {
		s.comment("aerc 0.14 (Debian 12) needs smtp-starttls for STARTTLS; aerc 0.15 and later always use it on smtp:// and only note that the line is obsolete.")
		kv("smtp-starttls", "yes")
	}
	kv("from", iniValue(s.a.Email))
	s.sharedSMTP("the user in outgoing", "from")
	return nil
}

// FetchmailTokenFile is where the fetchmail snippet keeps the access token
// for fetchmail's passwordfile (0600); logout removes it.
func FetchmailTokenFile(stateDir, account string) string {
	return filepath.Join(stateDir, account+".fetchmail-token")
}

func (s *snippet) fetchmail() error {
	imap, err := s.server(config.IMAP)
	if err != nil {
		return err
	}
	tokenFile := FetchmailTokenFile(s.p.StateDir, s.a.Name)
	s.header("Add it to ~/.fetchmailrc (chmod 600), then: fetchmail")
	s.comment("Debian 12's fetchmail 6.4 (and every fetchmail 6 without distribution patches) has no OAuth mechanism:",
		"this needs fetchmail 7, or a fetchmail 6 with the OAUTHBEARER and passwordfile patches (openSUSE's, for one).",
		"On Debian 12, fetch with mbsync instead: oauth2mail config "+s.a.Name+" mbsync",
		"fetchmail has no credential command: preconnect writes a fresh token (mode 0600) to passwordfile",
		"before every poll, and fetchmail reads it then. Create the file once before the first run:",
		"  (umask 077; "+s.cmd+" > "+shellQuote(tokenFile)+")",
		"auth oauthbearer tries OAUTHBEARER, then XOAUTH2 (all Microsoft offers).")
	s.caNote()
	preconnect := "umask 077; " + s.cmd + " > " + shellQuote(tokenFile+".new") + " && mv -f " + shellQuote(tokenFile+".new") + " " + shellQuote(tokenFile)
	q := func(v string) (string, error) { return fetchmailQuote(v) }
	user, err := q(s.a.Email)
	if err != nil {
		return err
	}
	file, err := q(tokenFile)
	if err != nil {
		return err
	}
	pre, err := q(preconnect)
	if err != nil {
		return err
	}
	s.line("poll %s protocol IMAP port %d auth oauthbearer", imap.Host, imap.Port)
	s.line("    user %s there", user)
	s.sharedIMAP("user")
	s.line("    passwordfile %s", file)
	s.line("    preconnect %s", pre)
	if imap.TLS == config.TLSImplicit {
		s.line("    ssl")
	} else {
		s.line("    sslproto 'TLS1.2+'")
	}
	s.line("    sslcertck")
	if s.a.CAFile != "" {
		ca, err := q(s.a.CAFile)
		if err != nil {
			return err
		}
		s.line("    sslcertfile %s", ca)
	}
	return nil
}
