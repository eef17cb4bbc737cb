package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRouteBodyLimit checks the per-route override of MaxRequestBytes.
func TestRouteBodyLimit(t *testing.T) {
	read := func(w http.ResponseWriter, r *http.Request) {
		if _, err := ReadBody(r); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{})
	}
	m := NewMux(Options{MaxRequestBytes: 10, Log: slog.New(slog.DiscardHandler)})
	m.Mount([]string{""}, []Route{
		{Method: http.MethodPost, Path: "/default", Handler: read},
		{Method: http.MethodPost, Path: "/larger", MaxBodyBytes: 100, Handler: read},
		{Method: http.MethodPost, Path: "/unlimited", MaxBodyBytes: NoBodyLimit, Handler: read},
	})
	h := m.Handler()
	for _, c := range []struct {
		path string
		size int
		want int
	}{
		{"/default", 10, 200}, {"/default", 11, 413},
		{"/larger", 100, 200}, {"/larger", 101, 413},
		{"/unlimited", 1 << 20, 200},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, io.NopCloser(strings.NewReader(strings.Repeat("x", c.size)))))
		if rec.Code != c.want {
			t.Errorf("%s with %d bytes: %d, want %d", c.path, c.size, rec.Code, c.want)
		}
	}
}
