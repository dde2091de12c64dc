package helper

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/cache"
	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
	"github.com/oauth2mail/oauth2mail/internal/flows"
)

func setup(t *testing.T) (*Broker, *config.Account, *fakeidp.Server, *bytes.Buffer) {
	t.Helper()
	idp := fakeidp.New(fakeidp.Options{StrictRotation: true})
	t.Cleanup(idp.Close)
	f, err := config.Parse("c.toml", []byte(`[accounts.work]
provider = "microsoft"
email = "me@contoso.com"
client_id = "c"
store = "file"
authority_host = "`+idp.URL+`"
`))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	b := New(filepath.Join(t.TempDir(), "state"), &log, true)
	return b, f.Accounts["work"], idp, &log
}

func login(t *testing.T, b *Broker, a *config.Account) *cache.State {
	t.Helper()
	st, err := b.Login(context.Background(), a, LoginOptions{Flow: config.FlowDevice, Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestTokenCachedThenRefreshed(t *testing.T) {
	b, a, idp, log := setup(t)
	first := login(t, b, a)
	st, err := b.Token(context.Background(), a)
	if err != nil || st.AccessToken != first.AccessToken {
		t.Fatalf("cached Token = %v, %v", st, err)
	}
	if n := idp.Stats().Refreshes; n != 0 {
		t.Fatalf("refreshes = %d for a fresh token", n)
	}
	// Four minutes left is inside the skew: refresh, and keep the rotated RT.
	b.Now = func() time.Time { return first.Expiry.Add(-4 * time.Minute) }
	st, err = b.Token(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if st.AccessToken == first.AccessToken || st.RefreshToken == first.RefreshToken {
		t.Error("refresh did not replace the access and refresh tokens")
	}
	if !idp.AcceptsRefreshToken(st.RefreshToken) || idp.AcceptsRefreshToken(first.RefreshToken) {
		t.Error("the stored refresh token is not the newest one")
	}
	saved, _ := b.store(a).Load(a.Name)
	if saved.RefreshToken != st.RefreshToken || saved.LastRefresh.IsZero() || saved.LoginAt.IsZero() {
		t.Errorf("saved state %v does not hold the rotation", saved)
	}
	for _, secret := range []string{first.AccessToken, first.RefreshToken, st.AccessToken, st.RefreshToken} {
		if strings.Contains(log.String(), secret) {
			t.Fatal("the verbose log holds a token")
		}
	}
	if !strings.Contains(log.String(), "refresh token rotated") {
		t.Errorf("verbose log = %q", log.String())
	}
}

func TestTokenNotLoggedIn(t *testing.T) {
	b, a, _, _ := setup(t)
	if _, err := b.Token(context.Background(), a); !errors.Is(err, ErrLoginNeeded) {
		t.Errorf("err = %v, want ErrLoginNeeded", err)
	}
	if s := b.Status(a); s.State != "login-needed" || !errors.Is(s.Err, ErrLoginNeeded) {
		t.Errorf("Status = %+v", s)
	}
}

func TestTokenNoRefreshToken(t *testing.T) {
	b, a, _, _ := setup(t)
	st := login(t, b, a)
	st.RefreshToken = ""
	b.store(a).Save(a.Name, st)
	b.Now = func() time.Time { return st.Expiry }
	if _, err := b.Token(context.Background(), a); !errors.Is(err, ErrLoginNeeded) {
		t.Errorf("err = %v, want ErrLoginNeeded", err)
	}
}

func TestRevokedKeepsState(t *testing.T) {
	b, a, idp, _ := setup(t)
	st := login(t, b, a)
	idp.Revoke(70043)
	b.Now = func() time.Time { return st.Expiry }
	_, err := b.Token(context.Background(), a)
	var fe *flows.Error
	if !errors.As(err, &fe) || fe.Kind != flows.KindLogin || fe.AADSTS != 70043 {
		t.Fatalf("err = %v, want a login-needed AADSTS70043", err)
	}
	saved, _ := b.store(a).Load(a.Name)
	if saved.RefreshToken != st.RefreshToken {
		t.Error("a failed refresh changed the stored refresh token")
	}
}

func TestStatus(t *testing.T) {
	b, a, _, _ := setup(t)
	st := login(t, b, a)
	s := b.Status(a)
	if s.State != "ok" || !s.HasRefreshToken || s.AccessTokenBytes != len(st.AccessToken) || s.LoginAt == nil {
		t.Errorf("Status = %+v", s)
	}
	b.Now = func() time.Time { return st.Expiry }
	if s := b.Status(a); s.State != "expired" {
		t.Errorf("Status after expiry = %+v", s)
	}
}

func TestChooseFlow(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	ms := &config.Account{Provider: config.ProviderMicrosoft, Flow: config.FlowAuto, AuthorityHost: "https://x", Tenant: "common"}
	google := &config.Account{Provider: config.ProviderGoogle, Flow: config.FlowAuto}
	tests := []struct {
		name      string
		a         *config.Account
		requested string
		display   string
		want      string
	}{
		{"headless microsoft", ms, "", "", config.FlowDevice},
		{"desktop microsoft", ms, "", ":0", config.FlowBrowser},
		{"flag wins", ms, config.FlowDevice, ":0", config.FlowDevice},
		{"google is always browser", google, "", "", config.FlowBrowser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DISPLAY", tt.display)
			if got := ChooseFlow(tt.a, tt.requested); got != tt.want {
				t.Errorf("ChooseFlow = %s, want %s", got, tt.want)
			}
		})
	}
}
