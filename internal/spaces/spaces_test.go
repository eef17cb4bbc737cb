package spaces

import "testing"

func TestSortChildren(t *testing.T) {
	cs := []child{
		{roomID: "!e", ts: 1},
		{roomID: "!d", ts: 5},
		{roomID: "!c", ts: 5},
		{roomID: "!b", order: "b", hasOrder: true, ts: 9},
		{roomID: "!a", order: "a", hasOrder: true, ts: 10},
		{roomID: "!f", order: "a", hasOrder: true, ts: 2},
	}
	sortChildren(cs)
	want := []string{"!f", "!a", "!b", "!e", "!c", "!d"}
	for i, c := range cs {
		if c.roomID != want[i] {
			t.Fatalf("position %d: %s, want order %v", i, c.roomID, want)
		}
	}
}

func TestValidOrder(t *testing.T) {
	for s, want := range map[string]bool{
		"":                       true,
		"abc ~":                  true,
		"\x7f":                   false,
		"ä":                      false,
		"\n":                     false,
		string(make([]byte, 51)): false,
		"01234567890123456789012345678901234567890123456789": true,
	} {
		if validOrder(s) != want {
			t.Errorf("validOrder(%q) = %v", s, !want)
		}
	}
}
