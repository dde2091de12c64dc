package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// AppScope is the scope of app-only tokens for Exchange Online: every
// application permission the admin granted (IMAP.AccessAsApp,
// POP.AccessAsApp, SMTP.SendAsApp).
const AppScope = "https://outlook.office365.com/.default"

// AppCredential is what an app proves itself with: a client secret, or a
// certificate and its private key (PEM, both in one file).
type AppCredential struct {
	Secret  string
	CertPEM []byte
	Source  string // where it came from, for messages: "the stored secret", a file name...
}

// AppToken gets an app-only access token with the client-credentials grant,
// through MSAL Go's confidential client. Instance discovery is off: the
// authority is the account's authority_host and tenant, and a cold process
// makes no request to Microsoft's discovery endpoint. client nil means the
// bounded default client.
func AppToken(ctx context.Context, a *config.Account, cred AppCredential, client *http.Client) (*oauth2.Token, error) {
	const op = "app token"
	var (
		c   confidential.Credential
		err error
	)
	switch {
	case len(cred.CertPEM) > 0:
		certs, key, perr := confidential.CertFromPEM(cred.CertPEM, "")
		if perr != nil {
			return nil, &Error{Op: op, Kind: KindConfig, Meaning: fmt.Sprintf("cannot use the certificate in %s: %v", cred.Source, perr),
				Fix: "the file must hold the certificate and its unencrypted private key, PEM (e.g. cat cert.pem key.pem > app.pem)"}
		}
		c, err = confidential.NewCredFromCert(certs, key)
	default:
		c, err = confidential.NewCredFromSecret(cred.Secret)
	}
	if err != nil {
		return nil, &Error{Op: op, Kind: KindConfig, Meaning: fmt.Sprintf("cannot use the credential from %s: %v", cred.Source, err), Fix: "check the certificate or secret of ACCOUNT"}
	}
	if client == nil {
		client = httpClient
	}
	app, err := confidential.New(a.AuthorityHost+"/"+a.Tenant, a.ClientID, c,
		confidential.WithInstanceDiscovery(false),
		confidential.WithHTTPClient(client))
	if err != nil {
		return nil, &Error{Op: op, Kind: KindConfig, Meaning: "the authority is not usable: " + err.Error(), Fix: "check authority_host and tenant of ACCOUNT"}
	}
	scope := AppScope
	if len(a.Scopes) == 1 {
		scope = a.Scopes[0]
	}
	ctx, cancel := context.WithTimeout(ctx, HTTPTimeout)
	defer cancel()
	res, err := app.AcquireTokenByCredential(ctx, []string{scope})
	if err != nil {
		return nil, classifyMSAL(op, err)
	}
	tok := &oauth2.Token{AccessToken: res.AccessToken, TokenType: "Bearer", Expiry: res.ExpiresOn}
	if d := time.Until(res.ExpiresOn); d > -time.Second/2 && d < time.Second/2 {
		// MSAL makes "expires_in": 0 "now", x/oauth2 no expiry at all:
		// Lifetime treats both as unknown.
		tok.Expiry = time.Time{}
	}
	return tok, nil
}

// classifyMSAL turns an MSAL error into an *Error. MSAL reports an IdP
// refusal as CallErr, whose text is "http call(URL)(POST) error: reply
// status code was 401:\n" followed by the body it already read; the body
// is decoded as x/oauth2 would, so one table classifies both.
func classifyMSAL(op string, err error) error {
	var ce msalerrors.CallErr
	var je msalerrors.InvalidJsonErr
	switch {
	case errors.As(err, &je) && strings.Contains(firstLine(je.Error()), "expires_in"):
		// MSAL refuses a token without a lifetime (x/oauth2 takes it, and
		// Lifetime assumes one).
		return &Error{Op: op, Kind: KindTemporary, Meaning: "the identity provider's answer has no valid lifetime (expires_in), so it is not a token response MSAL can use", Fix: "try again later; if it persists, check the provider's status"}
	case errors.As(err, &je):
		// A 200 that is not a token response; MSAL's text carries the
		// whole body, which may hold a token: never show it.
		return &Error{Op: op, Kind: KindTemporary, Meaning: "the identity provider answered with something that is not a token response", Fix: "check your network (a proxy or captive portal?) and try again"}
	case !errors.As(err, &ce) || ce.Resp == nil:
		return Classify(op, err)
	}
	body := []byte(nil)
	if _, b, ok := strings.Cut(ce.Error(), "\n"); ok {
		body = []byte(b)
	}
	if len(body) == 0 && ce.Resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(ce.Resp.Body, 1<<20))
	}
	re := &oauth2.RetrieveError{Response: ce.Resp, Body: body}
	var msg struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &msg) == nil {
		re.ErrorCode, re.ErrorDescription = msg.Error, msg.Description
	}
	return Classify(op, re)
}
