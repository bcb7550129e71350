package gpg

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestTrustRefusesExpiredKeyByTime: the expired key is refused because of
// the time, not because of something else about it: with the keystore's
// clock inside the key's lifetime, the same key is trusted and stored;
// after its expiry it is refused and nothing is stored.
func TestTrustRefusesExpiredKeyByTime(t *testing.T) {
	exp := expiredKey.get(t)
	created := exportSecret(t, exp).PrimaryKey.CreationTime
	for _, c := range []struct {
		at time.Duration
		ok bool
	}{{12 * time.Hour, true}, {72 * time.Hour, false}} {
		ks := newTestKeystore(t)
		ks.now = func() time.Time { return created.Add(c.at) }
		k, err := ks.Trust(context.Background(), imageName, false, exp.pub)
		_, serr := os.Stat(ks.LocalDir)
		stored := serr == nil
		if c.ok {
			if err != nil || k == nil || k.Fingerprint != exp.fpr || !stored {
				t.Errorf("%s after creation (inside its lifetime): Trust = %v, %v (stored %v); want the key trusted", c.at, k, err, stored)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s after creation (expired a day after creation): key trusted", c.at)
		}
		if stored || !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s after creation: refused Trust stored %s (%v)", c.at, ks.LocalDir, serr)
		}
	}
}
