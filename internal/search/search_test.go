package search

import "testing"

func TestTermsAndMatchExpr(t *testing.T) {
	terms := Terms(`Héllo, "world" OR NEAR(x* {body}: -hello)`)
	want := []string{"héllo", "world", "or", "near", "x", "body", "hello"}
	if len(terms) != len(want) {
		t.Fatalf("terms %q", terms)
	}
	for i := range want {
		if terms[i] != want[i] {
			t.Fatalf("terms %q, want %q", terms, want)
		}
	}
	if got := MatchExpr([]string{"a", "b"}, nil); got != `{body name topic} : ("a"* "b"*)` {
		t.Fatalf("match %s", got)
	}
	if got := MatchExpr([]string{"a"}, []string{"name"}); got != `{name} : ("a"*)` {
		t.Fatalf("match %s", got)
	}
}

func TestBatchTokens(t *testing.T) {
	c, err := parseBatch(cursor{offset: 20, floor: 7}.String(true), true)
	if err != nil || c.offset != 20 || c.floor != 7 {
		t.Fatalf("rank token: %+v %v", c, err)
	}
	c, err = parseBatch(cursor{before: 99}.String(false), false)
	if err != nil || c.before != 99 {
		t.Fatalf("recent token: %+v %v", c, err)
	}
	for _, bad := range []string{"r20.7x", "r-1.0", "p", "x1", "p-5", "r5"} {
		if _, err := parseBatch(bad, bad[0] == 'r'); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseBatch("p5", true); err == nil {
		t.Error("recent token accepted for rank order")
	}
}
