package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/term"
)

// errNothingTyped: the person pressed Enter at the prompt.
var errNothingTyped = errors.New("nothing was typed")

// promptSecret asks on the controlling terminal, without echo, and returns
// what was typed. Standard input and output are left alone: they may be
// pipes. Ctrl-C (ctx cancelled) gives the terminal its echo back and
// returns ctx's error.
func promptSecret(ctx context.Context, prompt string) (string, error) {
	name := "/dev/tty"
	if runtime.GOOS == "windows" {
		name = "CONIN$"
	}
	tty, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer tty.Close()
	fd := int(tty.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("not a terminal")
	}
	saved, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	fmt.Fprint(tty, prompt)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		term.Restore(fd, saved)
		fmt.Fprintln(tty)
		return "", ctx.Err()
	}
	fmt.Fprintln(tty)
	if r.err != nil {
		return "", r.err
	}
	s := strings.TrimSpace(string(r.b))
	if s == "" {
		return "", errNothingTyped
	}
	return s, nil
}
