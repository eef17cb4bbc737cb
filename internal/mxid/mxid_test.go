package mxid

import (
	"strings"
	"testing"
)

func TestIDs(t *testing.T) {
	long := strings.Repeat("a", MaxBytes)
	for _, c := range []struct {
		check func(string) bool
		id    string
		want  bool
	}{
		{RoomID, "!abc:example.org", true},
		{RoomID, "!4Fyq-Xqn3u8DhSqCXOgGChJbFHYd0mhgBZkPPMm3xm8", true}, // room v12: no server part
		{RoomID, "!abc:[::1]:8448", true},
		{RoomID, "!" + long[:MaxBytes-1], true},
		{RoomID, "!" + long, false},
		{RoomID, "notaroomid", false},
		{RoomID, "!", false},
		{RoomID, "!:example.org", false},
		{RoomID, "!abc:", false},
		{RoomID, "!bad\x00", false},
		{RoomID, "!\xff\xfe:example.org", false},
		{RoomID, "!a b:example.org", false},
		{RoomID, "#alias:example.org", false},
		{EventID, "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", true},
		{EventID, "$old:example.org", true},
		{EventID, "$", false},
		{EventID, "notanevent", false},
		{UserID, "@alice:example.org", true},
		{UserID, "@Old=Style!:example.org", true}, // historical localparts
		{UserID, "@alice", false},
		{UserID, "@:example.org", false},
		{UserID, "alice:example.org", false},
		{RoomAlias, "#room:example.org", true},
		{RoomAlias, "#room", false},
	} {
		if got := c.check(c.id); got != c.want {
			t.Errorf("%q: got %v, want %v", c.id, got, c.want)
		}
	}
}
