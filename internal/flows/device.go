package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// deviceAuth is the RFC 8628 device authorization response, with
// Microsoft's "message" that x/oauth2 drops.
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURL         string `json:"verification_url"` // Google's spelling
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
	Message                 string `json:"message"`
}

// Device runs the device authorization grant: it asks for a code, prints the
// IdP's instructions to w, and polls until the user approves, declines, or
// the code expires (interval and slow_down honoured by x/oauth2).
func Device(ctx context.Context, conf *oauth2.Config, w io.Writer) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, &Error{Op: "device login", Kind: KindConfig, Meaning: "this provider has no device authorization endpoint", Fix: "use the browser flow: oauth2mail login ACCOUNT --browser (or set device_auth_url)"}
	}
	ctx = WithHTTPClient(ctx)
	da, err := requestDeviceCode(ctx, conf)
	if err != nil {
		return nil, Classify("device login", err)
	}
	verify := da.VerificationURI
	if verify == "" {
		verify = da.VerificationURL
	}
	// What the identity provider says goes to a terminal: one line, no
	// control characters.
	if da.Message != "" {
		fmt.Fprintln(w, firstLine(da.Message))
	} else {
		fmt.Fprintf(w, "oauth2mail: to sign in, open %s and enter the code %s\n", firstLine(verify), firstLine(da.UserCode))
	}
	resp := &oauth2.DeviceAuthResponse{
		DeviceCode:      da.DeviceCode,
		UserCode:        da.UserCode,
		VerificationURI: verify,
		Interval:        min(max(da.Interval, 0), 60), // x/oauth2 panics on a negative one (NewTicker); 0 is its default, 5 s
	}
	if da.ExpiresIn > 0 {
		resp.Expiry = time.Now().Add(time.Duration(da.ExpiresIn) * time.Second)
	}
	tok, err := conf.DeviceAccessToken(ctx, resp)
	if err != nil {
		if !resp.Expiry.IsZero() && time.Now().After(resp.Expiry) && ctx.Err() == nil {
			return nil, &Error{Op: "device login", Kind: KindLogin, Code: "expired_token", Meaning: "the code expired before the sign-in was approved", Fix: "run: oauth2mail login ACCOUNT and enter the code sooner", Err: err}
		}
		return nil, Classify("device login", err)
	}
	return tok, nil
}

func requestDeviceCode(ctx context.Context, conf *oauth2.Config) (*deviceAuth, error) {
	form := url.Values{"client_id": {conf.ClientID}}
	if len(conf.Scopes) > 0 {
		form.Set("scope", strings.Join(conf.Scopes, " "))
	}
	if conf.ClientSecret != "" {
		form.Set("client_secret", conf.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", conf.Endpoint.DeviceAuthURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r, err := clientOf(ctx).Do(req)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if r.StatusCode < 200 || r.StatusCode > 299 {
		re := &oauth2.RetrieveError{Response: r, Body: body}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil {
			re.ErrorCode, re.ErrorDescription = e.Error, e.Description
		}
		return nil, re
	}
	var da deviceAuth
	if err := json.Unmarshal(body, &da); err != nil || da.DeviceCode == "" || da.UserCode == "" {
		// Not an error response either (that is a 4xx): never show it.
		return nil, &Error{Op: "device login", Kind: KindTemporary, Status: r.StatusCode, Err: err,
			Meaning: "the identity provider answered the device code request without a device code",
			Fix:     "check your network (a proxy or captive portal?) and try again later"}
	}
	return &da, nil
}
