// Command oauth2mail is an OAuth 2.0 token broker and SASL credential helper
// for mail clients: it logs in to Microsoft 365 / Outlook.com, Gmail or any
// OAuth provider once, keeps the refresh token encrypted under a key in the
// OS keyring, and prints a fresh access token or a ready XOAUTH2 /
// OAUTHBEARER string whenever msmtp, mbsync, mutt or a script asks.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(main1()) }

func main1() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
