package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/oauth2mail/oauth2mail/internal/helper"
)

// Every command a person can run is documented, listed, and has an example;
// its help shows every one of its flags.
func TestHelpCoversEveryCommand(t *testing.T) {
	for name, cmd := range commands() {
		if strings.HasPrefix(name, "__") {
			if slices.Contains(order, name) {
				t.Errorf("hidden %s is listed", name)
			}
			continue
		}
		d := docs[name]
		if d.summary == "" || len(d.examples) == 0 {
			t.Errorf("%s: no summary or no example", name)
		}
		if !slices.Contains(order, name) {
			t.Errorf("%s is not in the command list", name)
		}
		var b bytes.Buffer
		printHelp(&b, name)
		fs, _ := (&env{}).flagSet(name, cmd)
		fs.VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(b.String(), "--"+f.Name) {
				t.Errorf("%s --help does not show --%s", name, f.Name)
			}
			if flagText(f) == "" {
				t.Errorf("%s --%s has no help text", name, f.Name)
			}
		})
		for _, x := range d.examples {
			if !strings.Contains(x.cmd, "oauth2mail "+name) && !strings.Contains(x.cmd, "oauth2mail-agent") {
				t.Errorf("%s: example %q does not run the command", name, x.cmd)
			}
		}
		for _, l := range strings.Split(b.String(), "\n") {
			if len(l) > 100 {
				t.Errorf("%s --help: line of %d columns: %q", name, len(l), l)
			}
		}
	}
	for _, name := range order {
		if _, ok := commands()[name]; !ok {
			t.Errorf("listed %s is no command", name)
		}
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// On a terminal the state is coloured, without moving a column.
func TestStatusColour(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	all := []helper.Status{
		{Account: "work", Email: "me@contoso.com", Store: "keyring", State: "ok", AccessExpiry: &exp, HasRefreshToken: true},
		{Account: "home-and-longer", Email: "me@outlook.com", Store: "file", State: "login-needed", Detail: "AADSTS700082"},
		{Account: "old", Email: "old@contoso.com", Store: "file", State: "expired", HasRefreshToken: true},
	}
	var plain bytes.Buffer
	printStatus(&plain, "config.toml", all)
	coloured := colourStates(plain.String())
	if ansi.MatchString(plain.String()) {
		t.Errorf("colour in the plain table:\n%s", plain.String())
	}
	if got := ansi.ReplaceAllString(coloured, ""); got != plain.String() {
		t.Errorf("colour moved the table:\n%s\nwant\n%s", got, plain.String())
	}
	for _, s := range []string{"[]\n", "no accounts in config.toml\n"} {
		if got := colourStates(s); got != s {
			t.Errorf("colourStates(%q) = %q", s, got)
		}
	}
	for _, want := range []string{"\x1b[32mok\x1b[0m", "\x1b[1;31mlogin-needed (AADSTS700082)\x1b[0m", "\x1b[32mexpired\x1b[0m"} {
		if !strings.Contains(coloured, want) {
			t.Errorf("no %q in\n%q", want, coloured)
		}
	}
}
