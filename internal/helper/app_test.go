package helper

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
	"github.com/oauth2mail/oauth2mail/internal/flows"
)

const (
	appID     = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	appSecret = "app-secret~Value.0123456789"
)

// appSetup returns a broker and the fake identity platform over TLS with a
// confidential app (secret and certificate); extra is appended to the
// app-only account's config.
func appSetup(t *testing.T, extra string) (*Broker, *config.Account, *fakeidp.Server, []byte) {
	t.Helper()
	idp := fakeidp.New(fakeidp.Options{})
	t.Cleanup(idp.Close)
	cert, pemData, err := fakeidp.NewAppCert()
	if err != nil {
		t.Fatal(err)
	}
	idp.AddApp(fakeidp.App{ClientID: appID, Secret: appSecret, Cert: cert})
	base, _ := idp.StartTLS()
	f, err := config.Parse("c.toml", []byte(`[accounts.svc]
provider = "microsoft"
flow = "client-credentials"
email = "service@contoso.com"
tenant = "contoso.onmicrosoft.com"
client_id = "`+appID+`"
store = "file"
authority_host = "`+base+`"
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	b := New(filepath.Join(t.TempDir(), "state"), &bytes.Buffer{}, true)
	b.HTTPClient = idp.TLSClient()
	return b, f.Accounts["svc"], idp, pemData
}

func TestAppStoredSecret(t *testing.T) {
	b, a, idp, _ := appSetup(t, "")
	ctx := context.Background()
	if _, err := b.Token(ctx, a); !errors.Is(err, ErrLoginNeeded) {
		t.Fatalf("Token before login: %v, want ErrLoginNeeded", err)
	}
	// A wrong secret is refused at login and nothing is stored.
	_, err := b.Login(ctx, a, LoginOptions{Secret: "not-the-secret-XYZ", Out: &bytes.Buffer{}})
	var fe *flows.Error
	if !errors.As(err, &fe) || fe.AADSTS != 7000215 {
		t.Fatalf("login with a wrong secret: %v, want AADSTS7000215", err)
	}
	if _, err := os.Stat(b.store(a).Path(a.Name)); !os.IsNotExist(err) {
		t.Fatalf("a refused login stored state: %v", err)
	}
	first, err := b.Login(ctx, a, LoginOptions{Secret: appSecret, Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(b.store(a).Path(a.Name))
	if bytes.Contains(raw, []byte(appSecret)) || bytes.Contains(raw, []byte(first.AccessToken)) {
		t.Fatal("the state file holds the secret or the token in clear")
	}
	// Cached like every token: no request while it is fresh.
	st, err := b.Token(ctx, a)
	if err != nil || st.AccessToken != first.AccessToken || idp.Stats().ClientCredentialsOK != 1 {
		t.Fatalf("cached Token: %v, %v, %d requests", st, err, idp.Stats().ClientCredentialsOK)
	}
	// Near expiry a new token comes from the stored secret.
	b.Now = func() time.Time { return first.Expiry.Add(-time.Minute) }
	st, err = b.Token(ctx, a)
	if err != nil || st.AccessToken == first.AccessToken || !idp.ValidAccessToken(st.AccessToken) || st.RefreshToken != "" {
		t.Fatalf("renewed Token: %v, %v", st, err)
	}
	if s := b.Status(a); s.State != "ok" || s.Flow != config.FlowClientCredentials {
		t.Errorf("status = %+v", s)
	}
}

func TestAppSecretRevokedMarksLogin(t *testing.T) {
	b, a, idp, _ := appSetup(t, "")
	ctx := context.Background()
	first, err := b.Login(ctx, a, LoginOptions{Secret: appSecret, Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	// The admin deletes the secret (here: the app gets another one).
	idp.AddApp(fakeidp.App{ClientID: appID, Secret: "the-new-secret"})
	b.Now = func() time.Time { return first.Expiry.Add(-time.Minute) }
	var fe *flows.Error
	if _, err := b.Token(ctx, a); !errors.As(err, &fe) || fe.AADSTS != 7000215 || !strings.Contains(fe.Hint("svc"), "oauth2mail login svc") {
		t.Fatalf("Token after the secret changed: %v", err)
	}
	if s := b.Status(a); s.State != "login-needed" || !strings.Contains(s.Detail, "client secret is wrong") {
		t.Errorf("status = %+v", s)
	}
}

func TestAppCertificateNeedsNoLogin(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "app.pem")
	b, a, idp, pemData := appSetup(t, `certificate = "`+cert+`"`+"\n")
	if err := os.WriteFile(cert, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if s := b.Status(a); s.State != "expired" || s.Err != nil {
		t.Errorf("status before the first token = %+v", s)
	}
	st, err := b.Token(ctx, a)
	if err != nil || !idp.ValidAccessToken(st.AccessToken) {
		t.Fatalf("Token with a certificate: %v", err)
	}
	if again, err := b.Token(ctx, a); err != nil || again.AccessToken != st.AccessToken || idp.Stats().ClientCredentialsOK != 1 {
		t.Fatalf("second Token not cached: %v, %d requests", err, idp.Stats().ClientCredentialsOK)
	}
	// A key file other users can read is refused, like ssh does.
	os.Chmod(cert, 0o644)
	b.Now = func() time.Time { return st.Expiry }
	var ce *CredentialError
	if _, err := b.Token(ctx, a); !errors.As(err, &ce) || !strings.Contains(ce.Fix, "chmod 600 "+cert) {
		t.Fatalf("Token with a 0644 key file: %v", err)
	}
	// --secret-stdin makes no sense when the config has the credential.
	if _, err := b.Login(ctx, a, LoginOptions{Secret: "x", Out: &bytes.Buffer{}}); !errors.As(err, &ce) {
		t.Fatalf("Login with a secret for a certificate account: %v", err)
	}
}

func TestAppSecretCommand(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte(appSecret+"\nsecond line ignored\n"), 0o600)
	tests := []struct {
		name, command, want string
	}{
		{"first line", "cat " + secretFile, ""},
		{"fails", "echo locked >&2; exit 3", "client_secret_command failed: exit status 3"},
		{"prints nothing", "true", "client_secret_command printed nothing"},
		{"too much", "head -c 70000 /dev/zero", "more than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, a, idp, _ := appSetup(t, "client_secret_command = '"+tt.command+"'\n")
			var log bytes.Buffer
			b.Log = &log
			st, err := b.Token(context.Background(), a)
			if tt.want == "" {
				if err != nil || !idp.ValidAccessToken(st.AccessToken) {
					t.Fatalf("Token: %v", err)
				}
				return
			}
			var ce *CredentialError
			if !errors.As(err, &ce) || !strings.Contains(ce.Error(), tt.want) || strings.Contains(ce.Fix, tt.command) || !strings.Contains(ce.Fix, "client_secret_command of svc") {
				t.Fatalf("Token: %v, want a CredentialError containing %q", err, tt.want)
			}
			if idp.Stats().ClientCredentials != 0 {
				t.Errorf("a failed command still asked the IdP")
			}
		})
	}
}
