package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Lock takes the account's refresh lock, waiting until ctx is done. Only
// refreshers lock; readers of a fresh token never wait. The lock is an
// advisory file lock, so it is released by the kernel if the holder dies.
func (s *Store) Lock(ctx context.Context, account string) (unlock func(), err error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", s.Dir, ErrUnavailable, err)
	}
	fl := flock.New(filepath.Join(s.Dir, account+".lock"), flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, 10*time.Millisecond)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("lock file of %s: %w: %v", account, ErrUnavailable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("waiting for the lock of %s: %w", account, err)
	}
	if !ok {
		return nil, fmt.Errorf("waiting for the lock of %s: %w", account, ctx.Err())
	}
	return func() { fl.Unlock() }, nil
}
