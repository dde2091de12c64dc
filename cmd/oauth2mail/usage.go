package main

const usage = `Usage: oauth2mail COMMAND [ACCOUNT] [OPTIONS]

oauth2mail logs in to your mail provider once (OAuth 2.0) and then hands
fresh access tokens to mail clients: msmtp, mbsync, mutt/neomutt, scripts.

Commands:
  login ACCOUNT [--device | --browser] [--no-open] [--secret-stdin]
                       sign in (browser with PKCE, or device code for SSH);
                       app-only accounts (flow = "client-credentials"): store
                       the client secret, read hidden from the terminal or,
                       with --secret-stdin, from standard input
  token ACCOUNT        print a valid access token (refreshed when needed)
  xoauth2 ACCOUNT [--user MAILBOX]
                       print the base64 SASL XOAUTH2 string; --user names a
                       shared mailbox you have access to
  oauthbearer ACCOUNT [--user MAILBOX] [--host HOST --port PORT]
                       print the base64 SASL OAUTHBEARER (RFC 7628) string
  status [ACCOUNT] [--json]
                       show accounts, token expiry, last refresh, store
  logout ACCOUNT       forget the account's stored tokens and key
  agent [--socket PATH]
                       run the agent in the foreground: serves the commands
                       above to your processes (cron jobs without D-Bus too),
                       refreshes ahead of time, keeps logins alive, and says
                       once when one is lost (see the README)
  config ACCOUNT msmtp|mbsync|neomutt|mutt|aerc|fetchmail
                       print a working client configuration for the account
                       (servers, XOAUTH2, the token command); warnings on stderr
  test ACCOUNT imap|pop|smtp [--user MAILBOX] [--server HOST:PORT]
       [--tls | --starttls] [--ca FILE]
                       log in to the mail server as a mail client does
                       (XOAUTH2), then LIST / STAT; on a refusal, say why and
                       what to do (exit 6); -v shows the dialogue, token
                       redacted
  version              print the version

Options for every command:
  --config FILE        config file (default $OAUTH2MAIL_CONFIG, else
                       $XDG_CONFIG_HOME/oauth2mail/config.toml)
  -v, --verbose        explain what happens on stderr (token lengths and
                       expiry, never token values)
  -h, --help           show this help
  --no-agent           token, xoauth2, oauthbearer, status: do not ask the
                       agent (or set OAUTH2MAIL_AGENT=off; OAUTH2MAIL_AGENT=PATH
                       names its socket)

First login also creates the account:
  oauth2mail login work --provider microsoft --email me@contoso.com \
      --client-id 00000000-0000-0000-0000-000000000000 [--tenant contoso.com]

Examples:
  msmtp:  auth xoauth2 + passwordeval "oauth2mail token work"
  mbsync: AuthMechs XOAUTH2 + PassCmd "oauth2mail token work"
  mutt:   set imap_authenticators="xoauth2"
          set imap_oauth_refresh_command="oauth2mail token work"

Tokens are stored in $XDG_STATE_HOME/oauth2mail/ACCOUNT.json.enc, encrypted
(AES-256-GCM) with a key kept in the OS keyring (or, with store = "file", in
a 0600 file beside it). Tokens are printed on stdout only, one line.

Exit codes:
  0  success
  1  unexpected internal error (please report it)
  2  usage or config error: fix the command or the config
  3  login needed: run oauth2mail login ACCOUNT
  4  temporary failure (network, timeout, identity provider down): retry later
  5  token store unavailable (no keyring / D-Bus, keyring locked, corrupt state)
  6  the mail server rejected the credentials
`
