package flows

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// HTTPTimeout bounds each request to an identity provider, the reading of
// its answer included (http.Client.Timeout covers the body).
const HTTPTimeout = 30 * time.Second

// maxBody bounds what is read from an identity provider: a token response
// is a few KiB.
const maxBody = 1 << 20

var httpClient = NewHTTPClient(nil, HTTPTimeout)

// NewHTTPClient returns a client for identity providers over base (nil:
// http.DefaultTransport), each request bounded by timeout. Token and device
// endpoints answer with JSON, never with a redirect or a web page; what
// stands between us and them (a proxy, a captive portal) does. So the
// client follows no redirect, reads at most 1 MiB of an answer, and turns
// a redirect, an HTML page or an oversized answer into an error that names
// it without quoting the body. x/oauth2 and MSAL get the answer already
// read: their own body reads cannot hang or grow.
func NewHTTPClient(base http.RoundTripper, timeout time.Duration) *http.Client {
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: guard{base},
		// guard reports redirects; this only makes sure none is followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// WithHTTPClient returns ctx carrying the client x/oauth2 uses: the one ctx
// already carries (a test's), else the guarded default.
func WithHTTPClient(ctx context.Context) context.Context {
	if _, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, httpClient)
}

// clientOf is the client WithHTTPClient put in ctx.
func clientOf(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok {
		return c
	}
	return httpClient
}

// answerError is an identity provider's answer that cannot be an OAuth
// response, found before any parser sees it.
type answerError struct {
	Status int
	What   string // "an HTML page", "a redirect to HOST", ...
	Broken bool   // the connection ended in the middle of the answer
}

func (e *answerError) Error() string {
	if e.Broken {
		return fmt.Sprintf("the identity provider broke off its answer (HTTP %d)", e.Status)
	}
	return fmt.Sprintf("the identity provider answered HTTP %d with %s", e.Status, e.What)
}

// guard reads the whole answer (bounded) and refuses the ones that cannot
// be an OAuth response.
type guard struct{ base http.RoundTripper }

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	refuse := func(what string) (*http.Response, error) {
		resp.Body.Close()
		return nil, &answerError{Status: resp.StatusCode, What: what}
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return refuse("a redirect" + redirectHost(req.URL, resp.Header.Get("Location")))
	}
	const tooBig = "more than 1 MiB" // maxBody
	if resp.ContentLength > maxBody {
		return refuse(tooBig)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Body.Close()
	if cerr := req.Context().Err(); cerr != nil {
		// The timeout, or the caller gave up. (A read cut short so may
		// even end as if the answer were complete.)
		return nil, fmt.Errorf("reading the identity provider's answer: %w", cerr)
	}
	switch {
	case err != nil:
		return nil, &answerError{Status: resp.StatusCode, Broken: true}
	case len(body) > maxBody:
		return refuse(tooBig)
	case isHTML(resp.Header.Get("Content-Type"), body):
		return refuse("an HTML page")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// redirectHost is " to HOST" for a Location header, or "" when it names
// no host worth showing. Only the host: the rest may carry anything.
func redirectHost(from *url.URL, location string) string {
	to, err := from.Parse(location)
	if err != nil || location == "" {
		return ""
	}
	host := to.Hostname()
	if host == "" || len(host) > 100 || strings.TrimLeft(strings.ToLower(host), "abcdefghijklmnopqrstuvwxyz0123456789.-:") != "" {
		return ""
	}
	return " to " + host
}

// isHTML reports whether an answer is a web page: by its Content-Type, or
// by its first byte (no JSON or form answer starts with '<').
func isHTML(ctype string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(ctype); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	body = bytes.TrimLeft(body, " \t\r\n")
	return len(body) > 0 && body[0] == '<'
}
