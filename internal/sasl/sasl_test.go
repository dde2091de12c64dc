package sasl

import (
	"strings"
	"testing"
)

// The example from Microsoft's "Authenticate an IMAP, POP or SMTP connection
// using OAuth" page, which every client must reproduce byte for byte.
func TestXOAUTH2MicrosoftExample(t *testing.T) {
	got := XOAUTH2("test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA")
	want := "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
	if got != want {
		t.Errorf("XOAUTH2 = %s\nwant      %s", got, want)
	}
}

// RFC 7628 §4.1 (IMAP example).
func TestOAuthBearerRFC7628Example(t *testing.T) {
	got := OAuthBearer("user@example.com", "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
	want := "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
	if got != want {
		t.Errorf("OAuthBearer = %s\nwant          %s", got, want)
	}
}

func TestOAuthBearerOptionalFields(t *testing.T) {
	tests := []struct {
		name, user, host string
		port             int
		want             string
	}{
		{"no authzid no host", "", "", 0, "n,,\x01auth=Bearer T\x01\x01"},
		{"escaped authzid", "a=b,c@x", "", 0, "n,a=a=3Db=2Cc@x,\x01auth=Bearer T\x01\x01"},
		{"host only", "u@x", "imap.x", 0, "n,a=u@x,\x01host=imap.x\x01auth=Bearer T\x01\x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(OAuthBearerRaw(tt.user, tt.host, tt.port, "T")); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tok := strings.Repeat("EwB", 700)
	c, err := DecodeXOAUTH2(XOAUTH2("shared@contoso.com", tok))
	if err != nil || c.User != "shared@contoso.com" || c.Token != tok {
		t.Fatalf("DecodeXOAUTH2 = %v, %v", c, err)
	}
	c, err = DecodeOAuthBearer(OAuthBearer("a=b,c@x", "h", 993, tok))
	if err != nil || c.User != "a=b,c@x" || c.Host != "h" || c.Port != 993 || c.Token != tok {
		t.Fatalf("DecodeOAuthBearer = %v, %v", c, err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, in := range []string{"", "!!!", "dXNlcj14", "dXNlcj14AWF1dGg9QmFzaWMgeAEB"} {
		if c, err := DecodeXOAUTH2(in); err == nil {
			t.Errorf("DecodeXOAUTH2(%q) = %v, want error", in, c)
		}
		if c, err := DecodeOAuthBearer(in); err == nil {
			t.Errorf("DecodeOAuthBearer(%q) = %v, want error", in, c)
		}
	}
}

func TestCredentialsStringRedacts(t *testing.T) {
	s := Credentials{User: "u", Token: "secret-token"}.String()
	if strings.Contains(s, "secret-token") {
		t.Errorf("String() leaks the token: %s", s)
	}
}

func TestDecodeChallenge(t *testing.T) {
	// Dovecot 2.3's XOAUTH2 refusal, as captured on the wire.
	c, err := DecodeChallenge("eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=")
	if err != nil || c.Status != "401" || c.Schemes != "bearer" || c.Scope != "mail" {
		t.Fatalf("DecodeChallenge = %+v, %v", c, err)
	}
	if _, err := DecodeChallenge("bm90IGpzb24="); err == nil {
		t.Error("non-JSON challenge decoded without error")
	}
}
