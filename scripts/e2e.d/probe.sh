# shellcheck shell=bash disable=SC2154  # state, U, S, O, ca, SANDBOX, SANDBOX_*: set by scripts/e2e
# scripts/e2e.d/probe.sh - sourced by scripts/e2e: `oauth2mail test ACCOUNT imap|pop|smtp` logs in to
# the sandbox's Dovecot as a mail client does and explains a refusal. Successes over every port the
# sandbox has (the account's servers, and IMAPS / POP3 STLS / submissions through --server and
# --tls/--starttls), a shared mailbox, and refusals with Dovecot's exact replies:
#   * a token for a mailbox not delegated to its owner (--user $O with $U's token);
#   * a token the OAuth server revoked while oauth2mail still holds it as valid: account
#     'probe-revoked' ($O, in a config of its own) logs in, works, then "$SANDBOX revoke $O" revokes
#     its grant (what "remove app access" does in an account portal). oauth2mail learns of it only
#     at its next refresh, an hour away, so `test` sends the revoked token: the real way a user
#     meets "AUTHENTICATE failed" with a token that looks fine. ($O's grants are revoked again,
#     with a new login, in the suite's own revocation section later.)
# With E2E_WRONG_TOKEN=1 these checks still pass: the stand-in hands `test` to the real binary.

section "oauth2mail test: a real client dialogue with Dovecot, refusals explained"

pr="$state/probe"
mkdir -p "$pr"
challenge='{"status":"401","schemes":"bearer","scope":"mail"}'   # Dovecot's XOAUTH2 error challenge

# probe_run ARGS...: oauth2mail test ARGS; stdout, stderr and exit code in $pr/out, $pr/err, $pr/rc
probe_run() {
  local rc=0
  oauth2mail test "$@" >"$pr/out" 2>"$pr/err" || rc=$?
  echo "$rc" >"$pr/rc"
  echo "\$ oauth2mail test $* -> exit $rc"; cat "$pr/out" "$pr/err"
}
# probe_ok REGEX ARGS...: exit 0, and stdout is one line matching REGEX (extended, anchored)
probe_ok() {
  local want="$1"; shift
  probe_run "$@"
  [ "$(cat "$pr/rc")" = 0 ] && [ "$(wc -l <"$pr/out")" = 1 ] && grep -Eq "^$want\$" "$pr/out"
}
# probe_fails CODE ERROR [HINT] -- ARGS...: exit CODE; stderr's first line is exactly
# "oauth2mail: error: ERROR"; some hint line contains HINT; stdout empty
probe_fails() {
  local code="$1" want="$2" hint="" ; shift 2
  if [ "$1" != -- ]; then hint="$1"; shift; fi
  shift
  probe_run "$@"
  [ "$(cat "$pr/rc")" = "$code" ] && [ ! -s "$pr/out" ] || return
  [ "$(head -1 "$pr/err")" = "oauth2mail: error: $want" ] || { echo "want: oauth2mail: error: $want"; return 1; }
  [ -z "$hint" ] || grep -F "oauth2mail: hint: " "$pr/err" | grep -qF -- "$hint"
}

ok_line() { echo "$1: localhost:$2 \\($3\\): authenticated as $4 with XOAUTH2$5"; }
list_ok='; LIST ok \([0-9]+ mailbox(es)?\)'
stat_ok='; STAT ok \([0-9]+ messages?, [0-9]+ octets\)'

check "test demo imap: STARTTLS on $SANDBOX_IMAP_PORT (imap_server), XOAUTH2, LIST" \
  probe_ok "$(ok_line imap "$SANDBOX_IMAP_PORT" STARTTLS "$U" "$list_ok")" demo imap
check "test demo pop: POP3S on $SANDBOX_POP3S_PORT (pop_server), AUTH XOAUTH2, STAT" \
  probe_ok "$(ok_line pop "$SANDBOX_POP3S_PORT" TLS "$U" "$stat_ok")" demo pop
check "test demo smtp: submission with STARTTLS on $SANDBOX_SUBMISSION_PORT (smtp_server), AUTH XOAUTH2" \
  probe_ok "$(ok_line smtp "$SANDBOX_SUBMISSION_PORT" STARTTLS "$U" "")" demo smtp
check "test demo imap --server IMAPS --tls" \
  probe_ok "$(ok_line imap "$SANDBOX_IMAPS_PORT" TLS "$U" "$list_ok")" demo imap --server "localhost:$SANDBOX_IMAPS_PORT" --tls
check "test demo pop --server POP3 --starttls (STLS)" \
  probe_ok "$(ok_line pop "$SANDBOX_POP3_PORT" STARTTLS "$U" "$stat_ok")" demo pop --server "localhost:$SANDBOX_POP3_PORT" --starttls
check "test demo smtp --server submissions --tls" \
  probe_ok "$(ok_line smtp "$SANDBOX_SUBMISSIONS_PORT" TLS "$U" "")" demo smtp --server "localhost:$SANDBOX_SUBMISSIONS_PORT" --tls
check "test demo imap --user $S (delegated shared mailbox) opens it" \
  probe_ok "$(ok_line imap "$SANDBOX_IMAP_PORT" STARTTLS "$S" "$list_ok")" demo imap --user "$S"

# -v: every line of the dialogue, the SASL string on the 334 continuation (never on the AUTH line),
# and neither the token nor the SASL string anywhere
transcript_redacted() {
  local tok sasl_b64
  tok="$(oauth2mail token demo)" && sasl_b64="$(oauth2mail xoauth2 demo)" || return
  probe_run demo smtp -v || return
  [ "$(cat "$pr/rc")" = 0 ] || return
  local line
  for line in 'S: 220 .*' 'C: STARTTLS' 'C: AUTH XOAUTH2' 'S: 334 ' "C: <XOAUTH2 string, ${#sasl_b64} bytes, redacted>" \
    'S: 235 2.7.0 Logged in\.'; do
    grep -qx -- "$line" "$pr/err" || { echo "no line $line in the transcript"; return 1; }
  done
  if grep -qF -e "$tok" -e "$sasl_b64" "$pr/err"; then echo "the token or the SASL string is in the transcript"; return 1; fi
}
check "test demo smtp -v: the dialogue on stderr, SASL string on the continuation, token redacted" transcript_redacted

# ---- refusals: exit 6, Dovecot's exact replies after its decoded challenge
refused_for() { echo "demo: $1: localhost:$2: refused XOAUTH2 for $O: $3 (after the error challenge $challenge)"; }
not_own="$O is not demo's own mailbox ($U): the token's user needs access to it"
check "test demo imap --user $O (not delegated): exit 6, Dovecot's NO after the challenge" \
  probe_fails 6 "$(refused_for imap "$SANDBOX_IMAP_PORT" 'NO [AUTHENTICATIONFAILED] Authentication failed.')" \
  "$not_own" -- demo imap --user "$O"
check "test demo pop --user $O: exit 6, -ERR [AUTH]" \
  probe_fails 6 "$(refused_for pop "$SANDBOX_POP3S_PORT" '-ERR [AUTH] Authentication failed.')" \
  "$not_own" -- demo pop --user "$O"
check "test demo smtp --user $O: exit 6, 535 5.7.8" \
  probe_fails 6 "$(refused_for smtp "$SANDBOX_SUBMISSION_PORT" '535 5.7.8 Authentication failed.')" \
  "$not_own" -- demo smtp --user "$O"

cat >"$pr/probe.toml" <<EOF
# written by scripts/e2e.d/probe.sh: a token the OAuth server revokes while oauth2mail holds it
[accounts.probe-revoked]
provider        = "generic"
email           = "$O"
client_id       = "$SANDBOX_CLIENT_ID"
auth_url        = "$SANDBOX_AUTH_URL"
token_url       = "$SANDBOX_TOKEN_URL"
device_auth_url = "$SANDBOX_DEVICE_AUTH_URL"
scopes          = ["openid", "offline_access"]
store           = "file"
imap_server     = "localhost:$SANDBOX_IMAPS_PORT"
imap_tls        = "tls"
pop_server      = "localhost:$SANDBOX_POP3_PORT"
pop_tls         = "starttls"
smtp_server     = "localhost:$SANDBOX_SUBMISSIONS_PORT"
smtp_tls        = "tls"
ca_file         = "$ca"
EOF
with_probe_config() { OAUTH2MAIL_CONFIG="$pr/probe.toml" "$@"; }
check "probe-revoked: device login as $O" with_probe_config device_login probe-revoked approve_at_oauth_server "$O"
check "probe-revoked: test imap works before the revocation" with_probe_config \
  probe_ok "$(ok_line imap "$SANDBOX_IMAPS_PORT" TLS "$O" "$list_ok")" probe-revoked imap
check "the OAuth server revokes $O's grant" "$SANDBOX" revoke "$O"
still_fresh() {
  local tok; tok="$(OAUTH2MAIL_CONFIG="$pr/probe.toml" oauth2mail token probe-revoked -v 2>&1 >/dev/null)" || return
  echo "$tok"; grep -q 'cached access token' <<<"$tok"
}
check "probe-revoked: oauth2mail still hands out its cached token (it learns of revocations at refresh)" still_fresh
revoked() { echo "probe-revoked: $1: localhost:$2: refused XOAUTH2 for $O: $3 (after the error challenge $challenge)"; }
relogin="revoked at the provider (sign in again: oauth2mail login probe-revoked)"
check "revoked token: test imap exits 6 with Dovecot's reply and says to log in again" with_probe_config \
  probe_fails 6 "$(revoked imap "$SANDBOX_IMAPS_PORT" 'NO [AUTHENTICATIONFAILED] Authentication failed.')" "$relogin" -- probe-revoked imap
check "revoked token: test pop (STLS) exits 6" with_probe_config \
  probe_fails 6 "$(revoked pop "$SANDBOX_POP3_PORT" '-ERR [AUTH] Authentication failed.')" "$relogin" -- probe-revoked pop
check "revoked token: test smtp (submissions) exits 6" with_probe_config \
  probe_fails 6 "$(revoked smtp "$SANDBOX_SUBMISSIONS_PORT" '535 5.7.8 Authentication failed.')" "$relogin" -- probe-revoked smtp

# ---- what is not a refusal: another CA, the wrong TLS mode, nobody listening
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=not-the-sandbox \
  -days 1 -out "$pr/other-ca.pem" 2>/dev/null
check "test demo imap --ca ANOTHER-CA: exit 2, certificate not trusted, hint ca_file" \
  probe_fails 2 "demo: imap: localhost:$SANDBOX_IMAP_PORT: the server's certificate is not trusted: x509: certificate signed by unknown authority" \
  'set ca_file = "/path/to/ca.pem" for demo' -- demo imap --ca "$pr/other-ca.pem"
check "test demo imap --tls on the STARTTLS port: exit 2, says to use --starttls" \
  probe_fails 2 "demo: imap: localhost:$SANDBOX_IMAP_PORT: no TLS on this port: the server answered the TLS handshake in plain text" \
  "use --starttls" -- demo imap --server "localhost:$SANDBOX_IMAP_PORT" --tls
no_port=$((SANDBOX_PORT_BASE + 1))
check "test demo smtp on a port nobody listens on: exit 4 naming localhost:$no_port" \
  probe_fails 4 "demo: smtp: localhost:$no_port: cannot connect: connection refused" -- demo smtp --server "localhost:$no_port" --tls
