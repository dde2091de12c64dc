package fakeidp_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

// An app registered with https://localhost (Thunderbird-style): the
// authorize redirect goes back over https, with "/" added when the URI has
// no path, and the code is redeemed only with the identical redirect_uri.
func TestHTTPSRedirect(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeidp.Options{})
	tests := []struct {
		redirect, wantLoc string
		redeemWith        []string // refused (AADSTS500112) before the identical one succeeds
	}{
		{"https://localhost:50123", "https://localhost:50123/", []string{"http://localhost:50123", "https://localhost:50123/", "https://localhost"}},
		{"https://127.0.0.1:8443/oauth2mail/callback", "https://127.0.0.1:8443/oauth2mail/callback", []string{"https://localhost:8443/oauth2mail/callback", "https://127.0.0.1:8444/oauth2mail/callback"}},
	}
	for _, tt := range tests {
		conf := config(s, "organizations")
		conf.RedirectURL = tt.redirect
		verifier := oauth2.GenerateVerifier()
		resp := authorize(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		q := redirected(t, resp)
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, tt.wantLoc+"?") {
			t.Errorf("%s: redirected to %q, want %s?...", tt.redirect, loc, tt.wantLoc)
		}
		for _, other := range tt.redeemWith {
			c := *conf
			c.RedirectURL = other
			_, err := c.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			_, me := retrieveError(t, err)
			checkShape(t, me, "invalid_grant", 500112)
		}
		if _, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Errorf("%s: Exchange with the authorize redirect_uri: %v", tt.redirect, err)
		}
	}
}
