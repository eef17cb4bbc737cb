package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cheap keeps unit tests fast; its parameters are deliberately insecure.
var cheap = Hasher{Memory: 64, Time: 1, Threads: 1}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashCheckRoundTrip(t *testing.T) {
	for _, pw := range []string{"", "hunter2", "pässwörd with spaces", strings.Repeat("x", 1000), "nul\x00inside"} {
		enc, err := cheap.Hash(pw)
		if err != nil {
			t.Fatalf("Hash(%q): %v", pw, err)
		}
		if !phcRE.MatchString(enc) {
			t.Fatalf("Hash(%q) = %q, not canonical PHC argon2id", pw, enc)
		}
		if !strings.Contains(enc, "$m=64,t=1,p=1$") {
			t.Errorf("parameters not recorded: %q", enc)
		}
		ok, err := cheap.Check(enc, pw)
		if !ok || err != nil {
			t.Errorf("Check(correct %q) = %v, %v; want true, nil", pw, ok, err)
		}
		ok, err = cheap.Check(enc, pw+"!")
		if ok || err != nil {
			t.Errorf("Check(wrong for %q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestHashUsesFreshSalt(t *testing.T) {
	a, _ := cheap.Hash("same")
	b, _ := cheap.Hash("same")
	if a == b {
		t.Fatal("two hashes of the same password are identical: salt is not random")
	}
}

// Check must use the parameters in the string, not the receiver's, so that
// changing DefaultHasher does not lock out existing users.
func TestCheckUsesEncodedParams(t *testing.T) {
	old := Hasher{Memory: 128, Time: 3, Threads: 2}
	enc, err := old.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []Hasher{cheap, DefaultHasher, {}} {
		if ok, err := h.Check(enc, "pw"); !ok || err != nil {
			t.Errorf("%+v.Check = %v, %v; want true, nil", h, ok, err)
		}
	}
}

// Vectors produced by the argon2 reference C implementation (libargon2, via
// argon2id_hash_encoded), so these check our parsing and hashing against an
// independent implementation rather than against ourselves.
func TestCheckReferenceVectors(t *testing.T) {
	tests := []struct{ enc, pw string }{
		{"$argon2id$v=19$m=64,t=2,p=1$YXhvbi10ZXN0LXNhbHQxNg$RaWASL/glLEBsZ3ZE2I2WML02Kiv9j4X2Ps4LXpns7w", "correct horse battery staple"},
		{"$argon2id$v=19$m=256,t=3,p=4$YXhvbi10ZXN0LXNhbHQxNg$ieA2Ob24J+jRsUOYuBCqiA", ""},
		{"$argon2id$v=19$m=8,t=1,p=1$YXhvbi10ZXN0LXNhbHQxNg$bEkti0L1NiDhROxSW4hoWuAn9nndE7pYZ9r/vQGqQD4", "pässwörd"},
	}
	for _, tc := range tests {
		if ok, err := CheckPassword(tc.enc, tc.pw); !ok || err != nil {
			t.Errorf("CheckPassword(%q, %q) = %v, %v; want true, nil", tc.enc, tc.pw, ok, err)
		}
		if ok, err := CheckPassword(tc.enc, tc.pw+"x"); ok || err != nil {
			t.Errorf("CheckPassword(%q, wrong) = %v, %v; want false, nil", tc.enc, ok, err)
		}
	}
}

func TestCheckRejectsGarbage(t *testing.T) {
	const salt = "YXhvbi10ZXN0LXNhbHQxNg"
	const key = "RaWASL/glLEBsZ3ZE2I2WML02Kiv9j4X2Ps4LXpns7w"
	tests := []struct{ name, enc string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"argon2i", "$argon2i$v=19$m=64,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=64,t=2,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=2,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=64,t=2,p=1$" + salt + "$" + key},
		{"no leading dollar", "argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key},
		{"extra field", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key + "$x"},
		{"params reordered", "$argon2id$v=19$t=2,m=64,p=1$" + salt + "$" + key},
		{"params missing", "$argon2id$v=19$m=64,t=2$" + salt + "$" + key},
		{"param not a number", "$argon2id$v=19$m=lots,t=2,p=1$" + salt + "$" + key},
		{"negative param", "$argon2id$v=19$m=-64,t=2,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=64,t=2,p=0$" + salt + "$" + key},
		{"threads overflow uint8", "$argon2id$v=19$m=4096,t=2,p=256$" + salt + "$" + key},
		{"memory below 8 KiB per lane", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key},
		{"memory absurd", "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"time absurd", "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key},
		{"salt not base64", "$argon2id$v=19$m=64,t=2,p=1$!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "==$" + key},
		{"salt too short", "$argon2id$v=19$m=64,t=2,p=1$YWJj$" + key},
		{"salt empty", "$argon2id$v=19$m=64,t=2,p=1$$" + key},
		{"hash empty", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$"},
		{"hash too short", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$YWJjZA"},
		{"hash not base64", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + strings.Repeat("*", 43)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ok, err := CheckPassword(tc.enc, "correct horse battery staple")
			if ok {
				t.Fatal("garbage encoding accepted")
			}
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("err = %v; want ErrInvalidHash", err)
			}
			// Rejection must happen before any expensive hashing.
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("rejecting took %v", d)
			}
		})
	}
}

func TestHashRejectsInvalidHasher(t *testing.T) {
	for _, h := range []Hasher{
		{},
		{Memory: 64, Time: 0, Threads: 1},
		{Memory: 64, Time: 1, Threads: 0},
		{Memory: 15, Time: 1, Threads: 2},
	} {
		if enc, err := h.Hash("pw"); err == nil {
			t.Errorf("%+v.Hash = %q, nil; want error", h, enc)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	enc, _ := cheap.Hash("pw")
	if cheap.NeedsRehash(enc) {
		t.Error("hash made by cheap needs rehash under cheap")
	}
	if !DefaultHasher.NeedsRehash(enc) {
		t.Error("cheap hash does not need rehash under DefaultHasher")
	}
	if !cheap.NeedsRehash("garbage") {
		t.Error("garbage does not need rehash")
	}
	// Right parameters but a shorter tag than we produce today.
	if !(Hasher{Memory: 256, Time: 3, Threads: 4}).NeedsRehash("$argon2id$v=19$m=256,t=3,p=4$YXhvbi10ZXN0LXNhbHQxNg$ieA2Ob24J+jRsUOYuBCqiA") {
		t.Error("16-byte tag does not need rehash")
	}
}

// TestDefaultHasher runs the production parameters once, both to prove they
// work and to log their cost on the machine running the tests.
func TestDefaultHasher(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: real argon2id parameters")
	}
	start := time.Now()
	enc, err := HashPassword("hunter2")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DefaultHasher.Hash took %v", time.Since(start))
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("unexpected encoding %q", enc)
	}
	if ok, err := CheckPassword(enc, "hunter2"); !ok || err != nil {
		t.Errorf("CheckPassword(correct) = %v, %v", ok, err)
	}
	if ok, err := CheckPassword(enc, "hunter3"); ok || err != nil {
		t.Errorf("CheckPassword(wrong) = %v, %v", ok, err)
	}
}
