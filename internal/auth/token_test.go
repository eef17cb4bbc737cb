package auth

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	tests := []struct {
		name   string
		gen    func() string
		shape  *regexp.Regexp
		random int // bytes of entropy the body must decode to, 0 to skip
	}{
		{"access", NewAccessToken, regexp.MustCompile(`^axo_[A-Za-z0-9_-]{43}$`), 32},
		{"refresh", NewRefreshToken, regexp.MustCompile(`^axr_[A-Za-z0-9_-]{43}$`), 32},
		{"device", NewDeviceID, regexp.MustCompile(`^[A-Z]{10}$`), 0},
		{"registration", NewRegistrationToken, regexp.MustCompile(`^[A-Za-z0-9]{16}$`), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(map[string]bool)
			for range 1000 {
				s := tc.gen()
				if !tc.shape.MatchString(s) {
					t.Fatalf("%q does not match %v", s, tc.shape)
				}
				if tc.random > 0 {
					b, err := base64.RawURLEncoding.DecodeString(s[4:])
					if err != nil || len(b) != tc.random {
						t.Fatalf("%q body decodes to %d bytes, %v", s, len(b), err)
					}
				}
				if seen[s] {
					t.Fatalf("duplicate %q", s)
				}
				seen[s] = true
			}
		})
	}
}

func TestHashToken(t *testing.T) {
	tests := []struct{ in, want string }{
		// FIPS 180-2 SHA-256 test vectors.
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tc := range tests {
		if got := HashToken(tc.in); got != tc.want {
			t.Errorf("HashToken(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
	tok := NewAccessToken()
	if HashToken(tok) != HashToken(tok) {
		t.Error("HashToken is not deterministic")
	}
	if HashToken(tok) == HashToken(NewAccessToken()) {
		t.Error("different tokens hash equal")
	}
}

func TestRandomString(t *testing.T) {
	alnumRE := regexp.MustCompile(`^[A-Za-z0-9]*$`)
	for _, n := range []int{-5, 0, 1, 7, 64, 1000} {
		s := RandomString(n)
		want := max(n, 0)
		if len(s) != want || !alnumRE.MatchString(s) {
			t.Errorf("RandomString(%d) = %q (len %d)", n, s, len(s))
		}
	}
}

// TestRandomFromCoversAlphabet is a coarse check of uniformity: with 62,000
// draws every symbol is expected ~1000 times, so a symbol that is missing
// or wildly over- or under-represented means a broken mapping, not bad luck
// (the bounds are > 10 standard deviations out).
func TestRandomFromCoversAlphabet(t *testing.T) {
	counts := make(map[rune]int)
	for _, r := range RandomString(62000) {
		counts[r]++
	}
	for _, r := range alnum {
		if c := counts[r]; c < 650 || c > 1350 {
			t.Errorf("symbol %q drawn %d times; want about 1000", r, c)
		}
	}
	up := randomFrom(upper, 26000)
	for _, r := range upper {
		if c := strings.Count(up, string(r)); c < 650 || c > 1350 {
			t.Errorf("uppercase %q drawn %d times; want about 1000", r, c)
		}
	}
}

func TestEqualConstantTime(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"", "a", false},
		{"ABC", "abc", false},
	}
	for _, tc := range tests {
		if got := EqualConstantTime(tc.a, tc.b); got != tc.want {
			t.Errorf("EqualConstantTime(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
