# shellcheck shell=bash disable=SC2154  # state, U, O, WRONG_TOKEN, SANDBOX_*: set by scripts/e2e
# scripts/e2e.d/hygiene.sh - sourced by scripts/e2e: no token leaves oauth2mail but where it is asked
# for, against the real OAuth server and Dovecot (the fake-IdP side is cmd/oauth2mail/testdata/
# hygiene_*.txtar). The secrets are the real ones: every access and refresh token in oauth2mail's
# state, read by opening the sealed state files here with their keys (key file or keyring item,
# AES-256-GCM as internal/cache seals them). Then, with -v: token, xoauth2 and oauthbearer print
# exactly their one line and nothing else; status --json and oauth2mail test (IMAP, POP3, SMTP:
# Dovecot accepting, and refusing a mailbox that is not delegated, and a port nobody listens on) put
# no token on stdout or stderr, nor the SASL string, nor any 23 consecutive characters of either, as
# they are or in base64; neither does any file written under $HOME and $XDG_RUNTIME_DIR meanwhile,
# nor any file in the state directory but the sealed state.
# With E2E_WRONG_TOKEN=1 these checks still pass: they run the real binary.

section "secret hygiene against the real OAuth server and Dovecot"

hy="$state/hygiene"
mkdir -p "$hy" && chmod 700 "$hy"
hy_bin="$(command -v oauth2mail)"
[ "$WRONG_TOKEN" != 1 ] || hy_bin="$state/bin/real/oauth2mail"
hy_state="$XDG_STATE_HOME/oauth2mail"
touch "$hy/since"   # files written after this are scanned

# hy_secrets: every access and refresh token in the sealed state files, one a line, in $hy/secrets
hy_secrets() {
  /usr/bin/python3 -c 'import cryptography' 2>/dev/null \
    || { echo "dependency: python3-cryptography is missing; install it with: apt-get install -y python3-cryptography"; return 1; }
  (umask 077; /usr/bin/python3 - "$hy_state" >"$hy/secrets") <<'EOF'
import base64, glob, json, os, subprocess, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
magic = b"oauth2mail-state-1\n"
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json.enc"))):
    account = os.path.basename(path)[:-len(".json.enc")]
    data = open(path, "rb").read()
    hdr = len(magic) + 1
    if data[:len(magic)] != magic:
        sys.exit(f"{path}: not a state file")
    if data[len(magic)] == ord("f"):
        key = open(os.path.join(sys.argv[1], account + ".key")).read().strip()
    else:
        key = subprocess.run(["secret-tool", "lookup", "service", "oauth2mail", "username", account],
                             capture_output=True, text=True, check=True).stdout.strip()
    nonce, sealed = data[hdr:hdr + 12], data[hdr + 12:]
    st = json.loads(AESGCM(base64.b64decode(key)).decrypt(nonce, sealed, data[:hdr] + account.encode()))
    for field in ("access_token", "refresh_token", "client_secret"):
        if st.get(field):
            print(st[field])
    print(f"{account}: {', '.join(f for f in ('access_token', 'refresh_token') if st.get(f))}", file=sys.stderr)
EOF
  local n; n="$(wc -l <"$hy/secrets")"
  echo "$n secrets"; [ "$n" -ge 4 ]
}
check "the sealed states open with their keys here: the real tokens to look for" hy_secrets

# hy_scan FILE...: no FILE holds a window of 16 characters at every 8th offset (or the middle or
# last one) of a secret in $hy/secrets, as it is or in base64 (three alignments, both alphabets):
# noleak's method, so any 23 consecutive characters of a secret are found
hy_scan() {
  /usr/bin/python3 - "$hy/secrets" "$@" <<'EOF'
import base64, sys
window, stride = 16, 8
index = {}
def add(v, s):
    for i in list(range(0, len(v) - window + 1, stride)) + [(len(v) - window) // 2, len(v) - window]:
        index[v[i:i + window]] = s
for s in (l.strip() for l in open(sys.argv[1])):
    if len(s) < window:
        continue
    add(s, s)
    for k in range(3):
        for enc in (base64.standard_b64encode, base64.urlsafe_b64encode):
            e = enc(b"\0" * k + s.encode()).decode()
            lo, hi = (4 if k else 0), 4 * ((k + len(s)) // 3)
            if hi - lo >= window:
                add(e[lo:hi], s)
leaks = 0
for path in sys.argv[2:]:
    data = open(path, "rb").read().decode("latin-1")
    for s in {index[data[i:i + window]] for i in range(len(data) - window + 1) if data[i:i + window] in index}:
        print(f"LEAK: {path} holds a piece of a token ({s[:4]}..., {len(s)} characters)")
        leaks += 1
sys.exit(1 if leaks else 0)
EOF
}

# hy_run NAME ARGS...: oauth2mail ARGS -v, stdout and stderr in $hy/NAME.out and .err, exit code in .rc
hy_run() {
  local name="$1" rc=0; shift
  "$hy_bin" "$@" -v >"$hy/$name.out" 2>"$hy/$name.err" || rc=$?
  echo "$rc" >"$hy/$name.rc"
  echo "\$ oauth2mail $* -v -> exit $rc"; cut -c1-160 "$hy/$name.err"
}
# hy_one_line NAME WANT ARGS...: exit 0; stdout is exactly the line WANT; stderr clean
hy_one_line() {
  local name="$1" want="$2"; shift 2
  hy_run "$name" "$@"
  [ "$(cat "$hy/$name.rc")" = 0 ] || return
  if [ "$(cat "$hy/$name.out")" != "$want" ] || [ "$(wc -l <"$hy/$name.out")" != 1 ]; then
    echo "stdout is not exactly the one line asked for"; return 1
  fi
  hy_scan "$hy/$name.err"
}
# hy_clean CODE NAME ARGS...: exit CODE; neither stdout nor stderr holds a piece of a token
hy_clean() {
  local code="$1" name="$2"; shift 2
  hy_run "$name" "$@"
  [ "$(cat "$hy/$name.rc")" = "$code" ] || { echo "exit $(cat "$hy/$name.rc"), want $code"; return 1; }
  hy_scan "$hy/$name.out" "$hy/$name.err"
}

hy_token="$("$hy_bin" token demo 2>/dev/null || true)"
hy_tok_ok() { grep -qxF -- "$hy_token" "$hy/secrets"; }
check "token demo is the access token in the sealed state" hy_tok_ok
check "token demo -v: stdout the token alone; stderr holds no piece of any token" \
  hy_one_line token "$hy_token" token demo
check "xoauth2 demo --user $S -v: stdout the SASL string alone; stderr clean" \
  hy_one_line xoauth2 "$(printf 'user=%s\001auth=Bearer %s\001\001' "$S" "$hy_token" | base64 -w0)" xoauth2 demo --user "$S"
check "oauthbearer demo --host --port -v: stdout the SASL string alone; stderr clean" \
  hy_one_line oauthbearer "$(printf 'n,a=%s,\001host=localhost\001port=%s\001auth=Bearer %s\001\001' "$U" "$SANDBOX_IMAP_PORT" "$hy_token" | base64 -w0)" \
  oauthbearer demo --host localhost --port "$SANDBOX_IMAP_PORT"
check "status --json -v: no piece of any token" hy_clean 0 status status --json

for hy_proto in imap pop smtp; do
  check "test demo $hy_proto -v (Dovecot accepts): the transcript holds no piece of the token or SASL string" \
    hy_clean 0 "test-$hy_proto" test demo "$hy_proto"
  check "test demo $hy_proto --user $O -v (Dovecot refuses, exit 6): no piece of the token either" \
    hy_clean 6 "refused-$hy_proto" test demo "$hy_proto" --user "$O"
done
check "test demo smtp on a port nobody listens on -v (exit 4): clean" \
  hy_clean 4 closed test demo smtp --server "localhost:$((SANDBOX_PORT_BASE + 1))" --tls

# hy_files: files written under $HOME and $XDG_RUNTIME_DIR since this section began, and every file
# of the state directory, but the sealed state (and fetchmail's token file, by design the token)
hy_files() {
  local files=()
  mapfile -t files < <({ find "$HOME" "$XDG_RUNTIME_DIR" -type f -newer "$hy/since"; find "$hy_state" -type f; } \
    | grep -v -e '\.json\.enc$' -e '\.fetchmail-token$' | sort -u)
  echo "${#files[@]} files:"; printf '  %s\n' "${files[@]}"
  [ "${#files[@]}" = 0 ] || hy_scan "${files[@]}"
}
check "files written meanwhile under \$HOME and \$XDG_RUNTIME_DIR, and the state directory: no piece of a token" hy_files
