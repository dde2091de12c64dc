// Command fakeidp runs the fake Microsoft identity platform of package
// fakeidp as a standalone loopback server, for shell-driven end-to-end
// tests. When it is ready it prints exactly one line on stdout,
//
//	FAKEIDP_URL=http://127.0.0.1:PORT
//
// and serves until SIGINT or SIGTERM. Point a client at
// $FAKEIDP_URL/{tenant}/oauth2/v2.0/{authorize,devicecode,token}, Dovecot at
// $FAKEIDP_URL/introspect, and steer it through $FAKEIDP_URL/_fake/...
// (see package fakeidp). Set FAKEIDP_DEBUG=1 to log request paths and
// grant types (never tokens) to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/fakeidp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "fakeidp: error: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeidp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on")
	clientID := fs.String("client-id", "", "accepted client_id (empty accepts any)")
	user := fs.String("user", fakeidp.DefaultUser, "login used when the authorize request has no login_hint")
	lifetime := fs.Duration("at-lifetime", fakeidp.DefaultAccessTokenLifetime, "lifetime (expires_in) of access tokens")
	interval := fs.Int("device-interval", fakeidp.DefaultDeviceInterval, "device flow polling `interval` in seconds")
	strict := fs.Bool("strict", false, "accept only the newest refresh token of each grant")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: fakeidp [options]\n\nA fake Microsoft identity platform on loopback, for tests.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	s := fakeidp.NewHandler(fakeidp.Options{
		ClientID:            *clientID,
		DefaultUser:         *user,
		AccessTokenLifetime: *lifetime,
		DeviceInterval:      *interval,
		StrictRotation:      *strict,
	})
	base := "http://" + ln.Addr().String()
	s.SetURL(base)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "FAKEIDP_URL=%s\n", base)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// checkLoopback refuses any address that is not a loopback IP or
// "localhost": the fake must never be reachable from the network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-addr %q: refusing to listen on a non-loopback address", addr)
}
