package flows

import (
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// Access-token lifetimes for an expires_in that is missing or implausible.
const (
	// DefaultLifetime is assumed when the identity provider gives none
	// (RFC 6749 makes expires_in optional) or gives 0, which x/oauth2
	// cannot tell from none. Shorter than any real provider's (Microsoft:
	// 60-90 minutes, at least 10 when configured; Google: 60), so the
	// token is not used past its end, and long enough that callers are
	// not each sent to the identity provider.
	DefaultLifetime = 10 * time.Minute
	// MaxLifetime caps a longer one: no provider issues access tokens for
	// more than a day (Microsoft's longest configurable lifetime), and a
	// token cached for years would outlive its revocation.
	MaxLifetime = 24 * time.Hour
)

// Lifetime returns when tok is to be taken as expired, judged at now,
// and a note for --verbose when that is not what the identity provider
// said. A token it says has already expired (expires_in negative) is
// still handed to the caller that asked (the mail server is the judge of
// a token; refusing it would fail every call the same way), but its
// expiry is now: it is never handed out from the cache.
func Lifetime(tok *oauth2.Token, now time.Time) (time.Time, string) {
	switch life := tok.Expiry.Sub(now); {
	case tok.Expiry.IsZero():
		return now.Add(DefaultLifetime), fmt.Sprintf("the identity provider gave no lifetime (expires_in); assuming %s", DefaultLifetime)
	case life <= 0:
		return now, "the identity provider says the access token has already expired (expires_in not positive); using it once, not caching it"
	case life > MaxLifetime:
		return now.Add(MaxLifetime), fmt.Sprintf("the identity provider gave a lifetime of %d hours; capping it at %d", int64(life.Hours()), int64(MaxLifetime.Hours()))
	}
	return tok.Expiry, ""
}
