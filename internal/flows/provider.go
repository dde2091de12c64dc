// Package flows talks to identity providers: the authorization-code flow with
// PKCE on a loopback listener, the device-code flow, and refresh, all with
// golang.org/x/oauth2; the provider table (Microsoft, Google, generic); and
// the decoding of IdP errors (the AADSTS table) into what a user should do.
package flows

import (
	"context"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// MicrosoftScopes are requested in one consent: one token then serves IMAP,
// POP and SMTP, and offline_access yields the refresh token.
var MicrosoftScopes = []string{
	"https://outlook.office.com/IMAP.AccessAsUser.All",
	"https://outlook.office.com/POP.AccessAsUser.All",
	"https://outlook.office.com/SMTP.Send",
	"offline_access",
}

// GoogleScopes is Gmail's full IMAP/POP/SMTP scope.
var GoogleScopes = []string{"https://mail.google.com/"}

// Google's installed-app endpoints.
var googleEndpoint = oauth2.Endpoint{
	AuthURL:       "https://accounts.google.com/o/oauth2/auth",
	TokenURL:      "https://oauth2.googleapis.com/token",
	DeviceAuthURL: "https://oauth2.googleapis.com/device/code",
	AuthStyle:     oauth2.AuthStyleInParams,
}

// OAuthConfig returns the x/oauth2 configuration of an account. RedirectURL
// is left empty: the browser flow sets it once its listener has a port.
func OAuthConfig(a *config.Account) *oauth2.Config {
	c := &oauth2.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, Scopes: a.Scopes}
	switch a.Provider {
	case config.ProviderMicrosoft:
		base := a.AuthorityHost + "/" + a.Tenant + "/oauth2/v2.0/"
		c.Endpoint = oauth2.Endpoint{
			AuthURL:       base + "authorize",
			TokenURL:      base + "token",
			DeviceAuthURL: base + "devicecode",
			// Public clients: credentials in the body. The zero value
			// (auto-detect) sends HTTP Basic first and doubles every poll.
			AuthStyle: oauth2.AuthStyleInParams,
		}
		if len(c.Scopes) == 0 {
			c.Scopes = MicrosoftScopes
		}
	case config.ProviderGoogle:
		c.Endpoint = googleEndpoint
		if len(c.Scopes) == 0 {
			c.Scopes = GoogleScopes
		}
	default:
		c.Endpoint = oauth2.Endpoint{
			AuthURL:       a.AuthURL,
			TokenURL:      a.TokenURL,
			DeviceAuthURL: a.DeviceAuthURL,
			AuthStyle:     oauth2.AuthStyleInParams,
		}
	}
	return c
}

// Refresh redeems a refresh token for a new access token (and, with
// rotation, a new refresh token; when the IdP sends none the old one is kept).
func Refresh(ctx context.Context, conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	ctx = WithHTTPClient(ctx)
	// Refresh without a scope parameter: the grant's own scopes apply.
	c := *conf
	c.Scopes = nil
	tok, err := c.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, Classify("refresh", err)
	}
	return tok, nil
}
