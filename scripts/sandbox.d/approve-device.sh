#!/bin/bash
# Approve a device-flow user code the way a person would, on the OAuth server's own pages
# (oidc-provider's development login + consent pages), scripted with curl and one cookie jar:
#   GET  /device?user_code=UC              -> auto-submit form (xsrf, user_code)
#   POST /device xsrf,user_code            -> "Confirm Device" page
#   POST /device xsrf,user_code,confirm    -> 303 /interaction/<uid>       (login page)
#   POST /interaction/<uid> login=NAME     -> 303 /device/<uid> -> 303 /interaction/<uid2> (consent)
#   POST /interaction/<uid2> prompt=consent -> 303 /device/<uid2> -> 200 "Sign-in Success"
# Usage: approve-device.sh USER_CODE LOGIN [ISSUER]   (ISSUER defaults to $SANDBOX_ISSUER)
# Env: ABORT=1 presses "Abort" instead (the client's next poll then gets access_denied);
#      VERBOSE=1 narrates each page on stderr.
# Exit 0 once the success page is reached, 1 otherwise (e.g. a wrong or expired code).
set -euo pipefail

usage="usage: approve-device.sh USER_CODE LOGIN [ISSUER]"
user_code="${1:?$usage}"
login="${2:?$usage}"
issuer="${3:-${SANDBOX_ISSUER:?$usage (or set SANDBOX_ISSUER)}}"
max_steps=8 # login + consent take 4 hops; anything longer means the pages changed

jar="$(mktemp "${TMPDIR:-/tmp}/approve-device.XXXXXX")"
trap 'rm -f "$jar"' EXIT
http=(curl -sS --fail-with-body -c "$jar" -b "$jar")

say() { if [ -n "${VERBOSE:-}" ]; then echo "approve-device: $*" >&2; fi; }
die() { echo "approve-device: $*" >&2; exit 1; }
location() { "${http[@]}" -o /dev/null -w '%{redirect_url}' "$@"; }   # POST, print the 303 target
xsrf() { sed -n 's/.*name="xsrf" value="\([^"]*\)".*/\1/p' | head -1; }

token=$("${http[@]}" -G --data-urlencode "user_code=$user_code" "$issuer/device" | xsrf)
[ -n "$token" ] || die "no form at $issuer/device"
page=$("${http[@]}" --data-urlencode "xsrf=$token" --data-urlencode "user_code=$user_code" "$issuer/device")
case "$page" in
  *op.deviceConfirmForm*) say "confirm page for $user_code" ;;
  *) die "code $user_code not accepted: $(sed -n 's/.*<p class="red">\(.*\)<\/p>.*/\1/p' <<<"$page")" ;;
esac
token=$(xsrf <<<"$page")
if [ "${ABORT:-0}" = 1 ]; then
  "${http[@]}" -o /dev/null --data-urlencode "xsrf=$token" --data-urlencode "user_code=$user_code" -d abort=yes "$issuer/device"
  say "aborted"; exit 0
fi
next=$(location --data-urlencode "xsrf=$token" --data-urlencode "user_code=$user_code" -d confirm=yes "$issuer/device")

for _ in $(seq "$max_steps"); do
  case "$next" in
    */interaction/*)
      page=$("${http[@]}" "$next")
      case "$page" in
        *'name="prompt" value="login"'*)
          say "login page: signing in as $login"
          next=$(location -d prompt=login --data-urlencode "login=$login" -d password=sandbox "$next") ;;
        *'name="prompt" value="consent"'*)
          say "consent page: approving"
          next=$(location -d prompt=consent "$next") ;;
        *) die "unexpected page at $next" ;;
      esac ;;
    */device/*)
      # the resume endpoint either redirects to the next page or shows the success page
      reply=$("${http[@]}" -w '\n%{http_code} %{redirect_url}' "$next")
      case "$reply" in *"Sign-in Success"*) say "success page reached"; exit 0 ;; esac
      status=$(tail -1 <<<"$reply")
      case "$status" in
        30*) next=${status#* } ;;
        *) die "unexpected answer from $next: $status" ;;
      esac ;;
    *) die "unexpected redirect '$next'" ;;
  esac
done
die "more than $max_steps steps; giving up"
