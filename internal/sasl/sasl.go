// Package sasl builds and parses the SASL strings that carry an OAuth 2.0
// access token to a mail server: XOAUTH2 (Google, Microsoft) and
// OAUTHBEARER (RFC 7628). It is pure: no I/O, no token storage.
package sasl

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// XOAUTH2Raw returns the unencoded XOAUTH2 initial client response:
// "user=" mailbox ^A "auth=Bearer " token ^A ^A.
func XOAUTH2Raw(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

// XOAUTH2 returns the base64 XOAUTH2 initial client response, ready to be
// sent on an AUTHENTICATE / AUTH continuation line.
func XOAUTH2(user, token string) string {
	return base64.StdEncoding.EncodeToString(XOAUTH2Raw(user, token))
}

// OAuthBearerRaw returns the unencoded RFC 7628 client response. user becomes
// the GS2 authorization identity (a=); host and port are optional (port 0
// omits it).
func OAuthBearerRaw(user, host string, port int, token string) []byte {
	var b strings.Builder
	b.WriteString("n,")
	if user != "" {
		b.WriteString("a=" + gs2Escape(user))
	}
	b.WriteString(",\x01")
	if host != "" {
		b.WriteString("host=" + host + "\x01")
	}
	if port > 0 {
		b.WriteString("port=" + strconv.Itoa(port) + "\x01")
	}
	b.WriteString("auth=Bearer " + token + "\x01\x01")
	return []byte(b.String())
}

// OAuthBearer returns the base64 RFC 7628 client response.
func OAuthBearer(user, host string, port int, token string) string {
	return base64.StdEncoding.EncodeToString(OAuthBearerRaw(user, host, port, token))
}

// gs2Escape escapes an authzid as RFC 5801 requires: "," as "=2C", "=" as "=3D".
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Credentials is what a decoded XOAUTH2 or OAUTHBEARER response carries.
type Credentials struct {
	User  string
	Host  string
	Port  int
	Token string
}

// String never shows the token.
func (c Credentials) String() string {
	return fmt.Sprintf("user=%q host=%q port=%d token=<%d bytes>", c.User, c.Host, c.Port, len(c.Token))
}

var errMalformed = errors.New("malformed SASL response")

// DecodeXOAUTH2 parses a base64 XOAUTH2 client response.
func DecodeXOAUTH2(b64 string) (Credentials, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Credentials{}, fmt.Errorf("xoauth2: %w: not base64", errMalformed)
	}
	s, ok := strings.CutSuffix(string(raw), "\x01\x01")
	if !ok {
		return Credentials{}, fmt.Errorf("xoauth2: %w: missing final ^A^A", errMalformed)
	}
	var c Credentials
	if err := c.parseFields("xoauth2", s); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// DecodeOAuthBearer parses a base64 RFC 7628 client response.
func DecodeOAuthBearer(b64 string) (Credentials, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Credentials{}, fmt.Errorf("oauthbearer: %w: not base64", errMalformed)
	}
	gs2, rest, ok := strings.Cut(string(raw), "\x01")
	if !ok || !strings.HasPrefix(gs2, "n,") && !strings.HasPrefix(gs2, "y,") {
		return Credentials{}, fmt.Errorf("oauthbearer: %w: bad GS2 header", errMalformed)
	}
	var c Credentials
	for _, f := range strings.Split(gs2, ",")[1:] {
		if a, ok := strings.CutPrefix(f, "a="); ok {
			c.User = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a)
		}
	}
	rest, ok = strings.CutSuffix(rest, "\x01")
	if !ok {
		return Credentials{}, fmt.Errorf("oauthbearer: %w: missing final ^A", errMalformed)
	}
	if err := c.parseFields("oauthbearer", rest); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// parseFields reads ^A-separated key=value fields (user, host, port, auth)
// into c; a token is required.
func (c *Credentials) parseFields(mech, s string) error {
	for _, kv := range strings.Split(s, "\x01") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			c.User = v
		case "host":
			c.Host = v
		case "port":
			p, err := strconv.Atoi(v)
			if err != nil || p < 0 || p > 65535 {
				return fmt.Errorf("%s: %w: bad port", mech, errMalformed)
			}
			c.Port = p
		case "auth":
			tok, ok := strings.CutPrefix(v, "Bearer ")
			if !ok {
				return fmt.Errorf("%s: %w: auth is not a Bearer token", mech, errMalformed)
			}
			c.Token = tok
		}
	}
	if c.Token == "" {
		return fmt.Errorf("%s: %w: no token", mech, errMalformed)
	}
	return nil
}

// Challenge is the JSON error a server sends in a SASL challenge when it
// refuses a token (Google/Dovecot XOAUTH2, RFC 7628 §3.2.2).
type Challenge struct {
	Status              string `json:"status"`
	Schemes             string `json:"schemes,omitempty"`
	Scope               string `json:"scope,omitempty"`
	OpenIDConfiguration string `json:"openid-configuration,omitempty"`
}

// DecodeChallenge decodes a base64 JSON error challenge. Servers that send
// anything else (Exchange sends no challenge at all) yield an error.
func DecodeChallenge(b64 string) (Challenge, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Challenge{}, fmt.Errorf("challenge: %w: not base64", errMalformed)
	}
	var c Challenge
	if err := json.Unmarshal(raw, &c); err != nil {
		return Challenge{}, fmt.Errorf("challenge: %w: not JSON", errMalformed)
	}
	if c.Status == "" {
		return Challenge{}, fmt.Errorf("challenge: %w: no status", errMalformed)
	}
	return c, nil
}
