package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// memKeyring is an in-memory keyring; err, when set, is returned by every call.
type memKeyring struct {
	mu    sync.Mutex
	items map[string]string
	err   error
	gets  int
}

func (m *memKeyring) Get(s, u string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.err != nil {
		return "", m.err
	}
	v, ok := m.items[s+"/"+u]
	if !ok {
		return "", gokeyring.ErrNotFound
	}
	return v, nil
}

func (m *memKeyring) Set(s, u, p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.items[s+"/"+u] = p
	return nil
}

func (m *memKeyring) Delete(s, u string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, ok := m.items[s+"/"+u]; !ok {
		return gokeyring.ErrNotFound
	}
	delete(m.items, s+"/"+u)
	return nil
}

func testStore(t *testing.T, kind string) (*Store, *memKeyring) {
	t.Helper()
	kr := &memKeyring{items: map[string]string{}}
	s := New(filepath.Join(t.TempDir(), "state"), kind)
	s.keyring = kr
	return s, kr
}

var sample = &State{
	AccessToken:  "EwB-access-token-value",
	RefreshToken: "M.C5-refresh-token-value",
	Expiry:       time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC),
	Scope:        "https://outlook.office.com/IMAP.AccessAsUser.All",
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, kind := range []string{KindKeyring, KindFile} {
		t.Run(kind, func(t *testing.T) {
			s, kr := testStore(t, kind)
			if _, err := s.Load("work"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load before Save: err = %v, want ErrNotFound", err)
			}
			if err := s.Save("work", sample); err != nil {
				t.Fatal(err)
			}
			got, err := s.Load("work")
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessToken != sample.AccessToken || got.RefreshToken != sample.RefreshToken || !got.Expiry.Equal(sample.Expiry) {
				t.Errorf("Load = %v, want %v", got, sample)
			}
			// No token in plaintext anywhere under the state dir, and every file 0600.
			filepath.Walk(s.Dir, func(p string, fi os.FileInfo, err error) error {
				if fi.IsDir() {
					if fi.Mode().Perm() != 0o700 {
						t.Errorf("%s: mode %v, want 0700", p, fi.Mode().Perm())
					}
					return nil
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
				}
				data, _ := os.ReadFile(p)
				if bytes.Contains(data, []byte("token-value")) {
					t.Errorf("%s holds a token in plaintext", p)
				}
				return nil
			})
			_, keyFile := os.Stat(s.keyPath("work"))
			if (kind == KindFile) != (keyFile == nil) {
				t.Errorf("key file present = %v for kind %s", keyFile == nil, kind)
			}
			if (kind == KindKeyring) != (len(kr.items) == 1) {
				t.Errorf("keyring items = %d for kind %s", len(kr.items), kind)
			}
			if err := s.Delete("work"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load("work"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Load after Delete: err = %v", err)
			}
			if len(kr.items) != 0 {
				t.Error("Delete left the keyring item")
			}
		})
	}
}

func TestStateStringRedacts(t *testing.T) {
	for _, s := range []string{sample.String(), sample.GoString()} {
		if strings.Contains(s, "token-value") {
			t.Errorf("state formatting leaks a token: %s", s)
		}
	}
}

func TestCorruptStateLeftUntouched(t *testing.T) {
	s, _ := testStore(t, KindKeyring)
	if err := s.Save("work", sample); err != nil {
		t.Fatal(err)
	}
	path := s.statePath("work")
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0xff
	os.WriteFile(path, data, 0o600)
	if _, err := s.Load("work"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Error("Load changed a corrupt file")
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := s.Load("work"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage: err = %v, want ErrCorrupt", err)
	}
	q, err := s.Quarantine("work")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(q); string(got) != "garbage" {
		t.Error("quarantined file lost its content")
	}
}

func TestStateBoundToAccount(t *testing.T) {
	s, kr := testStore(t, KindFile)
	_ = kr
	s.Save("a", sample)
	s.Save("b", &State{AccessToken: "other"})
	// Copy a's file and key over b's: AAD binds the file to its account name.
	data, _ := os.ReadFile(s.statePath("a"))
	key, _ := os.ReadFile(s.keyPath("a"))
	os.WriteFile(s.statePath("b"), data, 0o600)
	os.WriteFile(s.keyPath("b"), key, 0o600)
	if _, err := s.Load("b"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("swapped file: err = %v, want ErrCorrupt", err)
	}
}

func TestKeyringUnavailable(t *testing.T) {
	s, kr := testStore(t, KindKeyring)
	s.Save("work", sample)
	kr.err = errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'")
	if _, err := s.Load("work"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unlock") {
		t.Errorf("locked keyring: err = %v", err)
	}
	if err := s.Save("work", sample); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Save with locked keyring: err = %v", err)
	}
	kr.err = nil
	if got, err := s.Load("work"); err != nil || got.AccessToken != sample.AccessToken {
		t.Errorf("state lost after a failed save: %v, %v", got, err)
	}
}

func TestKeyringTimeout(t *testing.T) {
	s, _ := testStore(t, KindKeyring)
	block := make(chan struct{})
	defer close(block)
	s.keyring = hangingKeyring{block}
	old := keyringTimeout
	keyringTimeout = 50 * time.Millisecond
	defer func() { keyringTimeout = old }()
	if _, err := s.keyringKey("work"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

type hangingKeyring struct{ block chan struct{} }

func (h hangingKeyring) Get(string, string) (string, error) { <-h.block; return "", nil }
func (h hangingKeyring) Set(string, string, string) error   { <-h.block; return nil }
func (h hangingKeyring) Delete(string, string) error        { <-h.block; return nil }

func TestNoSessionBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	if _, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus"); err == nil {
		t.Skip("this machine has a user bus at /run/user/UID/bus")
	}
	s := New(t.TempDir(), KindKeyring)
	start := time.Now()
	err := s.Save("work", sample)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "D-Bus") {
		t.Errorf("err = %v, want ErrUnavailable naming D-Bus", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s, want fast failure", d)
	}
}

func TestLockSerialises(t *testing.T) {
	s, _ := testStore(t, KindFile)
	ctx := context.Background()
	unlock, err := s.Lock(ctx, "work")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, "work"); err == nil {
		t.Fatal("second Lock succeeded while the first was held")
	}
	unlock()
	unlock2, err := s.Lock(ctx, "work")
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
