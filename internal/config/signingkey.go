package config

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SigningKey is the server's federation signing key.
type SigningKey struct {
	KeyID   string // "ed25519:" + version, e.g. "ed25519:a_AbCd"
	Private ed25519.PrivateKey
}

// Version returns the key ID without its algorithm, e.g. "a_AbCd".
func (k *SigningKey) Version() string {
	_, v, _ := strings.Cut(k.KeyID, ":")
	return v
}

// Public returns the verify key published in /_matrix/key/v2/server.
func (k *SigningKey) Public() ed25519.PublicKey {
	return k.Private.Public().(ed25519.PublicKey)
}

// LoadOrCreateSigningKey reads the key at path, or creates one there (mode
// 0600, parent directories 0700) if the file does not exist.
//
// The file uses Synapse's format, one line "ed25519 <version> <seed>" with
// the 32-byte seed in unpadded standard base64, so keys can be moved between
// Axon and Synapse. Only the first key in the file is used.
func LoadOrCreateSigningKey(path string) (*SigningKey, error) {
	k, err := readSigningKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if k, err = newSigningKey(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	seed := base64.RawStdEncoding.EncodeToString(k.Private.Seed())
	line := "ed25519 " + k.Version() + " " + seed + "\n"
	if err := writeNewFile(path, []byte(line)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our read and write; its key
			// is the one that may already be in use, so take it.
			return readSigningKey(path)
		}
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return k, nil
}

func readSigningKey(path string) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, err := parseSigningKey(line)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("signing key %s: file holds no key", path)
}

// parseSigningKey never includes the line in its errors: it holds the secret.
func parseSigningKey(line string) (*SigningKey, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return nil, errors.New(`expected one line "ed25519 <version> <base64 seed>"`)
	}
	if f[0] != "ed25519" {
		return nil, fmt.Errorf("unsupported algorithm %q, only ed25519 is supported", f[0])
	}
	if !validKeyVersion(f[1]) {
		return nil, fmt.Errorf("key version %q must be made of letters, digits and _", f[1])
	}
	// Tolerate padding: some tools write it even though Synapse does not.
	seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[2], "="))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("seed must be %d bytes of base64", ed25519.SeedSize)
	}
	return &SigningKey{KeyID: "ed25519:" + f[1], Private: ed25519.NewKeyFromSeed(seed)}, nil
}

func validKeyVersion(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func newSigningKey() (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// Synapse names keys "a_" plus four random characters; the randomness
	// keeps a regenerated key from reusing an ID that other servers have
	// cached with the old public key.
	version := []byte("a_")
	var buf [1]byte
	for len(version) < 6 {
		if _, err := rand.Read(buf[:]); err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		// Reject bytes past the last multiple of 62 so every character is
		// equally likely.
		if int(buf[0]) < 256/len(alnum)*len(alnum) {
			version = append(version, alnum[int(buf[0])%len(alnum)])
		}
	}
	return &SigningKey{KeyID: "ed25519:" + string(version), Private: priv}, nil
}
