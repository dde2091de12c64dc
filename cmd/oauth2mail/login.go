package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/oauth2mail/oauth2mail/internal/config"
	"github.com/oauth2mail/oauth2mail/internal/helper"
)

type loginOptions struct {
	device, browser, noOpen, secretStdin  bool
	provider, email, clientID, tenant, st string
}

func loginFlags(fs *pflag.FlagSet, e *env) {
	login := &e.login
	fs.BoolVar(&login.device, "device", false, "use the device-code flow (SSH, headless)")
	fs.BoolVar(&login.browser, "browser", false, "use the browser (authorization code + PKCE)")
	fs.BoolVar(&login.noOpen, "no-open", false, "print the sign-in URL instead of opening a browser")
	fs.BoolVar(&login.secretStdin, "secret-stdin", false, "app-only accounts: read the client secret from standard input")
	fs.StringVar(&login.provider, "provider", "", "create the account: the provider `NAME`: microsoft, google or generic")
	fs.StringVar(&login.email, "email", "", "create the account: the mailbox `ADDRESS`")
	fs.StringVar(&login.clientID, "client-id", "", "create the account: the app's client `ID`")
	fs.StringVar(&login.tenant, "tenant", "", "create the account (microsoft): the `TENANT`: common, organizations, consumers, a tenant ID or domain")
	fs.StringVar(&login.st, "store", "", "create the account: the `STORE` for its key: keyring (default) or file")
}

func runLogin(e *env, fs *pflag.FlagSet) error {
	login := &e.login
	name, err := oneAccount(fs)
	if err != nil {
		return err
	}
	if login.device && login.browser {
		return usagef("login: --device and --browser exclude each other")
	}
	f, a, err := e.loginAccount(name)
	if err != nil {
		return err
	}
	flow := ""
	switch {
	case login.device:
		flow = config.FlowDevice
	case login.browser:
		flow = config.FlowBrowser
	}
	app := a.Flow == config.FlowClientCredentials
	if app && flow != "" {
		return usagef("login: %s is an app-only account (flow = \"client-credentials\"): no person signs in, so --device and --browser do not apply", a.Name)
	}
	if login.secretStdin && !app {
		return usagef("login: --secret-stdin is for app-only accounts (flow = \"client-credentials\"); %s signs in as a person", a.Name)
	}
	opt := helper.LoginOptions{Flow: flow, NoOpen: login.noOpen, Out: e.stderr}
	if login.secretStdin || helper.NeedsStoredSecret(a) {
		if opt.Secret, err = e.readSecret(a); err != nil {
			return err
		}
	}
	st, err := e.broker(f).Login(e.ctx, a, opt)
	if err != nil {
		return err
	}
	e.tellAgent(a.Name)
	if app {
		fmt.Fprintf(e.stderr, "oauth2mail: %s: the app got a token for tenant %s; access token valid until %s\n", a.Name, a.Tenant, st.Expiry.Local().Format("2006-01-02 15:04"))
		if opt.Secret != "" {
			fmt.Fprintf(e.stderr, "oauth2mail: %s: the client secret is stored with the account's tokens (%s store)\n", a.Name, a.Store)
		}
		fmt.Fprintf(e.stderr, "oauth2mail: try it: oauth2mail test %s imap --user MAILBOX\n", a.Name)
		return nil
	}
	fmt.Fprintf(e.stderr, "oauth2mail: %s: logged in as %s; access token valid until %s\n", a.Name, a.Email, st.Expiry.Local().Format("2006-01-02 15:04"))
	fmt.Fprintf(e.stderr, "oauth2mail: try it: oauth2mail token %s\n", a.Name)
	return nil
}

// readSecret reads an app's client secret: from standard input with
// --secret-stdin, else from the terminal without echo.
func (e *env) readSecret(a *config.Account) (string, error) {
	if e.login.secretStdin {
		s, err := helper.ReadSecret(e.stdin)
		if err != nil {
			return "", usagef("login: --secret-stdin: %v", err)
		}
		return s, nil
	}
	s, err := promptSecret(e.ctx, fmt.Sprintf("Client secret of app %s for %s (the secret's Value; input is hidden): ", a.ClientID, a.Name))
	switch {
	case e.ctx.Err() != nil:
		return "", e.ctx.Err()
	case errors.Is(err, errNothingTyped):
		return "", usagef("login: no client secret was typed; nothing was stored")
	case err != nil:
		return "", usagef("login: %s needs the app's client secret and there is no terminal to ask on (%v); pipe it in: ... | oauth2mail login %s --secret-stdin", a.Name, err, a.Name)
	}
	return s, nil
}

// loginAccount returns the account to log in to, adding it to the config
// when --provider/--email/--client-id describe a new one.
func (e *env) loginAccount(name string) (*config.File, *config.Account, error) {
	login := &e.login
	creating := login.provider != "" || login.email != "" || login.clientID != "" || login.tenant != "" || login.st != ""
	f, err := config.Load(e.path())
	if err == nil {
		if a, ok := f.Accounts[name]; ok {
			if creating {
				return nil, nil, usagef("login: account %q already exists in %s; edit it there instead of passing --provider/--email/--client-id", name, f.Path)
			}
			return f, a, nil
		}
	} else if !creating || !errors.Is(err, config.ErrNoFile) {
		return nil, nil, err
	}
	if !creating {
		return nil, nil, fmt.Errorf("%w %q in %s", config.ErrUnknownAccount, name, e.path())
	}
	if login.provider == "" || login.email == "" || login.clientID == "" {
		return nil, nil, usagef("login: to add account %q, give --provider, --email and --client-id", name)
	}
	a := &config.Account{Name: name, Provider: login.provider, Email: login.email, ClientID: login.clientID, Tenant: login.tenant, Store: login.st}
	if err := config.AddAccount(e.path(), a); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(e.stderr, "oauth2mail: added account %q to %s\n", name, e.path())
	f, err = config.Load(e.path())
	if err != nil {
		return nil, nil, err
	}
	a, err = f.Account(name)
	return f, a, err
}
