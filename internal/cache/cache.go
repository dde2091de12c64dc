// Package cache keeps each account's token state on disk, encrypted with
// AES-256-GCM under a per-account key held in the OS keyring (or, opted into,
// in a 0600 key file). Writes are atomic and a per-account lock file lets
// concurrent processes refresh a token once. It knows nothing of OAuth flows.
package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/atomicfile"
)

// Errors a caller can act on. Each wraps the underlying cause.
var (
	// ErrNotFound: nothing is stored for the account (never logged in, or logged out).
	ErrNotFound = errors.New("no stored login")
	// ErrUnavailable: the key store cannot be reached (no D-Bus session,
	// keyring locked or absent, key file unreadable).
	ErrUnavailable = errors.New("token store unavailable")
	// ErrCorrupt: the state file exists but cannot be read back. It is left
	// untouched for inspection.
	ErrCorrupt = errors.New("stored state is unreadable")
)

// Store kinds.
const (
	KindKeyring = "keyring"
	KindFile    = "file"
)

// State is what is kept for one account.
type State struct {
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Scope        string    `json:"scope,omitempty"`

	TokenURL string `json:"token_url,omitempty"` // where the tokens were issued; refresh goes there
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is an app-only account's secret as `oauth2mail login`
	// stored it (sealed like the tokens, under the key in the keyring).
	ClientSecret string `json:"client_secret,omitempty"`

	LoginAt          time.Time `json:"login_at,omitzero"`           // last interactive login
	LastRefresh      time.Time `json:"last_refresh,omitzero"`       // last successful refresh
	RefreshTokenFrom time.Time `json:"refresh_token_from,omitzero"` // when the current refresh token was issued

	// A refresh the IdP refused in a way only a person can fix. The tokens
	// are kept (an admin may grant consent and the refresh token work
	// again); a successful refresh or login clears these.
	LoginNeeded       time.Time `json:"login_needed,omitzero"`         // since when
	LoginNeededReason string    `json:"login_needed_reason,omitempty"` // the IdP's refusal, one line, no secret
	Notified          time.Time `json:"notified,omitzero"`             // last notification of this episode
}

// Issued is when the current access token was obtained.
func (s *State) Issued() time.Time {
	if s.LastRefresh.After(s.LoginAt) {
		return s.LastRefresh
	}
	return s.LoginAt
}

// String and GoString never show token values, so a State in an error or a
// log line leaks nothing.
func (s *State) String() string {
	if s == nil {
		return "<nil state>"
	}
	return fmt.Sprintf("state{access_token:<%d bytes> expiry:%s refresh_token:<%d bytes> client_secret:<%d bytes> scope:%q}",
		len(s.AccessToken), s.Expiry.Format(time.RFC3339), len(s.RefreshToken), len(s.ClientSecret), s.Scope)
}

func (s *State) GoString() string { return s.String() }

// Store reads and writes account state under Dir.
type Store struct {
	Dir  string
	Kind string // KindKeyring or KindFile: where a new key is kept

	// keyring is the key backend; tests may replace it.
	keyring keyring

	// keys holds keys already read when KeepKeys was called (the agent
	// reads the keyring once and then serves processes that have no D-Bus).
	mu     sync.Mutex
	keys   map[string][]byte
	states map[string]remembered
}

// remembered is a decrypted state and the identity of the file it came
// from; it is reused while the file is unchanged.
type remembered struct {
	id fileID
	st State
}

type fileID struct {
	size  int64
	mtime time.Time
	sys   any // inode and device where the system has them
}

func identify(fi os.FileInfo) fileID {
	return fileID{size: fi.Size(), mtime: fi.ModTime(), sys: inode(fi)}
}

// KeepKeys makes the store remember every key it reads or creates, and
// every state it decrypts, in memory only, so later loads ask neither the
// keyring nor the disk again: a remembered state is used while its file's
// size, modification time and inode are unchanged, a remembered key that
// no longer opens the state (the account logged in again with a new key)
// is forgotten and read afresh. The agent uses it.
func (s *Store) KeepKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string][]byte{}
		s.states = map[string]remembered{}
	}
}

func (s *Store) kept(account string, kind byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[string(kind)+account]
}

func (s *Store) keep(account string, kind byte, key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		return
	}
	if key == nil {
		delete(s.keys, string(kind)+account)
		return
	}
	s.keys[string(kind)+account] = key
}

// Forget drops the remembered keys and state of account.
func (s *Store) Forget(account string) {
	s.keep(account, kindKeyByte, nil)
	s.keep(account, kindFileKey, nil)
	s.mu.Lock()
	delete(s.states, account)
	s.mu.Unlock()
}

// recall returns a copy of the remembered state of account if its file is
// still the one it was read from.
func (s *Store) recall(account string) (*State, bool) {
	s.mu.Lock()
	r, ok := s.states[account]
	s.mu.Unlock()
	if !ok { // also: not remembering at all (the direct path): no stat
		return nil, false
	}
	fi, err := os.Stat(s.statePath(account))
	if err != nil {
		return nil, false
	}
	if id := identify(fi); r.id.size != id.size || !r.id.mtime.Equal(id.mtime) || r.id.sys != id.sys {
		return nil, false
	}
	st := r.st
	return &st, true
}

// remember keeps a copy of st as read from (or written to) the file now at
// the account's path.
func (s *Store) remember(account string, st *State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.states == nil {
		return
	}
	fi, err := os.Stat(s.statePath(account))
	if err != nil {
		delete(s.states, account)
		return
	}
	s.states[account] = remembered{id: identify(fi), st: *st}
}

// DefaultDir is $XDG_STATE_HOME/oauth2mail, ~/.local/state/oauth2mail when
// unset (on Windows %LocalAppData%\oauth2mail).
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "oauth2mail")
	}
	if d := os.Getenv("LocalAppData"); d != "" {
		return filepath.Join(d, "oauth2mail")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "oauth2mail")
	}
	return filepath.Join(home, ".local", "state", "oauth2mail")
}

// New returns a Store for kind (KindKeyring or KindFile) under dir.
func New(dir, kind string) *Store {
	return &Store{Dir: dir, Kind: kind, keyring: systemKeyring{}}
}

// File format: magic, kind byte, nonce, AES-256-GCM ciphertext of the JSON
// state. The header and the account name are authenticated as additional
// data, so a file cannot be swapped between accounts or kinds unnoticed.
const (
	magic       = "oauth2mail-state-1\n"
	kindKeyByte = 'k'
	kindFileKey = 'f'
	maxState    = 1 << 20
)

func (s *Store) statePath(account string) string { return filepath.Join(s.Dir, account+".json.enc") }
func (s *Store) keyPath(account string) string   { return filepath.Join(s.Dir, account+".key") }

// Path is the state file of account (for messages).
func (s *Store) Path(account string) string { return s.statePath(account) }

// Load returns the stored state of account.
func (s *Store) Load(account string) (*State, error) {
	if st, ok := s.recall(account); ok {
		return st, nil
	}
	path := s.statePath(account)
	data, err := readBounded(path, maxState)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", account, ErrNotFound)
	}
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%s: %w: not an oauth2mail state file (%v)", path, ErrCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrUnavailable, err)
	}
	hdr := len(magic) + 1
	if len(data) < hdr+12+16 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("%s: %w: not an oauth2mail state file", path, ErrCorrupt)
	}
	kind := data[len(magic)]
	cached := s.kept(account, kind) != nil
	key, err := s.getKey(account, kind)
	if errors.Is(err, errNoKey) {
		return nil, fmt.Errorf("%s: %w: its key is missing (%s)", path, ErrCorrupt, s.keyWhere(account, kind))
	}
	if err != nil {
		return nil, err
	}
	plain, err := open(key, data[hdr:], aad(data[:hdr], account))
	if err != nil && cached {
		// The remembered key is stale (a new login made a new key).
		s.keep(account, kind, nil)
		return s.Load(account)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: it does not decrypt with its key", path, ErrCorrupt)
	}
	var st State
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, fmt.Errorf("%s: %w: it decrypts, but %s", path, ErrCorrupt, jsonProblem(err))
	}
	s.remember(account, &st)
	return &st, nil
}

// Save writes st for account atomically (temp file, fsync, rename), creating
// the account's key on first use.
func (s *Store) Save(account string, st *State) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w: %v", s.Dir, ErrUnavailable, err)
	}
	kind := byte(kindKeyByte)
	if s.Kind == KindFile {
		kind = kindFileKey
	}
	key, err := s.getKey(account, kind)
	if errors.Is(err, errNoKey) {
		key, err = s.newKey(account, kind)
	}
	if err != nil {
		return err
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	header := append([]byte(magic), kind)
	sealed, err := seal(key, plain, aad(header, account))
	if err != nil {
		return err
	}
	if err := writeAtomic(s.statePath(account), append(header, sealed...)); err != nil {
		return fmt.Errorf("%s: %w: %v", s.statePath(account), ErrUnavailable, err)
	}
	s.remember(account, st)
	// A writer killed mid-write leaves its temp file; a minute is far
	// longer than any write.
	atomicfile.CleanTemps(s.statePath(account), time.Minute)
	return nil
}

// Delete forgets account: its state file and its key. Missing pieces are not
// an error.
func (s *Store) Delete(account string) error {
	var errs []error
	usesKeyring := s.Kind == KindKeyring
	if data, err := readBounded(s.statePath(account), maxState); err == nil && len(data) > len(magic) {
		usesKeyring = data[len(magic)] == kindKeyByte
	}
	if err := os.Remove(s.statePath(account)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	atomicfile.CleanTemps(s.statePath(account), 0)
	if err := os.Remove(s.keyPath(account)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	s.Forget(account)
	if usesKeyring {
		if err := s.deleteKeyringKey(account); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Quarantine moves an unreadable state file aside (never deletes it) and
// returns the new name, so a fresh login does not destroy evidence.
func (s *Store) Quarantine(account string) (string, error) {
	from := s.statePath(account)
	to := fmt.Sprintf("%s.unreadable-%s", from, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(from, to); err != nil {
		return "", err
	}
	return to, nil
}

var errNoKey = errors.New("no key")

func (s *Store) keyWhere(account string, kind byte) string {
	if kind == kindFileKey {
		return s.keyPath(account)
	}
	return "keyring item " + keyringService + "/" + account
}

// ResetKey moves an unreadable key aside (key file) or removes it (keyring
// item), so that the next Save creates a fresh one. Login uses it once the
// person has signed in again; the state sealed with the old key was already
// unreadable.
func (s *Store) ResetKey(account string) error {
	s.Forget(account)
	if s.Kind == KindFile {
		err := os.Rename(s.keyPath(account), s.keyPath(account)+".unreadable-"+time.Now().UTC().Format("20060102T150405Z"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return s.deleteKeyringKey(account)
}

func (s *Store) getKey(account string, kind byte) ([]byte, error) {
	if key := s.kept(account, kind); key != nil {
		return key, nil
	}
	key, err := s.readKey(account, kind)
	if err == nil {
		s.keep(account, kind, key)
	}
	return key, err
}

func (s *Store) readKey(account string, kind byte) ([]byte, error) {
	switch kind {
	case kindFileKey:
		data, err := readBounded(s.keyPath(account), 1024)
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNoKey
		}
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%s: %w: not a 32-byte base64 key (%v)", s.keyPath(account), ErrCorrupt, err)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", s.keyPath(account), ErrUnavailable, err)
		}
		return decodeKey(strings.TrimSpace(string(data)), s.keyPath(account))
	case kindKeyByte:
		return s.keyringKey(account)
	}
	return nil, fmt.Errorf("%s: %w: unknown key kind %q", s.statePath(account), ErrCorrupt, kind)
}

func (s *Store) newKey(account string, kind byte) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if kind == kindFileKey {
		if err := writeAtomic(s.keyPath(account), []byte(encodeKey(key)+"\n")); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", s.keyPath(account), ErrUnavailable, err)
		}
	} else if err := s.setKeyringKey(account, key); err != nil {
		return nil, err
	}
	s.keep(account, kind, key)
	return key, nil
}

func aad(header []byte, account string) []byte {
	return append(append([]byte{}, header...), account...)
}

func seal(key, plain, ad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, ad), nil
}

func open(key, sealed, ad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], ad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// jsonProblem says what is wrong with a decrypted state without quoting
// it: encoding/json's and time's messages quote values, and the values
// are tokens.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not to JSON (at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("its %s is a JSON %s", te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("to a JSON %s, not an object", te.Value)
	}
	return "one of its values has the wrong form"
}

// errTooLarge: a file we wrote is never this large, so it is not ours or
// not intact (corrupt, not a store that is unavailable).
var errTooLarge = errors.New("larger than")

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w %d bytes", errTooLarge, limit)
	}
	return data, nil
}

// writeAtomic writes a 0600 file atomically.
func writeAtomic(path string, data []byte) error { return atomicfile.WriteFile(path, data, 0o600) }

// Check reports whether the store can hold a key for account now: for the
// keyring, that the keyring answers (a missing item is fine). Login calls it
// before asking a person to sign in, so a locked keyring fails early.
func (s *Store) Check(account string) error {
	if s.Kind != KindKeyring {
		return nil
	}
	_, err := s.keyringKey(account)
	if errors.Is(err, errNoKey) || errors.Is(err, ErrCorrupt) {
		return nil
	}
	return err
}
