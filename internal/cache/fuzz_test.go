package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// fuzzStore is a file store holding account "work": a state file that
// opens with its key file beside it, as `oauth2mail login` leaves them.
type fuzzStore struct {
	*Store
	key   []byte
	valid []byte // the state file as Save wrote it
}

func newFuzzStore(f *testing.F) *fuzzStore {
	s := New(filepath.Join(f.TempDir(), "state"), KindFile)
	s.keyring = &memKeyring{items: map[string]string{}}
	if err := s.Save("work", sample); err != nil {
		f.Fatal(err)
	}
	key, err := s.readKey("work", kindFileKey)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(s.statePath("work"))
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzStore{Store: s, key: key, valid: valid}
}

// load writes data as the account's state file and loads it twice: with a
// store as a command opens it, and with one that remembers the key, as
// the agent's does. Neither may change anything in the directory.
func (fs *fuzzStore) load(t *testing.T, data []byte) (*State, error) {
	t.Helper()
	overwrite(t, fs.statePath("work"), data)
	before := snapshot(t, fs.Dir)
	fresh := &Store{Dir: fs.Dir, Kind: KindFile, keyring: fs.keyring}
	st, err := fresh.Load("work")
	// keys without states: a remembered state would hide the new bytes
	// (an in-place write in the same clock tick keeps size and mtime).
	agent := &Store{Dir: fs.Dir, Kind: KindFile, keyring: fs.keyring, keys: map[string][]byte{string(kindFileKey) + "work": fs.key}}
	st2, err2 := agent.Load("work")
	if (err == nil) != (err2 == nil) || err == nil && st.String() != st2.String() {
		t.Fatalf("a fresh store: %v, %v; one that kept the key: %v, %v", st, err, st2, err2)
	}
	if after := snapshot(t, fs.Dir); after != before {
		t.Fatalf("Load changed the state directory:\nbefore %s\nafter  %s", before, after)
	}
	return st, err
}

// overwrite writes data over the file at path in place. os.WriteFile
// truncates first, and ext4 then flushes the file to disk on close (its
// auto_da_alloc): 20 times slower, and a fuzzer writes a million times.
func overwrite(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every entry of dir: name, mode, size, modification
// time and inode. Load never writes, so any change shows; contents are not
// read, which would halve the executions per second.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %d %s %v\n", n, fi.Mode(), fi.Size(), fi.ModTime(), inode(fi))
	}
	return b.String()
}

func checkCorrupt(t *testing.T, err error, path string) {
	t.Helper()
	msg := err.Error()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %q is not ErrCorrupt", msg)
	}
	if !strings.HasPrefix(msg, path+": ") || !config.PlainText(msg) || len(msg) > len(path)+200 {
		t.Fatalf("error is not one short line naming the file: %q", msg)
	}
}

// FuzzLoad reads a state file of arbitrary bytes (a valid key file beside
// it): Load refuses it as corrupt state with one short line, and leaves
// every file as it was. Only the bytes Save wrote load.
func FuzzLoad(f *testing.F) {
	fs := newFuzzStore(f)
	hdr := len(magic) + 1
	flip := bytes.Clone(fs.valid)
	flip[len(flip)-1] ^= 1
	otherKind := bytes.Clone(fs.valid)
	otherKind[len(magic)] = kindKeyByte
	for _, seed := range [][]byte{
		fs.valid, flip, otherKind,
		fs.valid[:hdr], fs.valid[:hdr+12+16], fs.valid[:len(fs.valid)-1],
		append([]byte(magic), 'x'), []byte("oauth2mail-state-2\nf"), []byte(magic[:len(magic)-1]),
		[]byte("garbage"), []byte(`{"access_token":"EwB"}`), nil,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := fs.load(t, data)
		if err == nil {
			if !bytes.Equal(data, fs.valid) {
				t.Fatalf("bytes Save did not write loaded as %v", st)
			}
			return
		}
		checkCorrupt(t, err, fs.statePath("work"))
	})
}

// FuzzLoadJSON seals arbitrary bytes with the account's real key, so the
// fuzzer reaches the JSON decoding past the AEAD: what encoding/json takes
// as a State loads, anything else is corrupt state in one short line that
// quotes none of it.
func FuzzLoadJSON(f *testing.F) {
	fs := newFuzzStore(f)
	full, _ := json.Marshal(&State{
		AccessToken: "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA", TokenType: "Bearer", Expiry: time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC),
		RefreshToken: "M.C5-refresh", Scope: "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
		TokenURL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token", ClientID: "c", ClientSecret: "app-secret",
		LoginAt: time.Date(2026, 11, 23, 14, 0, 0, 0, time.FixedZone("", 3600)), LastRefresh: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC),
		RefreshTokenFrom: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC), LoginNeeded: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC),
		LoginNeededReason: "AADSTS70008: the refresh token has expired", Notified: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC),
	})
	for _, seed := range []string{
		string(full), "{}", "null", "[]", `""`, "", "{", `{"access_token":1}`, `{"expiry":"tomorrow"}`,
		`{"expiry":"2026-11-23T15:00:00+01:00","access_token":"x","access_token":"y"}`, `{"refresh_token":"\ud800"}`,
		`{"login_at":"0000-01-01T00:00:00Z","notified":"9999-12-31T23:59:59.999999999Z"}`, `{"unknown":{"a":[1,2,{}]}}`,
	} {
		f.Add([]byte(seed))
	}
	header := append([]byte(magic), kindFileKey)
	f.Fuzz(func(t *testing.T, plain []byte) {
		sealed, err := seal(fs.key, plain, aad(header, "work"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := fs.load(t, append(bytes.Clone(header), sealed...))
		var want State
		if jerr := json.Unmarshal(plain, &want); jerr != nil {
			if err == nil {
				t.Fatalf("loaded %v from what encoding/json refuses (%v)", st, jerr)
			}
			checkCorrupt(t, err, fs.statePath("work"))
			for _, v := range quotedIn(plain) {
				if len(v) >= 8 && strings.Contains(err.Error(), v) {
					t.Fatalf("the error quotes the state's content %q: %s", v, err)
				}
			}
			return
		}
		if err != nil {
			t.Fatalf("Load: %v; encoding/json takes it", err)
		}
		if st.String() != want.String() || st.AccessToken != want.AccessToken || st.RefreshToken != want.RefreshToken || st.ClientSecret != want.ClientSecret {
			t.Fatalf("loaded %v, want %v", st, &want)
		}
		// String shows no secret: it is the same for other secrets of
		// the same lengths.
		other := *st
		for _, p := range []*string{&other.AccessToken, &other.RefreshToken, &other.ClientSecret} {
			*p = unlike(*p)
		}
		if other.String() != st.String() {
			t.Fatalf("String() shows a secret: %s", st)
		}
	})
}

// unlike returns a string as long as s that differs from it in every byte.
func unlike(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] ^= 1
	}
	return string(b)
}

// quotedIn returns the JSON string values in data, roughly: the runs
// between double quotes that are not followed by a colon (keys).
func quotedIn(data []byte) []string {
	parts := strings.Split(string(data), `"`)
	var out []string
	for i := 1; i < len(parts); i += 2 {
		if i+1 < len(parts) && strings.HasPrefix(strings.TrimSpace(parts[i+1]), ":") {
			continue
		}
		out = append(out, parts[i])
	}
	return out
}

// Found by FuzzLoadJSON: encoding/json's and time's errors quote the
// value they stopped at, so a state that decrypted but did not decode put
// its content, tokens included, into the error line.
func TestCorruptJSONQuotesNothing(t *testing.T) {
	s, _ := testStore(t, KindFile)
	if err := s.Save("work", sample); err != nil {
		t.Fatal(err)
	}
	key, err := s.readKey("work", kindFileKey)
	if err != nil {
		t.Fatal(err)
	}
	header := append([]byte(magic), kindFileKey)
	for plain, want := range map[string]string{
		`{"expiry":"EwB-secret-token-value"}`:     "it decrypts, but one of its values has the wrong form",
		`{"access_token":["EwB-secret-token"]}`:   "it decrypts, but its access_token is a JSON array",
		`"EwB-secret-token-value"`:                "it decrypts, but to a JSON string, not an object",
		`{"refresh_token":"EwB-secret-token" x}`:  "it decrypts, but not to JSON (at byte 37)",
		`{"client_secret":"EwB-secret-token-val`:  "it decrypts, but not to JSON (at byte 38)",
		`{"expiry":"2026-11-23T15:00:00Z","x":1}`: "",
	} {
		sealed, err := seal(key, []byte(plain), aad(header, "work"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(s.statePath("work"), append(bytes.Clone(header), sealed...), 0o600)
		_, err = s.Load("work")
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", plain, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrCorrupt) || !strings.HasSuffix(err.Error(), want) || strings.Contains(err.Error(), "EwB") {
			t.Errorf("%s: err = %v, want ErrCorrupt ending %q", plain, err, want)
		}
	}
}

// A state or key file too large to be ours is corrupt (login moves it
// aside), not a store that is unavailable (login failed until the file
// was removed by hand).
func TestOversizeIsCorrupt(t *testing.T) {
	s, _ := testStore(t, KindFile)
	if err := s.Save("work", sample); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, maxState+1)
	copy(big, magic+"f")
	os.WriteFile(s.statePath("work"), big, 0o600)
	if _, err := s.Load("work"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("a state file of %d bytes: %v, want ErrCorrupt", len(big), err)
	}
	os.WriteFile(s.keyPath("work"), bytes.Repeat([]byte("A"), 1025), 0o600)
	if err := s.Save("work", sample); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "work.key") {
		t.Errorf("a key file of 1025 bytes: Save = %v, want ErrCorrupt", err)
	}
	if err := s.ResetKey("work"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("work", sample); err != nil {
		t.Errorf("Save after ResetKey: %v", err)
	}
}
