package sync

import "testing"

func TestTokenRoundTrip(t *testing.T) {
	for _, tok := range []Token{{}, {Pos: 5}, {Pos: 1, Typing: 2, ToDevice: 3}} {
		got, err := ParseToken(tok.String())
		if err != nil || got != tok {
			t.Fatalf("%v -> %q -> %v, %v", tok, tok.String(), got, err)
		}
	}
	for _, bad := range []string{"x1", "s", "s-1", "s1_2_3_4", "s1_a"} {
		if _, err := ParseToken(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("s1_2_3")
	f.Add("s99")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q parsed to %v but its string %q gives %v, %v", s, tok, tok.String(), again, err)
		}
	})
}
