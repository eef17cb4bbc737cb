package clientapi_test

import (
	"fmt"
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
	// The same cut short in the middle of its first frame.
	_, cutID := upload(t, r, tok, "image/gif", "", bomb[:len(bomb)/300])
	// A small animation stays animated.
	_, smallID := upload(t, r, tok, "image/gif", "", mediatest.GIF(300, 300, 40))
	// 36 megapixels of 16-bit RGBA (288 MB decoded) in 290 kB.
	_, deepID := upload(t, r, tok, "image/png", "", mediatest.PNG(6000, 6000, 16, 6, 6000))
	// 36 megapixels of grey, asked for at 4096x4096: a single bilinear
	// pass would take a scratch buffer of 4096 x 6000 x 32 bytes.
	_, greyID := upload(t, r, tok, "image/png", "", mediatest.PNG(6000, 6000, 8, 0, 6000))
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
		{"truncated GIF", thumb + cutID + "?width=96&height=96&method=crop&animated=true", 400, "M_UNKNOWN", ""},
		{"small animation", thumb + smallID + "?width=96&height=96&method=crop&animated=true", 200, "", "image/gif"},
		{"16-bit 36 MP PNG", thumb + deepID + "?width=32&height=32&method=crop", 413, "M_TOO_LARGE", ""},
		{"36 MP PNG at 4096x4096", thumb + greyID + "?width=4096&height=4096&method=scale", 200, "", "image/png"},
	}
	for _, c := range cases {
		var res mediaResp
		took, grew := measured(t, func() { res = mediaDo(t, r, http.MethodGet, c.path, tok, "", nil) })
		t.Logf("%s: %d in %v, peak RSS +%d MiB", c.name, res.status, took.Round(time.Millisecond), grew>>20)
		if res.status != c.status || res.errcode() != c.errcode {
			t.Errorf("%s: got %d %s (%d bytes), want %d %s", c.name, res.status, res.errcode(), len(res.body), c.status, c.errcode)
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
	// A burst of distinct animated thumbnails: they queue for the
	// thumbnailers instead of decoding side by side without bound.
	const burst = 6
	statuses := make(chan int, burst)
	took, grew := measured(t, func() {
		for i := 0; i < burst; i++ {
			go func() {
				statuses <- mediaDo(t, r, http.MethodGet, fmt.Sprintf("%s%s?width=%d&height=%d&animated=true", thumb, gid, 100+i, 100+i), tok, "", nil).status
			}()
		}
		for i := 0; i < burst; i++ {
			if st := <-statuses; st != 200 {
				t.Errorf("burst: status %d", st)
			}
		}
	})
	t.Logf("burst of %d: %v, peak RSS +%d MiB", burst, took.Round(time.Millisecond), grew>>20)
	if grew > 600<<20 {
		t.Errorf("burst: peak RSS grew by %d MiB", grew>>20)
	}
}
