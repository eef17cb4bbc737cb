package clientapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

func TestWellKnownSupport(t *testing.T) {
	r := testrig.Start(t)
	status, body := r.JSON(t, http.MethodGet, "/.well-known/matrix/support", "", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	r = testrig.Start(t, func(c *config.Config) {
		c.Support = config.SupportSettings{Page: "https://axon.test/help",
			Contacts: []string{"m.role.admin @admin:axon.test admin@axon.test", "m.role.security security@axon.test"}}
	})
	status, raw := r.Do(http.MethodGet, "/.well-known/matrix/support", "", nil)
	var got any
	if err := json.Unmarshal(raw, &got); err != nil || status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	want := map[string]any{
		"support_page": "https://axon.test/help",
		"contacts": []any{
			map[string]any{"role": "m.role.admin", "matrix_id": "@admin:axon.test", "email_address": "admin@axon.test"},
			map[string]any{"role": "m.role.security", "email_address": "security@axon.test"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}

	// A page alone is enough.
	r = testrig.Start(t, func(c *config.Config) { c.Support.Page = "https://axon.test/help" })
	status, raw = r.Do(http.MethodGet, "/.well-known/matrix/support", "", nil)
	if status != 200 || string(raw) != `{"support_page":"https://axon.test/help"}` {
		t.Fatalf("%d %s", status, raw)
	}
}
