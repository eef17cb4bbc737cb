package appservice

import "testing"

func TestLegacyFallbackRules(t *testing.T) {
	for path, want := range map[string]string{
		"/_matrix/app/v1/transactions/7":             "/transactions/7",
		"/_matrix/app/v1/users/@a:b":                 "/users/@a:b",
		"/_matrix/app/v1/rooms/%23a:b":               "/rooms/%23a:b",
		"/_matrix/app/v1/thirdparty/protocol/irc":    "/_matrix/app/unstable/thirdparty/protocol/irc",
		"/_matrix/app/v1/thirdparty/location":        "/_matrix/app/unstable/thirdparty/location",
		"/_matrix/app/v1/ping":                       "",
		"/_matrix/client/v3/transactions/7":          "",
		"/_matrix/app/v1/thirdparty/user/irc?x=/../": "/_matrix/app/unstable/thirdparty/user/irc?x=/../",
	} {
		if got := legacyPath(path); got != want {
			t.Errorf("legacyPath(%s) = %q, want %q", path, got, want)
		}
	}
	for _, c := range []struct {
		status int
		body   string
		want   bool
	}{
		{404, "404 page not found", true},
		{404, `{"errcode":"M_UNRECOGNIZED"}`, true},
		{404, `{"errcode":"M_NOT_FOUND"}`, false}, // a user query's "no such user"
		{405, "", true},
		{501, "", true},
		{500, "", false},
		{403, `{"errcode":"M_FORBIDDEN"}`, false},
		{200, "{}", false},
	} {
		if got := unsupported(c.status, []byte(c.body)); got != c.want {
			t.Errorf("unsupported(%d, %s) = %v", c.status, c.body, got)
		}
	}
}
