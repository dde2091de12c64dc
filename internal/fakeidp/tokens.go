package fakeidp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Sizes of the opaque values, in base64url characters after the prefix.
const (
	accessTokenChars  = 1500 // Outlook.com access tokens are "EwB…", ~1.5 KB
	refreshTokenChars = 700  // Outlook.com refresh tokens are "M.C5…", ~0.7 KB
	authCodeChars     = 400
	deviceCodeChars   = 300
)

// Well-known and invented tenant ids.
const (
	consumersTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad" // personal Microsoft accounts
	fakeTenantID      = "72f988bf-0000-4000-8000-00000000c0de" // any other tenant alias
)

func randomB64(n int) string {
	b := make([]byte, (n*3+3)/4)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func newAccessToken() string  { return "EwB" + randomB64(accessTokenChars) }
func newRefreshToken() string { return "M.C5" + randomB64(refreshTokenChars) }
func newAuthCode() string     { return "M.C5_" + randomB64(authCodeChars) }
func newDeviceCode() string   { return "DAQABIQEAAAB" + randomB64(deviceCodeChars) }

// userCodeAlphabet avoids look-alikes (0/O, 1/I) so codes are easy to type.
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// newUserCode returns 9 upper-case letters and digits, like Microsoft's.
func newUserCode() string {
	b := make([]byte, 9)
	rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

// normUserCode lets ApproveDevice accept "abcd-1234 5" for "ABCD12345".
func normUserCode(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(s))
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// stableUUID derives a UUID-shaped id from s (for oid).
func stableUUID(s string) string {
	h := sha256.Sum256([]byte(s))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tenantID is the tid claim for a sign-in of login at tenant.
func tenantID(tenant, login string) string {
	if guidRE.MatchString(tenant) {
		return strings.ToLower(tenant)
	}
	if tenant == "consumers" || isPersonalAccount(login) {
		return consumersTenantID
	}
	return fakeTenantID
}

func isPersonalAccount(login string) bool {
	_, domain, _ := strings.Cut(strings.ToLower(login), "@")
	switch domain {
	case "outlook.com", "hotmail.com", "live.com", "msn.com":
		return true
	}
	return false
}

// idToken returns an unsigned (alg "none") ID token for g.
func idToken(g *grant, nonce string, now time.Time) string {
	tid := tenantID(g.tenant, g.login)
	claims := map[string]any{
		"ver":                "2.0",
		"iss":                "https://login.microsoftonline.com/" + tid + "/v2.0",
		"aud":                g.clientID,
		"sub":                base64.RawURLEncoding.EncodeToString(sha256Sum(g.login + "\x00" + g.clientID)[:24]),
		"oid":                stableUUID(g.login),
		"tid":                tid,
		"preferred_username": g.login,
		"email":              g.login,
		"name":               nameOf(g.login),
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func nameOf(login string) string {
	local, _, _ := strings.Cut(login, "@")
	return local
}

// Scopes.

// oidcScopes are not scopes of a resource; they never appear in the
// "scope" of a token response.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

func splitScopes(s string) []string { return strings.Fields(s) }

func hasScope(scopes []string, want string) bool {
	for _, sc := range scopes {
		if strings.EqualFold(sc, want) {
			return true
		}
	}
	return false
}

// resourceOf returns the resource a scope belongs to:
// "https://outlook.office.com/IMAP.AccessAsUser.All" → "https://outlook.office.com";
// a bare scope such as "User.Read" belongs to Microsoft Graph.
func resourceOf(scope string) string {
	if i := strings.LastIndex(scope, "/"); i > 0 {
		return strings.ToLower(scope[:i])
	}
	return "https://graph.microsoft.com"
}

// grantScopes decides what a token request gets. requested is the token
// request's scope parameter (nil when absent: then the consented scopes
// are used). It returns the resource scopes of the token (those of the
// resource of the first one, as Entra ID does), whether an ID token is
// due, and the requested resource scopes that were never consented.
func grantScopes(requested, consented []string) (granted []string, openid bool, missing []string) {
	src := requested
	if len(src) == 0 {
		src = consented
	}
	openid = hasScope(src, "openid")
	var res []string
	for _, sc := range src {
		if oidcScopes[strings.ToLower(sc)] {
			continue
		}
		if strings.HasSuffix(sc, "/.default") {
			r := resourceOf(sc)
			n := 0
			for _, c := range consented {
				if !oidcScopes[strings.ToLower(c)] && !strings.HasSuffix(c, "/.default") && resourceOf(c) == r {
					res = append(res, c)
					n++
				}
			}
			if n == 0 && !hasScope(consented, sc) {
				missing = append(missing, sc)
			}
			continue
		}
		if len(requested) > 0 && !hasScope(consented, sc) {
			missing = append(missing, sc)
			continue
		}
		res = append(res, sc)
	}
	if len(res) > 0 {
		first := resourceOf(res[0])
		for _, sc := range res {
			if resourceOf(sc) == first && !hasScope(granted, sc) {
				granted = append(granted, sc)
			}
		}
	}
	return granted, openid, missing
}

// Secrets returns every secret the server has handed out or holds: the
// access tokens, refresh tokens, authorization codes and device codes it
// ever issued (used, expired and revoked ones too) and the client secrets
// of the apps registered with AddApp, sorted. Leak tests look for them
// where they must not be. (User codes are not secrets: people read them
// off the screen.)
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := slices.Collect(maps.Keys(s.ats))
	all = slices.AppendSeq(all, maps.Keys(s.rts))
	all = slices.AppendSeq(all, maps.Keys(s.codes))
	all = slices.AppendSeq(all, maps.Keys(s.devices))
	for _, a := range s.apps {
		if a.Secret != "" {
			all = append(all, a.Secret)
		}
	}
	slices.Sort(all)
	return all
}
