package sasl

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Real strings: Microsoft's documented XOAUTH2 example, Google-shaped and
// shared-mailbox ones, RFC 7628's OAUTHBEARER example and what mail
// clients send on a continuation line (empty, "=", "*", a lone ^A).
var saslSeeds = []string{
	"dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ==",
	"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB",
	XOAUTH2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
	XOAUTH2("shared@contoso.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"),
	XOAUTH2("", "t"),
	OAuthBearer("a=b,c@x", "imap.gmail.com", 993, "ya29.a0AfH6SMB"),
	OAuthBearer("", "", 0, "T"),
	"user=me@contoso.com\x01auth=Bearer EwB\x01\x01",
	"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
	"n,user=user@example.com,\x01auth=Bearer x\x01\x01", // RFC 7628 §4.4's malformed header
	"y,,\x01port=65536\x01auth=Bearer x\x01\x01",
	"user=u\x01auth=Basic eA==\x01\x01",
	"", "=", "*", "AQ==", "!!!", " dXNlcj14AWF1dGg9QmVhcmVyIHgBAQ== \r\n", "dXNlcj14AWF1dGg9QmVhcmVyIHgBAQ", "dXNlcj14AWF1dGg9QmVhcmVyIHg_AQ==",
}

// Servers' error challenges: Google's, Microsoft's and Dovecot's, RFC 7628's.
var challengeSeeds = []string{
	`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`,
	`{"status":"401","schemes":"bearer","scope":"mail"}`,
	`{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`,
	`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`,
	"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=",
	`{"status":""}`, `{"status":401}`, `{"status":"1","status":"2"}`, `[]`, `null`, `{"Status":"x","unknown":[1,{}]}`,
	"bm90IGpzb24=", "", "AQ==", "Authentication failed.",
}

// b64 is s as a server or a client would send it, so the fuzzer reaches the
// decoders past the base64 step with any bytes.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FuzzDecodeXOAUTH2 decodes arbitrary strings, as given and base64-encoded:
// never a panic; a refusal is errMalformed with a fixed message (it must not
// quote what may be a token); a success encodes back to the same user and
// token, and the token never shows in the credentials' String.
func FuzzDecodeXOAUTH2(f *testing.F) {
	fuzzDecoder(f, "xoauth2", DecodeXOAUTH2, func(c Credentials) (string, Credentials) {
		return XOAUTH2(c.User, c.Token), Credentials{User: c.User, Token: c.Token}
	})
}

// FuzzDecodeOAuthBearer is FuzzDecodeXOAUTH2 for RFC 7628 strings, with
// the authorization identity's escapes, host and port.
func FuzzDecodeOAuthBearer(f *testing.F) {
	fuzzDecoder(f, "oauthbearer", DecodeOAuthBearer, func(c Credentials) (string, Credentials) {
		return OAuthBearer(c.User, c.Host, c.Port, c.Token), c
	})
}

// fuzzDecoder runs decode on the seeds and what the fuzzer makes of them;
// encode returns what a decoded response encodes to, and the credentials
// that must decode from it.
func fuzzDecoder(f *testing.F, mech string, decode func(string) (Credentials, error), encode func(Credentials) (string, Credentials)) {
	for _, s := range saslSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, in := range []string{s, b64(s)} {
			c, err := decode(in)
			if err != nil {
				checkDecodeError(t, err, mech+": ")
				continue
			}
			if c.Token == "" || c.Port < 0 || c.Port > 65535 {
				t.Fatalf("decoded %v", c)
			}
			if s := c.String(); len(c.Token) >= 8 && strings.Contains(s, c.Token) && !strings.Contains(c.User+c.Host, c.Token) {
				t.Errorf("String() shows the token: %s", s)
			}
			enc, want := encode(c)
			if again, err := decode(enc); err != nil || again != want {
				t.Errorf("%v re-encoded decodes to %v, %v", c, again, err)
			}
		}
	})
}

// FuzzDecodeChallenge decodes arbitrary challenges: a refusal is
// errMalformed, a success has a status and survives a JSON round trip.
func FuzzDecodeChallenge(f *testing.F) {
	for _, s := range challengeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, in := range []string{s, b64(s)} {
			c, err := DecodeChallenge(in)
			if err != nil {
				checkDecodeError(t, err, "challenge: ")
				continue
			}
			if c.Status == "" {
				t.Fatalf("challenge without a status: %+v", c)
			}
			data, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := DecodeChallenge(b64(string(data))); err != nil || again != c {
				t.Errorf("%+v round-trips to %+v, %v", c, again, err)
			}
		}
	})
}

// FuzzXOAUTH2RoundTrip encodes arbitrary mailboxes and tokens: every pair
// the encoder's callers can pass (no ^A in either, a token) decodes back.
func FuzzXOAUTH2RoundTrip(f *testing.F) {
	f.Add("test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA")
	f.Add("shared@contoso.com", "ya29.a0AfH6SMB")
	f.Add("user=x", "Bearer y")
	f.Add("", "=")
	f.Fuzz(func(t *testing.T, user, token string) {
		if strings.Contains(user+token, "\x01") || token == "" {
			return
		}
		c, err := DecodeXOAUTH2(XOAUTH2(user, token))
		if err != nil || c.User != user || c.Token != token || c.Host != "" || c.Port != 0 {
			t.Errorf("XOAUTH2(%q, <%d bytes>) decodes to %v, %v", user, len(token), c, err)
		}
	})
}

// FuzzOAuthBearerRoundTrip is FuzzXOAUTH2RoundTrip for OAUTHBEARER, with
// a host and any port a TCP connection can have (0: none).
func FuzzOAuthBearerRoundTrip(f *testing.F) {
	f.Add("user@example.com", "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
	f.Add("a=b,c@x", "imap.gmail.com", 993, "ya29.a0AfH6SMB")
	f.Add("=2C=3D,,", "", 0, "T")
	f.Add("", "h=1", 65535, "auth=Bearer x")
	f.Fuzz(func(t *testing.T, user, host string, port int, token string) {
		if strings.Contains(user+host+token, "\x01") || token == "" || port < 0 || port > 65535 {
			return
		}
		c, err := DecodeOAuthBearer(OAuthBearer(user, host, port, token))
		if want := (Credentials{User: user, Host: host, Port: port, Token: token}); err != nil || c != want {
			t.Errorf("OAuthBearer(%q, %q, %d, <%d bytes>) decodes to %v, %v", user, host, port, len(token), c, err)
		}
	})
}

func checkDecodeError(t *testing.T, err error, prefix string) {
	t.Helper()
	msg := err.Error()
	if !errors.Is(err, errMalformed) || !strings.HasPrefix(msg, prefix) || len(msg) > 80 {
		t.Fatalf("error %q is not a short %q errMalformed", msg, prefix)
	}
}
