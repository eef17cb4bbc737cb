package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// TestJSONBodiesAreUTF8: every JSON body reader refuses invalid UTF-8 as
// M_NOT_JSON (encoding/json alone would store U+FFFD), while ReadBody
// stays raw for bodies that are not JSON.
func TestJSONBodiesAreUTF8(t *testing.T) {
	bad := `{"test":"a` + "\x81" + `"}`
	code := func(err error) string {
		if e, ok := mxerr.As(err); ok {
			return e.Code
		}
		return ""
	}
	var v map[string]any
	if err := DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(bad)), &v); code(err) != "M_NOT_JSON" {
		t.Errorf("DecodeJSON: %v", err)
	}
	if _, err := ReadJSON(httptest.NewRequest("POST", "/", strings.NewReader(bad))); code(err) != "M_NOT_JSON" {
		t.Errorf("ReadJSON: %v", err)
	}
	if err := DecodeBytes([]byte(bad), &v); code(err) != "M_NOT_JSON" {
		t.Errorf("DecodeBytes: %v", err)
	}
	if b, err := ReadBody(httptest.NewRequest("POST", "/", strings.NewReader(bad))); err != nil || string(b) != bad {
		t.Errorf("ReadBody: %q %v", b, err)
	}
	for _, ok := range []string{"", `{"test":"é ✓"}`} {
		if _, err := ReadJSON(httptest.NewRequest("POST", "/", strings.NewReader(ok))); err != nil {
			t.Errorf("ReadJSON(%q): %v", ok, err)
		}
	}
}
