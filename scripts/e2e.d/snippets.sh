# scripts/e2e.d/snippets.sh - sourced by scripts/e2e: `oauth2mail config demo CLIENT` prints a snippet,
# and the real client runs it AS PRINTED (never edited): msmtp sends, mbsync syncs, NeoMutt and Mutt show
# the inbox under tmux and send through the printed SMTP settings, aerc shows the inbox and sends.
# fetchmail: Debian 12's 6.4 has no OAuth mechanism at all, so its snippet cannot run here; the check is
# that config says so on stderr. The same again with the binary and the config in directories whose
# names need quoting (blanks, a quote, $ and backquotes).
# shellcheck shell=bash disable=SC2154  # state, ca, U, WRONG_TOKEN ... are scripts/e2e's

section "oauth2mail config: client snippets, run as printed by the real clients"

snip="$state/snippets"
mkdir -p "$snip"
# With E2E_WRONG_TOKEN=1, oauth2mail on PATH is the wrong-token stand-in and the real binary is in
# bin/real. Snippets are made with the real one first on PATH, so they name plain `oauth2mail`, and
# the clients then meet the stand-in: every client check below must FAIL.
snippet_path="$PATH"
[ "$WRONG_TOKEN" != 1 ] || snippet_path="$state/bin/real:$PATH"

# snippet CLIENT [OAUTH2MAIL-OPTION...]: oauth2mail config demo CLIENT > $snip/CLIENT (0600), stderr in
# $snip/CLIENT.err; exit 0, stdout a snippet (comments first), nothing of oauth2mail's voice on stdout
snippet() {
  local client="$1"; shift
  (umask 077; PATH="$snippet_path" oauth2mail config demo "$client" "$@" >"$snip/$client" 2>"$snip/$client.err") || {
    cat "$snip/$client.err"; return 1; }
  echo "--- $snip/$client"; cat "$snip/$client"; echo "--- stderr:"; cat "$snip/$client.err"
  head -1 "$snip/$client" | grep -q "^# .* oauth2mail config demo $client\$" && ! grep -q '^oauth2mail:' "$snip/$client"
}

# the command the snippets must run: this config named, as $OAUTH2MAIL_CONFIG chose it
names_config() { grep -qF -- "oauth2mail token demo --config $OAUTH2MAIL_CONFIG" "$snip/$1"; }
snippet_ok() { snippet "$1" && names_config "$1" && ! grep -q 'warning' "$snip/$1.err"; }
for client in msmtp mbsync neomutt mutt aerc; do
  check "config demo $client: a snippet on stdout naming oauth2mail token demo --config \$OAUTH2MAIL_CONFIG; no warning on stderr" \
    snippet_ok "$client"
done

# msmtp_sends FILE SUBJECT: msmtp -C FILE (the printed snippet) sends; the sink has the message
msmtp_sends() {
  printf 'From: %s\nTo: friend@example.test\nSubject: %s\n\nsent by scripts/e2e.d/snippets.sh\n' "$U" "$2" \
    | timeout "$CLIENT_TIMEOUT" msmtp -C "$1" -a demo friend@example.test && sink_has "Subject: $2"
}
check "msmtp with the printed snippet sends; message in the sink" msmtp_sends "$snip/msmtp" "e2e snippet msmtp"

# mbsync_syncs FILE: mbsync -c FILE demo with a fresh HOME, after the one command the snippet says to run
# first (mkdir -p ~/Mail/demo/); the welcome message is then in ~/Mail/demo/INBOX
mbsync_syncs() {
  local home mkdir_cmd
  home="$(mktemp -d "$state/mbsync-home.XXXXXX")"
  mkdir_cmd="$(sed -n 's/.*create the local folder once (mbsync does not): \(mkdir -p [^;]*\);.*/\1/p' "$1")"
  [ -n "$mkdir_cmd" ] || { echo "the snippet names no mkdir command"; return 1; }
  echo "as the snippet says: $mkdir_cmd"
  HOME="$home" sh -c "$mkdir_cmd" || return
  HOME="$home" timeout "$CLIENT_TIMEOUT" mbsync -c "$1" demo || return
  grep -rq "Subject: Welcome to the sandbox, $U" "$home/Mail/demo/INBOX"
}
check "mbsync with the printed snippet syncs the inbox into ~/Mail/demo" mbsync_syncs "$snip/mbsync"

# tui_inbox NAME CMD...: CMD under tmux shows the sandbox's welcome message within NEOMUTT_TIMEOUT
tui_inbox() {
  local name="$1" sock="$state/tmux.sock" i; shift
  tmux -S "$sock" new-session -d -s "$name" -x 160 -y 40 "$(printf '%q ' "$@")" || return
  for ((i = 0; i < NEOMUTT_TIMEOUT * 10; i++)); do
    if tmux -S "$sock" capture-pane -p -t "$name" | grep -q "Welcome to the sandbox, $U"; then
      tmux -S "$sock" capture-pane -p -t "$name" | grep -v '^$' | head -3
      tmux -S "$sock" kill-session -t "$name"; return 0
    fi
    sleep 0.1
  done
  tmux -S "$sock" capture-pane -p -t "$name" | grep -v '^$'
  tmux -S "$sock" kill-session -t "$name"; return 1
}
# mutt_sends CLIENT FILE SUBJECT: CLIENT -F FILE sends in batch mode through the printed smtp_url
mutt_sends() {
  echo "sent by scripts/e2e.d/snippets.sh" \
    | timeout "$CLIENT_TIMEOUT" "$1" -n -F "$2" -s "$3" friend@example.test && sink_has "Subject: $3"
}
for client in neomutt mutt; do
  check "$client with the printed snippet shows the inbox (IMAP STARTTLS, XOAUTH2)" \
    tui_inbox "snip-$client" "$client" -n -F "$snip/$client"
  check "$client with the printed snippet sends through its smtp_url (XOAUTH2); message in the sink" \
    mutt_sends "$client" "$snip/$client" "e2e snippet $client"
done

# aerc reads only ~/.config/aerc/accounts.conf: the snippet is that file of a fresh XDG_CONFIG_HOME; it
# has no CA setting, and the snippet says to start it as SSL_CERT_FILE=CA aerc
aerc_env() {
  local dir="$state/aerc-config" ca_env
  mkdir -p "$dir/aerc" && cp "$snip/aerc" "$dir/aerc/accounts.conf" && chmod 600 "$dir/aerc/accounts.conf" || return
  ca_env="$(sed -n 's/^# ca_file: .*start it as: \(SSL_CERT_FILE=[^ ]*\) aerc$/\1/p' "$snip/aerc")"
  [ "$ca_env" = "SSL_CERT_FILE=$ca" ] || { echo "the snippet does not say to start aerc as SSL_CERT_FILE=$ca aerc"; return 1; }
  aerc_run=(env "XDG_CONFIG_HOME=$dir" "$ca_env" EDITOR=true aerc)
}
aerc_run=()
aerc_inbox() { aerc_env && tui_inbox snip-aerc "${aerc_run[@]}"; }
check "aerc with the printed accounts.conf shows the inbox (imap+xoauth2, STARTTLS)" aerc_inbox
# aerc_sends SUBJECT: aerc mailto:... opens the review screen (EDITOR=true); y sends through outgoing
aerc_sends() {
  local sock="$state/tmux.sock" i
  aerc_env || return
  tmux -S "$sock" new-session -d -s snip-aerc-send -x 160 -y 40 \
    "$(printf '%q ' "${aerc_run[@]}" "mailto:friend@example.test?subject=${1// /%20}&body=sent%20by%20aerc")" || return
  for ((i = 0; i < NEOMUTT_TIMEOUT * 10; i++)); do
    tmux -S "$sock" capture-pane -p -t snip-aerc-send | grep -q "Send this email?" && break
    sleep 0.1
  done
  tmux -S "$sock" send-keys -t snip-aerc-send y
  for ((i = 0; i < CLIENT_TIMEOUT * 10; i++)); do
    sink_has "Subject: $1" && break
    sleep 0.1
  done
  tmux -S "$sock" capture-pane -p -t snip-aerc-send | grep -v '^$' | tail -4
  tmux -S "$sock" kill-session -t snip-aerc-send
  sink_has "Subject: $1"
}
check "aerc with the printed accounts.conf sends through outgoing (smtp+xoauth2, STARTTLS); message in the sink" \
  aerc_sends "e2e snippet aerc"

fetchmail_says() {
  snippet fetchmail || return
  grep -q '^poll localhost protocol IMAP port' "$snip/fetchmail" \
    && grep -q "this fetchmail 6\.[0-9.]* has no OAuth mechanism" "$snip/fetchmail.err"
}
check "fetchmail: Debian 12's 6.4 has no OAuth, so the printed snippet cannot run here: stderr says so" fetchmail_says

plugin_missing_named() {
  local empty="$state/empty-sasl-dir"
  mkdir -p "$empty"
  SASL_PATH="$empty" snippet mbsync || return
  grep -q "^oauth2mail: warning: mbsync needs a Cyrus SASL XOAUTH2 plugin and there is none in $empty: Debian/Ubuntu: apt install libsasl2-modules-kdexoauth2" "$snip/mbsync.err"
}
check "mbsync: with SASL_PATH at an empty directory, a warning names libsasl2-modules-kdexoauth2 (stdout still the snippet)" \
  plugin_missing_named

# ----------------------------------------------------------------------------- paths that need quoting
# The binary and the config in directories whose names break naive quoting; `oauth2mail` on PATH is
# then another file, so the snippets name the binary by its full path (and say why on stderr).
odd="$state/mail tools/it's here"
odd_config="$state/my config/\$HOME\`x\`.toml"
odd_setup() {
  mkdir -p "$odd" "$(dirname "$odd_config")" || return
  cp "$OAUTH2MAIL_CONFIG" "$odd_config" || return
  if [ "$WRONG_TOKEN" = 1 ]; then cp "$state/bin/real/oauth2mail" "$odd/oauth2mail"; else cp "$state/bin/oauth2mail" "$odd/oauth2mail"; fi
  for client in msmtp mbsync neomutt mutt; do
    (umask 077; "$odd/oauth2mail" config demo "$client" --config "$odd_config" >"$snip/odd-$client" 2>"$snip/odd-$client.err") || return
    grep -qF -- "oauth2mail on \$PATH is $state/bin/oauth2mail, not this program" "$snip/odd-$client.err" || return
  done
  grep passwordeval "$snip/odd-msmtp"; grep PassCmd "$snip/odd-mbsync"; grep imap_oauth_refresh_command "$snip/odd-neomutt"
  if [ "$WRONG_TOKEN" = 1 ]; then
    # as bin/ above: the path the snippets name becomes the wrong-token stand-in
    mkdir -p "$odd/real" && mv "$odd/oauth2mail" "$odd/real/oauth2mail" && cp "$state/bin/oauth2mail" "$odd/oauth2mail"
  fi
}
check "config run from \"$odd\" with --config \"$odd_config\": the full path named, stderr says why" odd_setup
check "msmtp runs the quoted passwordeval as printed; message in the sink" msmtp_sends "$snip/odd-msmtp" "e2e snippet odd msmtp"
check "mbsync runs the quoted PassCmd as printed" mbsync_syncs "$snip/odd-mbsync"
check "neomutt runs the quoted smtp_oauth_refresh_command as printed; message in the sink" \
  mutt_sends neomutt "$snip/odd-neomutt" "e2e snippet odd neomutt"
check "mutt runs the quoted imap_oauth_refresh_command as printed (inbox under tmux)" \
  tui_inbox snip-odd-mutt mutt -n -F "$snip/odd-mutt"
