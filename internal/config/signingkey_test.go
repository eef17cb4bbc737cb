package config

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSigningKeyCreatedOnceAndReread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "signing.key")
	k1, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ed25519:a_[A-Za-z0-9]{4}$`).MatchString(k1.KeyID) {
		t.Errorf("KeyID = %q", k1.KeyID)
	}
	if k1.Version() != strings.TrimPrefix(k1.KeyID, "ed25519:") {
		t.Errorf("Version() = %q for %q", k1.Version(), k1.KeyID)
	}
	checkMode(t, path, 0o600)
	checkMode(t, filepath.Dir(path), 0o700)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n$`).Match(data) {
		t.Errorf("file content %q is not one Synapse-style line", data)
	}

	k2, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k2.KeyID != k1.KeyID || !k2.Private.Equal(k1.Private) {
		t.Errorf("re-read key differs: %s vs %s", k2.KeyID, k1.KeyID)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Error("file changed on second load")
	}

	msg := []byte("hello")
	if !ed25519.Verify(k2.Public(), msg, ed25519.Sign(k1.Private, msg)) {
		t.Error("signature by the created key does not verify with the re-read public key")
	}
}

func TestSigningKeyIDsDiffer(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for i := range 20 {
		k, err := LoadOrCreateSigningKey(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		seen[k.KeyID] = true
	}
	// 62^4 possible IDs: 20 draws colliding down to a handful means no randomness.
	if len(seen) < 15 {
		t.Errorf("only %d distinct key IDs in 20 keys", len(seen))
	}
}

func TestSigningKeyReadsSynapseFile(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	enc := base64.RawStdEncoding.EncodeToString(seed)
	for _, content := range []string{
		"ed25519 a_XyZ9 " + enc + "\n",
		"ed25519 a_XyZ9 " + enc, // no trailing newline
		"\n  ed25519 a_XyZ9 " + enc + "  \n",
		"ed25519 a_XyZ9 " + base64.StdEncoding.EncodeToString(seed) + "\n", // padded
		"ed25519 a_XyZ9 " + enc + "\ned25519 a_old " + enc + "\n",          // first key wins
	} {
		path := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := LoadOrCreateSigningKey(path)
		if err != nil {
			t.Errorf("%q: %v", content, err)
			continue
		}
		if k.KeyID != "ed25519:a_XyZ9" || !k.Private.Equal(ed25519.NewKeyFromSeed(seed)) {
			t.Errorf("%q: got %s", content, k.KeyID)
		}
	}
}

func TestSigningKeyRejectsMalformed(t *testing.T) {
	secret := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	tests := []struct{ content, want string }{
		{"", "holds no key"},
		{"\n\n", "holds no key"},
		{"ed25519 a_x", "expected one line"},
		{"rsa a_x " + secret, `unsupported algorithm "rsa"`},
		{"ed25519 a-x " + secret, "key version"},
		{"ed25519 a_x " + secret[:20], "seed must be 32 bytes"},
		{"ed25519 a_x !!!" + secret, "seed must be 32 bytes"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateSigningKey(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error = %v, want %q", tt.content, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("%q: error leaks the seed: %v", tt.content, err)
		}
		// A broken key must not be silently replaced: servers may have cached it.
		if data, _ := os.ReadFile(path); string(data) != tt.content {
			t.Errorf("%q: file was rewritten", tt.content)
		}
	}
}

func TestSigningKeyUnreadable(t *testing.T) {
	// A directory where the file should be: not "missing", so no new key.
	path := t.TempDir()
	if _, err := LoadOrCreateSigningKey(path); err == nil {
		t.Error("want an error when the key path is a directory")
	}
}
