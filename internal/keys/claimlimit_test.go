package keys_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestClaimLimitPerClaimer: a stranger claiming a device's one-time keys
// over and over gets rate_limit.key_claim's burst of them and then the
// fallback key, so the device keeps its one-time keys for everyone else;
// a device without a fallback key is left out of the answer while the
// other devices of the same request are served.
func TestClaimLimitPerClaimer(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) {
		c.RateLimits = true
		c.RateLimit.Default = config.RateLimit{PerSecond: 1000, Burst: 1000}
		c.RateLimit.KeyClaim = config.RateLimit{PerSecond: 0.1, Burst: 5}
	})
	alice, mallory, carol := r.CreateUser("alice"), r.CreateUser("mallory"), r.CreateUser("carol")
	upload := func(token, device string, n int, fallback bool) {
		t.Helper()
		s := newSigner(t, alice.UserID.String(), device)
		otks := map[string]any{}
		for i := range n {
			otks[fmt.Sprintf("signed_curve25519:%s%02d", device, i)] = s.otk(t, i, false)
		}
		body := map[string]any{"device_keys": s.deviceKeys(t), "one_time_keys": otks}
		if fallback {
			body["fallback_keys"] = map[string]any{"signed_curve25519:FB": s.otk(t, 99, true)}
		}
		if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", token, body); st != 200 {
			t.Fatalf("upload: %d %v", st, resp)
		}
	}
	upload(alice.AccessToken, alice.DeviceID.String(), 50, true)
	claim := func(token string, devices ...string) map[string]any {
		t.Helper()
		want := map[string]string{}
		for _, d := range devices {
			want[d] = "signed_curve25519"
		}
		st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/claim", token,
			map[string]any{"one_time_keys": map[string]any{alice.UserID.String(): want}})
		if st != 200 {
			t.Fatalf("claim: %d %v", st, resp)
		}
		got, _ := resp["one_time_keys"].(map[string]any)[alice.UserID.String()].(map[string]any)
		return got
	}
	keyOf := func(got map[string]any, device string) string {
		for k := range got[device].(map[string]any) {
			return k
		}
		return ""
	}
	otks, fallbacks := 0, 0
	for range 60 {
		got := claim(mallory.AccessToken, alice.DeviceID.String())
		switch k := keyOf(got, alice.DeviceID.String()); {
		case k == "signed_curve25519:FB":
			fallbacks++
		case strings.HasPrefix(k, "signed_curve25519:"):
			otks++
		default:
			t.Fatalf("claim answered %v", got)
		}
	}
	t.Logf("60 claims by one stranger: %d one-time keys, %d fallback", otks, fallbacks)
	if otks != 5 || fallbacks != 55 {
		t.Fatalf("60 claims gave %d one-time keys and %d fallback, want 5 and 55", otks, fallbacks)
	}
	st, counts := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{})
	if n := counts["one_time_key_counts"].(map[string]any)["signed_curve25519"]; st != 200 || n != float64(45) {
		t.Fatalf("alice's one-time keys after the claims: %d %v, want 45", st, counts)
	}
	// Someone else still starts a session with a one-time key.
	if k := keyOf(claim(carol.AccessToken, alice.DeviceID.String()), alice.DeviceID.String()); k == "signed_curve25519:FB" || k == "" {
		t.Fatalf("carol got %q, want a one-time key", k)
	}

	// A device without a fallback key: past the limit it is left out,
	// and the request's other devices are still served.
	bare := r.CreateUserDevice("alice", "BARE", false)
	upload(bare.AccessToken, "BARE", 10, false)
	fresh := r.CreateUserDevice("alice", "FRESH", false)
	upload(fresh.AccessToken, "FRESH", 10, false)
	for range 5 {
		if keyOf(claim(mallory.AccessToken, "BARE"), "BARE") == "" {
			t.Fatal("claim within the limit got no key")
		}
	}
	got := claim(mallory.AccessToken, "BARE", "FRESH")
	if _, ok := got["BARE"]; ok {
		t.Errorf("claim past the limit of a device without fallback key got %v", got["BARE"])
	}
	if keyOf(got, "FRESH") == "" {
		t.Errorf("the other device of the request got nothing: %v", got)
	}
}
