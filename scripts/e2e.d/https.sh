# shellcheck shell=bash disable=SC2154  # state, U, SUPPORT, SANDBOX_*: set by scripts/e2e
# scripts/e2e.d/https.sh - sourced by scripts/e2e. A browser login for an app registered with
# only an https://localhost redirect (Thunderbird-style): oidc-provider's client
# "$SANDBOX_CLIENT_ID-https" accepts exactly https://localhost:PORT (provider.mjs: PORT is the
# OAuth server's port - 80 + 443), and oauth2mail serves it over TLS with a certificate made for
# the login. Real headless Chromium plays the person: it shows its certificate warning; the person
# compares the served certificate's SHA-256 fingerprint with the one oauth2mail printed (openssl),
# then clicks Advanced and "Proceed to localhost (unsafe)", as oauth2mail's instructions say.

section "browser login with an https://localhost redirect"
https_port=$(( ${SANDBOX_ISSUER##*:} - 80 + 443 ))
https_cfg="$state/https.toml"
https_terminal="$state/https-terminal.txt"   # what oauth2mail printed for the person (stderr)
https_log="$state/https-browser.log"
cat >"$https_cfg" <<EOF
# written by scripts/e2e.d/https.sh
[accounts.tls]
provider        = "generic"
email           = "$U"
client_id       = "$SANDBOX_CLIENT_ID-https"
auth_url        = "$SANDBOX_AUTH_URL"
token_url       = "$SANDBOX_TOKEN_URL"
scopes          = ["openid", "offline_access"]
store           = "file"
redirect_uri    = "https://localhost:$https_port"
EOF

# The person at the browser: Chromium signs in on oidc-provider's pages, meets the certificate
# warning on the way back, and proceeds past it. Prints one JSON line of what it saw.
cat >"$state/https-login.mjs" <<EOF
import { withPage } from '$SUPPORT/chromium.mjs';

const [authorizeUrl, login] = process.argv.slice(2);
await withPage(20000, async (page) => {
  await page.goto(authorizeUrl);
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'sandbox');
  await page.click('button[type="submit"]');
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached' });
  await page.click('button[type="submit"]');
  // the redirect to https://localhost:PORT: Chromium's interstitial, not oauth2mail's page
  await page.waitForSelector('#details-button');
  const warning = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
  await page.click('#details-button');
  const proceed = (await page.locator('#proceed-link').innerText()).trim();
  await page.click('#proceed-link');
  await page.waitForFunction(() => document.title.startsWith('oauth2mail:'));
  const h1 = await page.locator('h1').innerText();
  console.log(JSON.stringify({
    warning: warning.match(/Your connection is not private|NET::ERR_CERT_[A-Z_]+/g), proceed, page: h1,
    at: page.url().replace(/code=[^&]+/, 'code=...'),
  }));
});
EOF

# \$BROWSER for oauth2mail: compare fingerprints first (as the printed instructions invite), then
# hand the authorize URL to Chromium. A mismatch stops here: Chromium never proceeds.
cat >"$state/https-browser" <<EOF
#!/bin/bash
set -euo pipefail
{
  printed="\$(sed -n 's/^  SHA-256 fingerprint: //p' "$https_terminal")"
  served="\$(openssl s_client -connect "127.0.0.1:$https_port" -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256)"
  served="\${served#*=}"
  echo "fingerprint printed: \$printed"
  echo "fingerprint served:  \$served"
  if [ -z "\$printed" ] || [ "\$printed" != "\$served" ]; then echo "mismatch: not proceeding"; exit 1; fi
  if node "$state/https-login.mjs" "\$1" "$U"; then echo "--- browser done"; else echo "--- browser failed"; exit 1; fi
} >>"$https_log" 2>&1
EOF
chmod +x "$state/https-browser"

https_login() {
  local i
  : >"$https_log"
  OAUTH2MAIL_CONFIG="$https_cfg" BROWSER="$state/https-browser" timeout "$LOGIN_TIMEOUT" \
    oauth2mail login tls --browser 2>"$https_terminal" || { cat "$https_terminal" "$https_log"; return 1; }
  # oauth2mail is done once it has the code; the browser may still be rendering the page
  for ((i = 0; i < 100; i++)); do grep -q -- '^--- browser' "$https_log" && break; sleep 0.1; done
  cat "$https_log"
  grep -q '"page":"Signed in"' "$https_log"
}
check "https login: Chromium warns, fingerprints match, Proceed; oauth2mail gets the code" https_login

# oauth2mail's instructions name what Chromium really showed: the error code and the link
https_told_truth() {
  local code proceed
  code="$(grep -o 'NET::ERR_CERT_[A-Z_]*' "$https_log" | head -1)"
  proceed="$(sed -n 's/.*"proceed":"\([^"]*\)".*/\1/p' "$https_log")"
  echo "Chromium showed $code, link \"$proceed\""
  [ -n "$code" ] && [ -n "$proceed" ] &&
    grep -qF "\"Your connection is not private\" ($code)" "$https_terminal" &&
    grep -qF "then \"$proceed\"" "$https_terminal" &&
    grep -q "redirect_uri=https%3A%2F%2Flocalhost%3A$https_port&" "$https_terminal"
}
check "https login: the printed warning and what to click are what Chromium showed" https_told_truth
https_imap() {
  OAUTH2MAIL_CONFIG="$https_cfg" curl_with tls "imaps://localhost:$SANDBOX_IMAPS_PORT/INBOX;MAILINDEX=1" "$U" "Welcome to the sandbox, $U"
}
check "https login: the account works afterwards (curl IMAPS)" https_imap

# The registered port is taken: one line naming it, exit 4 (temporary), no browser started.
https_port_taken() {
  local holder err rc=0
  # SO_REUSEADDR as Go sets it: the earlier logins' connections may still be in TIME_WAIT
  /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$https_port" &
  holder=$!
  sleep 0.5
  kill -0 "$holder" || { echo "could not hold port $https_port"; return 1; }
  err="$(OAUTH2MAIL_CONFIG="$https_cfg" BROWSER=false timeout 10 oauth2mail login tls --browser 2>&1)" || rc=$?
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  echo "exit $rc: $err"
  [ "$rc" = 4 ] && grep -qF "port $https_port of redirect_uri \"https://localhost:$https_port\" is in use" <<<"$err"
}
check "https login: the registered port taken: exit 4, the port named" https_port_taken
