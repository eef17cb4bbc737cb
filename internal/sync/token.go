package sync

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// Token is a sync position: the global stream position, the typing serial
// and the last to-device message delivered.
type Token struct {
	Pos      int64
	Typing   int64
	ToDevice int64
}

func (t Token) String() string {
	return fmt.Sprintf("s%d_%d_%d", t.Pos, t.Typing, t.ToDevice)
}

// ParseToken parses a sync token ("" is the zero token). Pagination tokens
// of the form s<pos> are accepted too.
func ParseToken(s string) (Token, error) {
	var t Token
	if s == "" {
		return t, nil
	}
	if !strings.HasPrefix(s, "s") {
		return t, mxerr.InvalidParam("Invalid token %q", s)
	}
	parts := strings.Split(s[1:], "_")
	if len(parts) > 3 {
		return t, mxerr.InvalidParam("Invalid token %q", s)
	}
	vals := make([]int64, 3)
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return t, mxerr.InvalidParam("Invalid token %q", s)
		}
		vals[i] = v
	}
	return Token{Pos: vals[0], Typing: vals[1], ToDevice: vals[2]}, nil
}
