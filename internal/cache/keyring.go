package cache

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// keyringService is the service name of oauth2mail's keyring items; the
// item's user is the account name and its secret a base64 32-byte key.
const keyringService = "oauth2mail"

// keyringTimeout bounds every keyring call: a desktop may show an unlock
// prompt, so it is generous, but a mail client never waits forever.
var keyringTimeout = 30 * time.Second

type keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

type systemKeyring struct{}

func (systemKeyring) Get(s, u string) (string, error) { return gokeyring.Get(s, u) }
func (systemKeyring) Set(s, u, p string) error        { return gokeyring.Set(s, u, p) }
func (systemKeyring) Delete(s, u string) error        { return gokeyring.Delete(s, u) }

// SessionBus reports whether a D-Bus session bus can be found without
// starting one. On Linux and the BSDs, go-keyring's D-Bus library otherwise
// runs dbus-launch, which spawns (and leaks) a bus and a keyring daemon per
// call. Elsewhere the keyring does not use D-Bus and this is always true.
func SessionBus() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return true
	}
	_, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid()))
	return err == nil
}

// ErrNoSessionBus explains the missing bus in the words a user needs; it is
// returned wrapped with ErrUnavailable.
var ErrNoSessionBus = errors.New("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and /run/user/UID/bus is missing), so the keyring cannot be reached")

// call runs f with the keyring checks and bounds every call must have.
func (s *Store) call(f func() error) error {
	if _, ok := s.keyring.(systemKeyring); ok && !SessionBus() {
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrNoSessionBus)
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(keyringTimeout):
		return fmt.Errorf("%w: the keyring did not answer within %s (is it locked?)", ErrUnavailable, keyringTimeout)
	}
}

func (s *Store) keyringKey(account string) ([]byte, error) {
	var secret string
	err := s.call(func() (err error) {
		secret, err = s.keyring.Get(keyringService, account)
		return err
	})
	switch {
	case errors.Is(err, gokeyring.ErrNotFound):
		return nil, errNoKey
	case errors.Is(err, ErrUnavailable):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: keyring: %v", ErrUnavailable, err)
	}
	return decodeKey(secret, "keyring item "+keyringService+"/"+account)
}

func (s *Store) setKeyringKey(account string, key []byte) error {
	err := s.call(func() error { return s.keyring.Set(keyringService, account, encodeKey(key)) })
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: keyring: %v", ErrUnavailable, err)
	}
	return err
}

func (s *Store) deleteKeyringKey(account string) error {
	err := s.call(func() error { return s.keyring.Delete(keyringService, account) })
	if err == nil || errors.Is(err, gokeyring.ErrNotFound) {
		return nil
	}
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: keyring: %v", ErrUnavailable, err)
	}
	return err
}

func encodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

func decodeKey(s, where string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: %w: not a 32-byte base64 key", where, ErrCorrupt)
	}
	return key, nil
}
