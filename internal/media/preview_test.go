package media

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/netguard"
	"github.com/axon-matrix/axon/internal/storage"
)

func newTestService(t *testing.T, cfg Config) *Service {
	t.Helper()
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), filepath.Join(dir, "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Dir = filepath.Join(dir, "media")
	cfg.ServerName = "media.test"
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = 1 << 20
	}
	s, err := New(db, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPreviewURL(t *testing.T) {
	page := `<html><head><title>Fallback &amp; title</title>
<meta property="og:title" content="An &quot;Open Graph&quot; title">
<meta content='A description' name="description">
<meta property="og:type" content=website>
<meta property="og:image" content="/pic.png">
</head><body>hello</body></html>`
	var pic bytes.Buffer
	png.Encode(&pic, image.NewRGBA(image.Rect(0, 0, 120, 80)))
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path == "/pic.png" {
			w.Header().Set("Content-Type", "image/png")
			w.Write(pic.Bytes())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	defer srv.Close()
	ctx := context.Background()

	off := newTestService(t, Config{})
	if _, err := off.PreviewURL(ctx, srv.URL); !isCode(err, "M_FORBIDDEN") {
		t.Fatalf("previews off: %v", err)
	}
	s := newTestService(t, Config{URLPreviews: true})
	// Loopback is not public: refused, on the resolved address.
	if _, err := s.PreviewURL(ctx, srv.URL); !isCode(err, "M_FORBIDDEN") {
		t.Fatalf("loopback preview: %v", err)
	}
	if _, err := s.PreviewURL(ctx, "file:///etc/passwd"); !isCode(err, "M_INVALID_PARAM") {
		t.Fatalf("file URL: %v", err)
	}
	// With loopback on the operator's allow-list, the page is fetched.
	s = newTestService(t, Config{URLPreviews: true, Outbound: netguard.WithAllowed([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})})
	og, err := s.PreviewURL(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"og:title": `An "Open Graph" title`, "og:description": "A description", "og:type": "website",
		"og:image:type": "image/png", "og:image:width": 120, "og:image:height": 80, "matrix:image:size": int64(pic.Len())}
	for k, v := range want {
		if og[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, og[k], v, og)
		}
	}
	mxc, _ := og["og:image"].(string)
	c, err := s.Download(ctx, "media.test", strings.TrimPrefix(mxc, "mxc://media.test/"), Options{})
	if err != nil {
		t.Fatalf("og:image %q: %v", mxc, err)
	}
	c.Close()
	if c.Size != int64(pic.Len()) {
		t.Errorf("stored image: %d bytes", c.Size)
	}
	// The second request is answered from the cache.
	n := fetches.Load()
	if _, err := s.PreviewURL(ctx, srv.URL+"#fragment"); err != nil || fetches.Load() != n {
		t.Errorf("cached preview: %v, %d fetches", err, fetches.Load()-n)
	}
}

func isCode(err error, code string) bool {
	e, ok := mxerr.As(err)
	return ok && e.Code == code
}

func TestTargetSize(t *testing.T) {
	for _, c := range []struct {
		w, h int
		req  ThumbnailRequest
		tw   int
		th   int
		ok   bool
	}{
		{1200, 900, ThumbnailRequest{Width: 320, Height: 240, Method: "scale"}, 320, 240, true},
		{1000, 500, ThumbnailRequest{Width: 320, Height: 240, Method: "scale"}, 480, 240, true}, // covers the box
		{1000, 500, ThumbnailRequest{Width: 96, Height: 96, Method: "crop"}, 96, 96, true},
		{50, 40, ThumbnailRequest{Width: 96, Height: 96, Method: "crop"}, 50, 40, false}, // never upscale
		{200, 50, ThumbnailRequest{Width: 96, Height: 96, Method: "crop"}, 50, 50, true},
		{400, 300, ThumbnailRequest{Width: 800, Height: 600, Method: "scale"}, 400, 300, false},
	} {
		tw, th, ok := targetSize(c.w, c.h, c.req)
		if tw != c.tw || th != c.th || ok != c.ok {
			t.Errorf("%dx%d %+v: %dx%d %v", c.w, c.h, c.req, tw, th, ok)
		}
	}
}
