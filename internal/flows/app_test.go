package flows

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

const (
	appID     = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	appSecret = "s3cr3t~value.of-the~app"
)

func appCert(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	cert, pemData, err := fakeidp.NewAppCert()
	if err != nil {
		t.Fatal(err)
	}
	return cert, pemData
}

// appIdP is the fake Microsoft identity platform over TLS with one
// confidential app that has both a secret and a certificate.
func appIdP(t *testing.T) (*fakeidp.Server, *config.Account, []byte) {
	t.Helper()
	idp := fakeidp.New(fakeidp.Options{})
	t.Cleanup(idp.Close)
	cert, pemData := appCert(t)
	idp.AddApp(fakeidp.App{ClientID: appID, Secret: appSecret, Cert: cert})
	base, _ := idp.StartTLS()
	a := &config.Account{Name: "svc", Provider: config.ProviderMicrosoft, Email: "service@contoso.com", ClientID: appID,
		Tenant: "contoso.onmicrosoft.com", AuthorityHost: base, Flow: config.FlowClientCredentials}
	return idp, a, pemData
}

func TestAppTokenSecretAndCertificate(t *testing.T) {
	idp, a, pemData := appIdP(t)
	for _, cred := range []AppCredential{{Secret: appSecret, Source: "test"}, {CertPEM: pemData, Source: "app.pem"}} {
		tok, err := AppToken(context.Background(), a, cred, idp.TLSClient())
		if err != nil {
			t.Fatalf("AppToken(%s): %v", cred.Source, err)
		}
		if !idp.ValidAccessToken(tok.AccessToken) || tok.RefreshToken != "" || time.Until(tok.Expiry) < 50*time.Minute {
			t.Errorf("AppToken(%s): token valid=%v refresh=%d bytes expiry in %s", cred.Source, idp.ValidAccessToken(tok.AccessToken), len(tok.RefreshToken), time.Until(tok.Expiry))
		}
	}
	if st := idp.Stats(); st.ClientCredentialsOK != 2 {
		t.Errorf("ClientCredentialsOK = %d, want 2", st.ClientCredentialsOK)
	}
}

func TestAppTokenErrors(t *testing.T) {
	idp, a, _ := appIdP(t)
	_, otherPEM := appCert(t) // a certificate the app registration does not know
	tests := []struct {
		name   string
		cred   AppCredential
		setup  func()
		kind   Kind
		aadsts int
		msg    string
	}{
		{"wrong secret", AppCredential{Secret: "not-the-secret-XYZ"}, nil, KindConfig, 7000215, "client secret is wrong"},
		{"unregistered certificate", AppCredential{CertPEM: otherPEM}, nil, KindConfig, 700027, "certificate is not registered"},
		{"not a PEM", AppCredential{CertPEM: []byte("hello"), Source: "/x/app.pem"}, nil, KindConfig, 0, "cannot use the certificate in /x/app.pem: no certificates found"},
		{"HTML from a proxy", AppCredential{Secret: appSecret}, func() { idp.FailNext(1, 502, "text/html", "<html>Bad Gateway</html>") }, KindTemporary, 0, "not an OAuth response"},
		{"200 without expires_in (MSAL's error would quote the body)", AppCredential{Secret: appSecret}, func() {
			idp.FailNext(1, 200, "application/json", `{"access_token":"SECRET-TOKEN-VALUE-0123456789","token_type":"Bearer"}`)
		}, KindTemporary, 0, "not a token response"},
		{"200 with an HTML page", AppCredential{Secret: appSecret}, func() { idp.FailNext(1, 200, "text/html", "<html>\n<p>Log in to the hotel wifi</p>\n</html>") }, KindTemporary, 0, "not a token response"},
		{"throttled", AppCredential{Secret: appSecret}, func() {
			idp.FailNext(1, 429, "application/json", `{"error":"temporarily_unavailable","error_description":"AADSTS90055: throttled","error_codes":[90055]}`)
		}, KindTemporary, 90055, "unavailable (HTTP 429)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			_, err := AppToken(context.Background(), a, tt.cred, idp.TLSClient())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if e.Kind != tt.kind || e.AADSTS != tt.aadsts || !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("got kind %d AADSTS %d %q; want kind %d AADSTS %d containing %q", e.Kind, e.AADSTS, e.Error(), tt.kind, tt.aadsts, tt.msg)
			}
			if strings.ContainsAny(e.Error(), "\n\r") || strings.Contains(e.Error(), "SECRET-TOKEN-VALUE") || strings.Contains(e.Error(), appSecret) || strings.Contains(e.Error(), "not-the-secret-XYZ") {
				t.Errorf("the error shows the secret: %s", e.Error())
			}
		})
	}
}

func TestAppTokenUntrustedAuthority(t *testing.T) {
	_, a, _ := appIdP(t)
	// The default client does not trust the fake's certificate: MSAL's
	// first request (the tenant discovery) fails on it.
	_, err := AppToken(context.Background(), a, AppCredential{Secret: appSecret}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTemporary || !strings.Contains(e.Error(), "certificate is not trusted") {
		t.Fatalf("err = %v, want an untrusted-certificate *Error", err)
	}
}

func TestAppTokenUnreachable(t *testing.T) {
	a := &config.Account{Name: "svc", Provider: config.ProviderMicrosoft, ClientID: appID, Tenant: "contoso.com", AuthorityHost: "https://127.0.0.1:1"}
	_, err := AppToken(context.Background(), a, AppCredential{Secret: appSecret}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTemporary || !strings.Contains(e.Error(), "cannot be reached") {
		t.Fatalf("err = %v, want a temporary 'cannot be reached' *Error", err)
	}
}
