package clientapi_test

import (
	"net/http"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/media/mediatest"
	"github.com/axon-matrix/axon/internal/testrig"
)

// measured runs fn and reports how long it took and how much the process's
// peak RSS grew meanwhile. The kernel's high-water mark is reset first
// (clear_refs 5), after the heap has given its free memory back, so the
// growth is that of fn alone; the test's own server runs in this process.
func measured(t *testing.T, fn func()) (time.Duration, int64) {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := peakRSS(t)
	start := time.Now()
	fn()
	return time.Since(start), peakRSS(t) - before
}

// TestMediaThumbnailBombs uploads images that are small on disk but huge
// once decoded, and asks for their thumbnails: every answer comes quickly,
// and the server's memory stays bounded. Before frames were counted
// without decoding them, the animated request below took 2.3 GiB and 51 s.
func TestMediaThumbnailBombs(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) { c.Media.MaxUploadBytes = 64 << 20 })
	tok := r.CreateUser("alice").AccessToken
	bomb := mediatest.GIF(4000, 4000, 150)
	_, gid := upload(t, r, tok, "image/gif", "bomb.gif", bomb)
	thumb := "/_matrix/client/v1/media/thumbnail/axon.test/"

	cases := []struct {
		name, path string
		status     int
		errcode    string
		ctype      string
	}{
		// Too many frames of too large a canvas: the animation is refused
		// before any frame is decoded, and the first frame is served as a
		// still thumbnail, which the spec allows when animation is not possible.
		{"animated 4000x4000x150 GIF", thumb + gid + "?width=96&height=96&method=crop&animated=true", 200, "", "image/png"},
		{"still 4000x4000x150 GIF", thumb + gid + "?width=320&height=240&method=scale", 200, "", "image/png"},
	}
	for _, c := range cases {
		var res mediaResp
		took, grew := measured(t, func() { res = mediaDo(t, r, http.MethodGet, c.path, tok, "", nil) })
		t.Logf("%s: %d in %v, peak RSS +%d MiB", c.name, res.status, took.Round(time.Millisecond), grew>>20)
		if res.status != c.status || res.errcode() != c.errcode {
			t.Errorf("%s: got %d %s, want %d %s", c.name, res.status, res.body, c.status, c.errcode)
		}
		if c.ctype != "" && res.header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.name, res.header.Get("Content-Type"), c.ctype)
		}
		if took > 15*time.Second {
			t.Errorf("%s: took %v", c.name, took)
		}
		if grew > 300<<20 {
			t.Errorf("%s: peak RSS grew by %d MiB", c.name, grew>>20)
		}
	}
}
