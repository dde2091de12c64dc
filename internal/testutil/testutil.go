// Package testutil holds small helpers shared by tests of several packages.
package testutil

import (
	"bytes"
	"net/http"
	"sync"
)

// SyncBuffer is a buffer several goroutines may write to and read from: a
// log, or a person's terminal that the code under test writes while the
// test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Answer is an HTTP handler that always answers status with this
// Content-Type and body: an identity provider's answer, hostile or not.
func Answer(status int, ctype, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}
