package flows

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// BrowserTimeout is how long the loopback listener waits for the redirect.
const BrowserTimeout = 5 * time.Minute

// BrowserOptions tune the authorization-code flow.
type BrowserOptions struct {
	RedirectHost string    // "localhost" or "127.0.0.1": the host in redirect_uri
	LoginHint    string    // pre-fills the account at the IdP
	NoOpen       bool      // never start a browser; print the URL only
	Out          io.Writer // human messages (stderr)
	Verbose      bool
	Extra        []oauth2.AuthCodeOption
}

// Browser runs the authorization-code flow with PKCE (S256) and a random
// state on a loopback listener bound to 127.0.0.1 on a random port. The
// listener serves exactly one redirect, then shuts down.
func Browser(ctx context.Context, conf *oauth2.Config, opt BrowserOptions) (*oauth2.Token, error) {
	if conf.Endpoint.AuthURL == "" {
		return nil, &Error{Op: "browser login", Kind: KindConfig, Meaning: "this provider has no authorization endpoint", Fix: "use the device flow: oauth2mail login ACCOUNT --device (or set auth_url)"}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("browser login: cannot listen on 127.0.0.1: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{ln}
	if opt.RedirectHost == "localhost" {
		// Some browsers resolve localhost to ::1 first: answer there too.
		if ln6, err := net.Listen("tcp", "[::1]:"+strconv.Itoa(port)); err == nil {
			lns = append(lns, ln6)
		}
	}
	c := *conf
	c.RedirectURL = "http://" + opt.RedirectHost + ":" + strconv.Itoa(port)
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
			if r.URL.Path != "/" {
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
	for _, l := range lns {
		go srv.Serve(l)
	}
	defer srv.Close()

	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "oauth2mail: to sign in, open this page in a browser on this machine:\n  %s\n", authURL)
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
