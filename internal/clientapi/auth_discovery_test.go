package clientapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestNoSSONoOAuth checks how Axon tells clients it offers neither single
// sign-on nor the OAuth 2.0 API, and has no policy server key.
func TestNoSSONoOAuth(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")

	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/login", "", nil)
	if status != 200 {
		t.Fatalf("GET /login: %d", status)
	}
	var types []string
	for _, f := range body["flows"].([]any) {
		types = append(types, f.(map[string]any)["type"].(string))
	}
	if !slices.Contains(types, "m.login.password") || slices.Contains(types, "m.login.sso") || slices.Contains(types, "m.login.cas") {
		t.Fatalf("login flows %v (password, and no single sign-on)", types)
	}

	for _, path := range []string{
		"/_matrix/client/v3/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp.example%2F",
		"/_matrix/client/r0/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp.example%2F&action=register",
		"/_matrix/client/v3/login/sso/redirect/oidc-github?redirectUrl=https%3A%2F%2Fapp.example%2F",
		"/_matrix/client/v3/login/sso/redirect",
	} {
		req, err := http.NewRequest(http.MethodGet, r.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A browser follows redirects; there must be none to follow.
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: %d location %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		status, body := r.JSON(t, http.MethodGet, path, "", nil)
		wantAPIError(t, status, body, 404, "M_UNRECOGNIZED", path)
	}

	for _, token := range []string{"", alice.AccessToken} {
		status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v1/auth_metadata", token, nil)
		wantAPIError(t, status, body, 404, "M_UNRECOGNIZED", "auth_metadata")
	}

	status, body = r.JSON(t, http.MethodGet, "/.well-known/matrix/policy_server", "", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "policy_server")
}
