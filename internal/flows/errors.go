package flows

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/oauth2"
)

// Kind says what fixes an IdP error.
type Kind int

const (
	KindTemporary Kind = iota + 1 // retry later: network, 5xx, throttling, a non-JSON answer
	KindLogin                     // run login again
	KindConfig                    // fix the config or the app registration
	KindBlocked                   // an organisation policy or an admin must act
	KindDeclined                  // the user said no
	KindBug                       // a malformed request: ours to fix
)

// Error is an identity provider's refusal (or failure to answer), decoded.
type Error struct {
	Op          string // "refresh", "device login", "browser login"
	Code        string // OAuth "error", e.g. invalid_grant
	SubError    string
	AADSTS      int    // Microsoft's error number, 0 when absent
	Description string // first line of error_description, trimmed
	TraceID     string
	Correlation string
	Status      int // HTTP status, 0 when none
	Kind        Kind
	Meaning     string // what the error means, in a user's words
	Fix         string // what to do; ACCOUNT stands for the account name
	Err         error
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op + ": ")
	if e.Meaning != "" {
		b.WriteString(e.Meaning)
	}
	var ids []string
	if e.AADSTS != 0 {
		ids = append(ids, "AADSTS"+strconv.Itoa(e.AADSTS))
	}
	if e.Code != "" {
		ids = append(ids, e.Code)
	}
	if e.Status != 0 && e.Code == "" {
		ids = append(ids, "HTTP "+strconv.Itoa(e.Status))
	}
	if len(ids) > 0 {
		if e.Meaning != "" {
			b.WriteString(" ")
		}
		b.WriteString("(" + strings.Join(ids, ", ") + ")")
	}
	if e.Meaning == "" && e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// Hint is the fix for account, or "".
func (e *Error) Hint(account string) string {
	return strings.ReplaceAll(e.Fix, "ACCOUNT", account)
}

// aadsts maps Microsoft error numbers to meaning, kind and fix
// (reference/microsoft-identity.md §1.10). Control flow never depends on
// the number alone: the OAuth error picks the kind when the number is unknown.
var aadsts = map[int]struct {
	kind    Kind
	meaning string
	fix     string
}{
	70000:   {KindLogin, "the stored sign-in is no longer valid (revoked or malformed)", "run: oauth2mail login ACCOUNT"},
	700082:  {KindLogin, "the sign-in expired after 90 days without use", "run: oauth2mail login ACCOUNT (the agent keeps logins alive: see the README)"},
	70008:   {KindLogin, "the sign-in expired or was revoked", "run: oauth2mail login ACCOUNT"},
	50173:   {KindLogin, "the sign-in was revoked (password changed or sessions revoked)", "run: oauth2mail login ACCOUNT"},
	70043:   {KindLogin, "your organization requires signing in again after a set time (Conditional Access sign-in frequency)", "run: oauth2mail login ACCOUNT; this will recur at your organization's interval"},
	700084:  {KindConfig, "the app registration uses a single-page-app redirect, whose sign-ins last only 24 hours", "register the redirect under 'Mobile and desktop applications', then run: oauth2mail login ACCOUNT"},
	50089:   {KindLogin, "the sign-in took too long", "run: oauth2mail login ACCOUNT and finish within a few minutes"},
	50076:   {KindLogin, "multi-factor authentication is now required", "run: oauth2mail login ACCOUNT and complete MFA"},
	50079:   {KindLogin, "you must register security info (MFA) first", "register at https://aka.ms/mysecurityinfo, then run: oauth2mail login ACCOUNT"},
	50078:   {KindLogin, "multi-factor authentication expired", "run: oauth2mail login ACCOUNT and complete MFA"},
	50074:   {KindLogin, "multi-factor authentication was not completed", "run: oauth2mail login ACCOUNT and complete MFA"},
	65001:   {KindLogin, "consent for the mail permissions is missing", "run: oauth2mail login ACCOUNT and accept, or ask your admin to grant consent to the app"},
	90094:   {KindBlocked, "your administrator must approve this app", "ask your admin to grant tenant-wide consent to the app's client ID"},
	90095:   {KindBlocked, "your administrator must approve this app", "ask your admin to grant tenant-wide consent to the app's client ID"},
	65004:   {KindDeclined, "consent was declined", "run: oauth2mail login ACCOUNT and accept the permissions"},
	700016:  {KindConfig, "the client ID is unknown in this tenant", "check client_id and tenant for ACCOUNT in the config"},
	7000218: {KindConfig, "the app registration is not a public client", "in the app registration enable 'Allow public client flows' and use a 'Mobile and desktop applications' redirect"},
	700025:  {KindConfig, "the app is a public client but a client secret was sent", "remove client_secret from ACCOUNT in the config"},
	7000112: {KindConfig, "the app (client ID) has been disabled", "register your own app and set client_id (see the README)"},
	70001:   {KindConfig, "the app (client ID) is disabled", "register your own app and set client_id (see the README)"},
	90014:   {KindBug, "a required field was missing from the request", "please report this as a bug"},
	900144:  {KindBug, "a required parameter was missing from the request", "please report this as a bug"},
	50011:   {KindConfig, "the redirect URI is not registered for this app", "add http://localhost under 'Mobile and desktop applications' in the app registration (or set redirect_host)"},
	53003:   {KindBlocked, "blocked by your organization's Conditional Access policy", "ask your IT department; if only this sign-in method is blocked, try the other one (--browser or --device)"},
	53000:   {KindBlocked, "your organization only allows compliant devices", "ask your IT department"},
	53001:   {KindBlocked, "your organization only allows domain-joined devices", "ask your IT department"},
	530032:  {KindBlocked, "blocked by your organization's security policy", "ask your IT department"},
	530033:  {KindBlocked, "blocked by a Conditional Access policy for this device", "ask your IT department, or try the other sign-in method (--browser or --device)"},
	530035:  {KindBlocked, "blocked by security defaults", "ask your IT department"},
	50097:   {KindBlocked, "device authentication is required by your organization", "try the browser flow: oauth2mail login ACCOUNT --browser"},
	50194:   {KindConfig, "the app is single-tenant and cannot be used with common/organizations", "set tenant to your tenant ID or domain for ACCOUNT in the config"},
	9002332: {KindConfig, "this client ID does not allow personal Microsoft accounts", "use an app registered for personal accounts, or set tenant = \"organizations\""},
	50020:   {KindConfig, "this account cannot sign in to that tenant", "check tenant and email for ACCOUNT in the config"},
	500011:  {KindConfig, "your tenant has no Exchange Online", "check that the mailbox is hosted in Microsoft 365"},
	65002:   {KindConfig, "Microsoft's own client IDs cannot be reused for this", "register your own app and set client_id (see the README)"},
	70011:   {KindConfig, "a requested scope is not valid", "check scopes for ACCOUNT in the config"},
	700022:  {KindBug, "scopes from several resources were requested in one token", "check scopes for ACCOUNT in the config (one resource per token)"},
	28000:   {KindBug, "scopes from several resources were requested in one token", "check scopes for ACCOUNT in the config (one resource per token)"},
	50126:   {KindLogin, "wrong user name or password", "run: oauth2mail login ACCOUNT"},
	50055:   {KindLogin, "your password has expired", "change your password, then run: oauth2mail login ACCOUNT"},
	50053:   {KindBlocked, "the account is locked", "wait, or contact your admin"},
	50057:   {KindBlocked, "the account is disabled", "contact your admin"},
	50105:   {KindBlocked, "you are not assigned to this app", "ask your IT department to assign you to the app"},
	70019:   {KindLogin, "the device code expired before it was used", "run: oauth2mail login ACCOUNT and enter the code within 15 minutes"},
	70018:   {KindLogin, "a wrong code was entered", "run: oauth2mail login ACCOUNT again"},
	90120:   {KindLogin, "this device code was already used", "run: oauth2mail login ACCOUNT again"},
	54005:   {KindLogin, "the authorization code was already redeemed", "run: oauth2mail login ACCOUNT again"},
	501481:  {KindBug, "the PKCE code verifier did not match", "please report this as a bug"},
	50196:   {KindTemporary, "too many requests (loop detected)", "wait a few minutes before retrying"},
	// App-only (client-credentials) accounts.
	7000215: {KindConfig, "the client secret is wrong (the secret's Value is needed, not its Secret ID)", "give the secret's Value where this account takes it: oauth2mail login ACCOUNT stores it, or fix client_secret / client_secret_command in the config"},
	7000222: {KindConfig, "the client secret has expired", "create a new secret under 'Certificates & secrets' of the app registration, then run: oauth2mail login ACCOUNT"},
	700027:  {KindConfig, "the certificate is not registered for this app (or the signature is invalid)", "upload the certificate (its public part) under 'Certificates & secrets' of the app registration"},
	700024:  {KindConfig, "the client assertion is outside its valid time range", "check this machine's clock"},
	90002:   {KindConfig, "the tenant does not exist", "check tenant for ACCOUNT in the config"},
	1002012: {KindConfig, "app-only tokens need a scope ending in /.default", "remove scopes from ACCOUNT in the config (the default is right)"},
	90055:   {KindTemporary, "too many requests (throttled)", "wait a few minutes before retrying"},
}

// byCode covers errors without a known AADSTS number (RFC 6749, RFC 8628).
var byCode = map[string]struct {
	kind    Kind
	meaning string
	fix     string
}{
	"invalid_grant":           {KindLogin, "the stored sign-in is no longer accepted", "run: oauth2mail login ACCOUNT"},
	"interaction_required":    {KindLogin, "the identity provider needs you to sign in again", "run: oauth2mail login ACCOUNT"},
	"login_required":          {KindLogin, "the identity provider needs you to sign in again", "run: oauth2mail login ACCOUNT"},
	"consent_required":        {KindLogin, "consent is needed", "run: oauth2mail login ACCOUNT and accept"},
	"access_denied":           {KindDeclined, "access was denied", "run: oauth2mail login ACCOUNT and accept the permissions"},
	"authorization_declined":  {KindDeclined, "the sign-in was declined", "run: oauth2mail login ACCOUNT and approve it"},
	"expired_token":           {KindLogin, "the device code expired before it was used", "run: oauth2mail login ACCOUNT and enter the code sooner"},
	"bad_verification_code":   {KindLogin, "the identity provider did not recognise the device code", "run: oauth2mail login ACCOUNT again"},
	"invalid_client":          {KindConfig, "the identity provider does not accept this client", "check client_id (and client_secret) for ACCOUNT in the config"},
	"unauthorized_client":     {KindConfig, "this client may not use this flow", "check the app registration (public client flows, redirect URIs)"},
	"invalid_scope":           {KindConfig, "a requested scope is not valid", "check scopes for ACCOUNT in the config"},
	"invalid_request":         {KindBug, "the identity provider rejected the request as malformed", "check the config for ACCOUNT; if it looks right, please report a bug"},
	"unsupported_grant_type":  {KindConfig, "the identity provider does not support this flow", "try the other flow (--browser or --device)"},
	"temporarily_unavailable": {KindTemporary, "the identity provider is temporarily unavailable", "try again in a few minutes"},
	"server_error":            {KindTemporary, "the identity provider had an internal error", "try again in a few minutes"},
	"slow_down":               {KindTemporary, "the identity provider asks us to slow down", "try again in a few minutes"},
}

// msBody is the Microsoft-shaped JSON error body (RFC 6749 + extensions).
type msBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
	SubError    string `json:"suberror"`
	TraceID     string `json:"trace_id"`
	Correlation string `json:"correlation_id"`
}

// Classify turns an error from x/oauth2 or the network into an *Error.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Err: err}
	var (
		re *oauth2.RetrieveError
		ae *answerError
	)
	switch {
	case errors.As(err, &ae) && ae.Broken:
		e.Status, e.Kind, e.Meaning, e.Fix = ae.Status, KindTemporary, "the identity provider broke off its answer", "check your network and try again"
	case errors.As(err, &ae):
		// A redirect, a web page or a flood: what proxies and captive
		// portals answer. The body is never shown.
		e.Status, e.Kind, e.Fix = ae.Status, KindTemporary, "check your network (a captive portal may want you to sign in to it in a browser) and try again later"
		e.Meaning = "the identity provider answered with " + ae.What + ", not an OAuth response: a proxy or captive portal?"
	case errors.As(err, &re):
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		e.Code = re.ErrorCode
		var body msBody
		jsonErr := json.Unmarshal(re.Body, &body)
		if jsonErr == nil {
			if e.Code == "" {
				e.Code = body.Error
			}
			e.SubError, e.TraceID, e.Correlation = firstLine(body.SubError), firstLine(body.TraceID), firstLine(body.Correlation)
			if len(body.Codes) > 0 {
				e.AADSTS = body.Codes[0]
			}
		}
		if !oauthCode(e.Code) {
			e.Code = "" // shown nowhere: it may be anything, a token too
		}
		desc := re.ErrorDescription
		if desc == "" {
			desc = body.Description
		}
		e.Description = firstLine(desc)
		if e.AADSTS == 0 {
			e.AADSTS = parseAADSTS(desc)
		}
		switch {
		case jsonErr != nil && e.Code == "":
			// An HTML page or other non-JSON: captive portals, proxies, outages.
			e.Kind, e.Meaning, e.Fix = KindTemporary, fmt.Sprintf("the identity provider answered HTTP %d with something that is not an OAuth response", e.Status), "check your network (a proxy or captive portal?) and try again"
		case e.Status == 429 || e.Status >= 500:
			e.Kind, e.Meaning, e.Fix = KindTemporary, fmt.Sprintf("the identity provider is unavailable (HTTP %d)", e.Status), "try again in a few minutes"
		}
	case strings.HasPrefix(err.Error(), "oauth2: cannot parse"):
		// A 2xx that is not a token response: an HTML login page of a proxy
		// or captive portal, typically.
		e.Kind, e.Meaning, e.Fix = KindTemporary, "the identity provider answered with something that is not an OAuth response", "check your network (a proxy or captive portal?) and try again"
	case strings.Contains(err.Error(), "missing access_token"): // x/oauth2's and MSAL's words
		e.Kind, e.Meaning, e.Fix = KindTemporary, "the identity provider answered without an access token", "try again later; if it persists, check the provider's status"
	case untrusted(err):
		e.Kind, e.Meaning, e.Fix = KindTemporary, "the identity provider's TLS certificate is not trusted (a proxy intercepting TLS?)", "check your network; a private CA for the identity provider goes into SSL_CERT_FILE"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		e.Kind, e.Meaning, e.Fix = KindTemporary, "the identity provider did not answer in time", "check your network and try again"
	default:
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "dial tcp") {
			e.Kind, e.Meaning, e.Fix = KindTemporary, "the identity provider cannot be reached", "check your network and try again"
		} else {
			e.Kind, e.Meaning = KindTemporary, firstLine(err.Error())
		}
	}
	if e.Kind == 0 {
		if row, ok := aadsts[e.AADSTS]; ok {
			e.Kind, e.Meaning, e.Fix = row.kind, row.meaning, row.fix
			if fix := otherFlow(op, e.AADSTS); fix != "" {
				e.Fix = fix
			}
		} else if row, ok := byCode[e.Code]; ok {
			e.Kind, e.Meaning, e.Fix = row.kind, row.meaning, row.fix
		} else {
			e.Kind, e.Meaning, e.Fix = KindBug, "the identity provider refused the request", "run with --verbose for details; if the config looks right, please report a bug"
		}
	}
	return e
}

// blockedFlow are Conditional Access refusals that often hit one sign-in
// method only: the device-code flow is a favourite target of policies
// ("block device code flow", device authentication required), while a
// browser on a managed device may pass.
var blockedFlow = map[int]bool{50097: true, 53000: true, 53001: true, 53003: true, 530032: true, 530033: true}

// otherFlow is the fix for a flow blocked by policy: the other flow, or ""
// when code is not such a refusal.
func otherFlow(op string, code int) string {
	if !blockedFlow[code] {
		return ""
	}
	switch op {
	case "device login":
		return "your organization blocks this sign-in for the device-code flow; try the browser flow on a machine with a browser (a managed device, if the policy asks for one): oauth2mail login ACCOUNT --browser; if that is blocked too, ask your IT department"
	case "browser login":
		return "your organization blocks this sign-in from this browser or device; try the device-code flow and finish it on a managed device: oauth2mail login ACCOUNT --device; if that is blocked too, ask your IT department"
	}
	return ""
}

func parseAADSTS(desc string) int {
	rest, ok := strings.CutPrefix(desc, "AADSTS")
	if !ok {
		return 0
	}
	end := 0
	for end < len(rest) && '0' <= rest[end] && rest[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(rest[:end])
	return n
}

// firstLine is s up to its first CR or LF, trimmed and cut at 300 bytes.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	// No terminal control: an escape sequence from the network must not
	// reach the person's terminal.
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…" // no rune cut in two
	}
	return s
}

// oauthCode reports whether code can be an OAuth error code: the
// registered ones (RFC 6749 §5.2, RFC 8628 §3.5) and Microsoft's, Google's
// and GitHub's are short words of lower-case letters and underscores.
func oauthCode(code string) bool {
	return len(code) <= 64 && strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") == ""
}

func untrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	var hn x509.HostnameError
	return errors.As(err, &ua) || errors.As(err, &cv) || errors.As(err, &hn)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
