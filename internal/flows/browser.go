package flows

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"
)

// BrowserTimeout is how long the loopback listener waits for the redirect.
const BrowserTimeout = 5 * time.Minute

// BrowserOptions tune the authorization-code flow.
type BrowserOptions struct {
	RedirectHost string // "localhost" or "127.0.0.1": the host in redirect_uri
	// RedirectURI, when set, is the redirect registered for the app, used
	// as it is: http or https, host, port (none: a random one, put into
	// the redirect_uri sent) and path. https is served with a certificate
	// made for this login. It overrides RedirectHost.
	RedirectURI string
	LoginHint   string    // pre-fills the account at the IdP
	NoOpen      bool      // never start a browser; print the URL only
	Out         io.Writer // human messages (stderr)
	Verbose     bool
	Extra       []oauth2.AuthCodeOption
}

// Browser runs the authorization-code flow with PKCE (S256) and a random
// state on a loopback listener bound to 127.0.0.1 (and ::1 for localhost)
// on a random port, or on the port of opt.RedirectURI. The listener serves
// exactly one redirect, then shuts down.
func Browser(ctx context.Context, conf *oauth2.Config, opt BrowserOptions) (*oauth2.Token, error) {
	if conf.Endpoint.AuthURL == "" {
		return nil, &Error{Op: "browser login", Kind: KindConfig, Meaning: "this provider has no authorization endpoint", Fix: "use the device flow: oauth2mail login ACCOUNT --device (or set auth_url)"}
	}
	red, err := parseRedirect(opt)
	if err != nil {
		return nil, err
	}
	lns, port, err := red.listen()
	if err != nil {
		return nil, err
	}
	c := *conf
	c.RedirectURL = red.uri(port)
	state := randomString(32)
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, opt.Extra...)
	if opt.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", opt.LoginHint))
	}
	authURL := c.AuthCodeURL(state, opts...)

	results := make(chan callbackResult, 1)
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != red.path {
				http.NotFound(w, r)
				return
			}
			if err := r.ParseForm(); err != nil { // query, or form_post body
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			res := callback(r, state)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			if res.err != nil {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, page("Sign-in failed", res.err.Error()+". Return to the terminal for what to do."))
			} else {
				fmt.Fprint(w, page("Signed in", "oauth2mail has your sign-in. You can close this tab."))
			}
			select {
			case results <- res:
			default:
			}
		}),
	}
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	// A browser that refuses the certificate ends the TLS handshake, which
	// the server would log on stderr: only --verbose shows that.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opt.Verbose {
		srv.ErrorLog = log.New(out, "oauth2mail: loopback: ", 0)
	}
	var cert *x509.Certificate
	if red.scheme == "https" {
		var tc tls.Certificate
		if tc, cert, err = loopbackCert(time.Now()); err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("browser login: making the loopback certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{tc}, MinVersion: tls.VersionTLS12}
	}
	for _, l := range lns {
		if cert != nil {
			go srv.ServeTLS(l, "", "")
		} else {
			go srv.Serve(l)
		}
	}
	defer srv.Close()

	fmt.Fprintf(out, "oauth2mail: to sign in, open this page in a browser on this machine:\n  %s\n", authURL)
	if cert != nil {
		certWarning(out, c.RedirectURL, cert)
	}
	if !opt.NoOpen {
		if err := openBrowser(authURL); err != nil && opt.Verbose {
			fmt.Fprintf(out, "oauth2mail: could not open a browser: %v\n", err)
		}
	}
	fmt.Fprintf(out, "oauth2mail: waiting for the browser to come back to %s (up to %s)...\n", c.RedirectURL, BrowserTimeout)

	wait, cancel := context.WithTimeout(ctx, BrowserTimeout)
	defer cancel()
	var res callbackResult
	select {
	case res = <-results:
	case <-wait.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Op: "browser login", Kind: KindLogin, Meaning: "no answer from the browser within 5 minutes", Fix: "run: oauth2mail login ACCOUNT again, or use --device on a machine without a browser"}
	}
	// Let the success page reach the browser before the listener closes.
	shut, cancelShut := context.WithTimeout(context.Background(), time.Second)
	srv.Shutdown(shut)
	cancelShut()
	if res.err != nil {
		return nil, res.err
	}
	tok, err := c.Exchange(WithHTTPClient(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, Classify("browser login", err)
	}
	return tok, nil
}

// redirect is where the browser comes back to oauth2mail.
type redirect struct {
	raw    string // the configured redirect_uri; "" for http://host:PORT
	scheme string // "http" or "https"
	host   string // "localhost" or "127.0.0.1"
	port   int    // the port to listen on; 0 for a random one
	path   string // the path served; others get 404
}

func parseRedirect(opt BrowserOptions) (redirect, error) {
	if opt.RedirectURI == "" {
		return redirect{scheme: "http", host: opt.RedirectHost, path: "/"}, nil
	}
	// internal/config has checked it; a caller that did not gets a bug.
	u, err := url.Parse(opt.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || (u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1") || u.RawQuery != "" || u.Fragment != "" {
		return redirect{}, &Error{Op: "browser login", Kind: KindConfig, Meaning: fmt.Sprintf("redirect_uri %q is not a loopback URL like \"https://localhost\"", opt.RedirectURI), Fix: "set redirect_uri to the redirect registered for the app, e.g. https://localhost or http://localhost:8400/callback"}
	}
	r := redirect{raw: opt.RedirectURI, scheme: u.Scheme, host: u.Hostname(), path: u.Path}
	if p := u.Port(); p != "" {
		if r.port, err = strconv.Atoi(p); err != nil || r.port < 1 || r.port > 65535 {
			return redirect{}, &Error{Op: "browser login", Kind: KindConfig, Meaning: fmt.Sprintf("redirect_uri %q has no valid port", opt.RedirectURI), Fix: "set redirect_uri to the redirect registered for the app"}
		}
	}
	if r.path == "" {
		// The IdP adds the "/" to a redirect without a path.
		r.path = "/"
	}
	return r, nil
}

// uri is the redirect_uri sent to the IdP, identical in the authorize and
// the token request: the configured one as it is, with the listener's port
// put in when it names none. Entra ID ignores the port when it matches a
// loopback redirect (reference §1.4), so "https://localhost" registered
// matches "https://localhost:PORT" sent.
func (r redirect) uri(port int) string {
	switch {
	case r.raw == "":
		return "http://" + r.host + ":" + strconv.Itoa(port)
	case r.port != 0:
		return r.raw
	}
	i := strings.Index(r.raw, "://") + len("://")
	j := strings.IndexByte(r.raw[i:], '/')
	if j < 0 {
		j = len(r.raw) - i
	}
	return r.raw[:i+j] + ":" + strconv.Itoa(port) + r.raw[i+j:]
}

// listen binds 127.0.0.1 on the redirect's port (or a random one) and, for
// localhost, ::1 on the same port: some browsers try ::1 first.
func (r redirect) listen() ([]net.Listener, int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)))
	if err != nil {
		return nil, 0, r.listenError("127.0.0.1", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{ln}
	if r.host == "localhost" {
		ln6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		switch {
		case err == nil:
			lns = append(lns, ln6)
		case r.port != 0 && errors.Is(err, syscall.EADDRINUSE):
			// Another program on [::1]:port would get the browser's visit.
			ln.Close()
			return nil, 0, r.listenError("::1", err)
		}
		// Otherwise no IPv6 here: 127.0.0.1 alone serves.
	}
	return lns, port, nil
}

func (r redirect) listenError(addr string, err error) error {
	switch {
	case r.port != 0 && errors.Is(err, syscall.EADDRINUSE):
		return &Error{Op: "browser login", Kind: KindTemporary, Err: err,
			Meaning: fmt.Sprintf("port %d of redirect_uri %q is in use by another program", r.port, r.raw),
			Fix:     fmt.Sprintf("stop the program listening on port %d (another oauth2mail login?) and try again, or register a redirect URI with another port for the app and set redirect_uri to it", r.port)}
	case r.port != 0 && errors.Is(err, syscall.EACCES):
		return &Error{Op: "browser login", Kind: KindConfig, Err: err,
			Meaning: fmt.Sprintf("port %d of redirect_uri %q needs privileges to listen on", r.port, r.raw),
			Fix:     "register a redirect URI without a port (or one above 1023) for the app and set redirect_uri to it"}
	}
	return fmt.Errorf("browser login: cannot listen on %s: %w", addr, err)
}

type callbackResult struct {
	code string
	err  error
}

func callback(r *http.Request, state string) callbackResult {
	got := r.Form.Get("state")
	if subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
		return callbackResult{err: &Error{Op: "browser login", Kind: KindLogin, Meaning: "the redirect carried the wrong state parameter, so it was rejected (a stale tab or a forged request)", Fix: "run: oauth2mail login ACCOUNT again and use the newest page only"}}
	}
	if code := r.Form.Get("error"); code != "" {
		re := &oauth2.RetrieveError{ErrorCode: code, ErrorDescription: r.Form.Get("error_description")}
		return callbackResult{err: Classify("browser login", re)}
	}
	code := r.Form.Get("code")
	if code == "" {
		return callbackResult{err: &Error{Op: "browser login", Kind: KindBug, Meaning: "the redirect carried neither a code nor an error"}}
	}
	return callbackResult{code: code}
}

func page(title, msg string) string {
	return `<!doctype html><html><head><meta charset="utf-8"><title>oauth2mail: ` + html.EscapeString(title) +
		`</title></head><body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>` +
		html.EscapeString(title) + `</h1><p>` + html.EscapeString(msg) + `</p></body></html>`
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HasDisplay reports whether a graphical browser can be started here.
func HasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return os.Getenv("SSH_CONNECTION") == ""
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// openBrowser starts $BROWSER, or the desktop's opener when a display exists.
// The URL holds no secret (state and the PKCE challenge are public).
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch {
	case os.Getenv("BROWSER") != "":
		cmd = exec.Command(os.Getenv("BROWSER"), u)
	case !HasDisplay():
		return errors.New("no display")
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", u)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
