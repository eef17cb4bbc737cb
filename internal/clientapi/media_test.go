package clientapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "golang.org/x/image/webp"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/media"
	"github.com/axon-matrix/axon/internal/testrig"
)

type mediaResp struct {
	status int
	header http.Header
	body   []byte
}

func (m mediaResp) errcode() string {
	var e struct{ Errcode string }
	json.Unmarshal(m.body, &e)
	return e.Errcode
}

func mediaDo(t *testing.T, r *testrig.Rig, method, path, token, ctype string, body io.Reader) mediaResp {
	t.Helper()
	req, err := http.NewRequest(method, r.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return mediaResp{resp.StatusCode, resp.Header, b}
}

// upload posts to /_matrix/media/v3/upload and returns server name and media ID.
func upload(t *testing.T, r *testrig.Rig, token, ctype, name string, data []byte) (string, string) {
	t.Helper()
	path := "/_matrix/media/v3/upload"
	if name != "" {
		path += "?filename=" + name
	}
	res := mediaDo(t, r, http.MethodPost, path, token, ctype, bytes.NewReader(data))
	if res.status != 200 {
		t.Fatalf("upload: %d %s", res.status, res.body)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(res.body, &out)
	rest, ok := strings.CutPrefix(out.ContentURI, "mxc://")
	server, mediaID, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		t.Fatalf("content_uri %q", out.ContentURI)
	}
	return server, mediaID
}

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMediaRoundTripEachPathFamily(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	data := encodePNG(t, testImage(40, 30))
	server, id := upload(t, r, alice.AccessToken, "image/png", "cat.png", data)
	if server != "axon.test" {
		t.Fatalf("server name %q", server)
	}
	for _, c := range []struct{ path, token string }{
		{"/_matrix/client/v1/media/download/" + server + "/" + id, bob.AccessToken},
		{"/_matrix/client/v1/media/download/" + server + "/" + id + "/other.png", bob.AccessToken},
		{"/_matrix/media/v3/download/" + server + "/" + id, ""},
		{"/_matrix/media/r0/download/" + server + "/" + id + "/other.png", ""},
	} {
		res := mediaDo(t, r, http.MethodGet, c.path, c.token, "", nil)
		if res.status != 200 || !bytes.Equal(res.body, data) {
			t.Fatalf("%s: %d, %d bytes", c.path, res.status, len(res.body))
		}
		h := res.header
		if h.Get("Content-Type") != "image/png" || !strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox;") ||
			h.Get("Cross-Origin-Resource-Policy") != "cross-origin" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", c.path, h)
		}
		wantName := "cat.png"
		if strings.HasSuffix(c.path, "other.png") {
			wantName = "other.png"
		}
		if d := h.Get("Content-Disposition"); d != `inline; filename=`+wantName {
			t.Errorf("%s: Content-Disposition %q", c.path, d)
		}
		cc := h.Get("Cache-Control")
		if strings.Contains(c.path, "/client/v1/") != strings.HasPrefix(cc, "private") || !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q", c.path, cc)
		}
	}
	// Authenticated media needs a token.
	if res := mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/"+server+"/"+id, "", "", nil); res.status != 401 {
		t.Errorf("v1 download without token: %d", res.status)
	}
	// Unsafe types are attachments, with non-ASCII names encoded.
	_, hid := upload(t, r, alice.AccessToken, "text/html", "p%C3%A4ge.html", []byte("<html><script>alert(1)</script></html>"))
	res := mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/axon.test/"+hid, bob.AccessToken, "", nil)
	if d := res.header.Get("Content-Disposition"); d != "attachment; filename*=utf-8''p%C3%A4ge.html" {
		t.Errorf("html disposition %q", d)
	}
	// The async pair: create, then PUT the bytes, then download.
	res = mediaDo(t, r, http.MethodPost, "/_matrix/media/v1/create", alice.AccessToken, "", nil)
	var created struct {
		ContentURI      string `json:"content_uri"`
		UnusedExpiresAt int64  `json:"unused_expires_at"`
	}
	json.Unmarshal(res.body, &created)
	if res.status != 200 || created.UnusedExpiresAt < time.Now().UnixMilli() {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	aid := created.ContentURI[strings.LastIndexByte(created.ContentURI, '/')+1:]
	done := make(chan mediaResp)
	go func() {
		// Waits for the upload (timeout_ms).
		done <- mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/axon.test/"+aid+"?timeout_ms=10000", bob.AccessToken, "", nil)
	}()
	time.Sleep(100 * time.Millisecond)
	res = mediaDo(t, r, http.MethodPut, "/_matrix/media/v3/upload/axon.test/"+aid+"?filename=a.txt", alice.AccessToken, "text/plain", strings.NewReader("hello async"))
	if res.status != 200 {
		t.Fatalf("async upload: %d %s", res.status, res.body)
	}
	if got := <-done; got.status != 200 || string(got.body) != "hello async" || got.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("download of async upload: %d %q %v", got.status, got.body, got.header)
	}
	// Config under both families.
	for _, p := range []string{"/_matrix/client/v1/media/config", "/_matrix/media/v3/config"} {
		res := mediaDo(t, r, http.MethodGet, p, alice.AccessToken, "", nil)
		if res.status != 200 || !strings.Contains(string(res.body), `"m.upload.size":52428800`) {
			t.Errorf("%s: %d %s", p, res.status, res.body)
		}
	}
	// Range requests work (clients seek in videos).
	req, _ := http.NewRequest(http.MethodGet, r.URL+"/_matrix/media/v3/download/axon.test/"+id, nil)
	req.Header.Set("Range", "bytes=0-7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(b, data[:8]) {
		t.Errorf("range: %d %x", resp.StatusCode, b)
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestMediaDeduplicatesAndPurges(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	data := []byte("the same bytes twice")
	_, id1 := upload(t, r, alice.AccessToken, "text/plain", "", data)
	_, id2 := upload(t, r, bob.AccessToken, "text/plain", "", data)
	contentDir := filepath.Join(r.Server.Cfg.Media.Dir, "content")
	if n := countFiles(t, contentDir); n != 1 {
		t.Fatalf("%d files for identical uploads", n)
	}
	ms := r.Server.API.Media
	ctx := context.Background()
	res, err := ms.Purge(ctx, media.PurgeFilter{UserID: alice.UserID.String()})
	if err != nil || res.Media != 1 || res.Files != 0 {
		t.Fatalf("purge alice: %+v %v", res, err)
	}
	if got := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+id1, "", "", nil); got.status != 404 {
		t.Errorf("purged media: %d", got.status)
	}
	if got := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+id2, "", "", nil); got.status != 200 {
		t.Errorf("bob's copy: %d", got.status)
	}
	// A file without a row (a crash between storing and inserting) goes
	// once it is an hour old.
	stray := filepath.Join(contentDir, "ab", "ab"+strings.Repeat("0", 62))
	os.MkdirAll(filepath.Dir(stray), 0o700)
	os.WriteFile(stray, []byte("stray"), 0o600)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stray, old, old)
	res, err = ms.Purge(ctx, media.PurgeFilter{Before: time.Now().Add(time.Minute).UnixMilli()})
	if err != nil || res.Media != 1 || res.Files != 2 {
		t.Fatalf("purge before: %+v %v", res, err)
	}
	if n := countFiles(t, contentDir); n != 0 {
		t.Fatalf("%d files left after purge", n)
	}
}

// webpLossless encodes a w x h VP8L image whose green channel alternates
// in stripes: enough of an encoder to test decoding (Go has no WebP encoder).
func webpLossless(w, h int) []byte {
	var bits []byte
	var cur uint64
	var n uint
	put := func(v uint64, k uint) {
		cur |= v << n
		n += k
		for n >= 8 {
			bits = append(bits, byte(cur))
			cur >>= 8
			n -= 8
		}
	}
	put(0x2f, 8)
	put(uint64(w-1), 14)
	put(uint64(h-1), 14)
	put(0, 1) // no alpha
	put(0, 3) // version
	put(0, 1) // no transform
	put(0, 1) // no colour cache
	put(0, 1) // no meta prefix codes
	simple1 := func(sym uint64) { put(1, 1); put(0, 1); put(1, 1); put(sym, 8) }
	put(1, 1) // green: simple code, two 8-bit symbols
	put(1, 1)
	put(1, 1)
	put(40, 8)
	put(200, 8)
	simple1(90)  // red
	simple1(30)  // blue
	simple1(255) // alpha
	simple1(0)   // distance
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			put(uint64((x/50+y/50)%2), 1)
		}
	}
	put(0, 7)
	data := bits
	if len(data)%2 == 1 {
		data = append(data, 0)
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	binary.Write(&out, binary.LittleEndian, uint32(4+8+len(bits)+len(bits)%2))
	out.WriteString("WEBPVP8L")
	binary.Write(&out, binary.LittleEndian, uint32(len(bits)))
	out.Write(data)
	return out.Bytes()
}

func TestMediaThumbnailsPerFormat(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	src := testImage(1200, 900)
	var jb, gb bytes.Buffer
	jpeg.Encode(&jb, src, nil)
	pal := image.NewPaletted(src.Bounds(), []color.Color{color.Black, color.White, color.RGBA{255, 0, 0, 255}})
	frame2 := image.NewPaletted(src.Bounds(), pal.Palette)
	for i := range frame2.Pix {
		frame2.Pix[i] = 2
	}
	gif.EncodeAll(&gb, &gif.GIF{Image: []*image.Paletted{pal, frame2}, Delay: []int{10, 10}})
	formats := map[string][]byte{
		"image/jpeg": jb.Bytes(),
		"image/png":  encodePNG(t, src),
		"image/gif":  gb.Bytes(),
		"image/webp": webpLossless(1200, 900),
	}
	for ctype, data := range formats {
		_, id := upload(t, r, alice.AccessToken, ctype, "", data)
		for _, size := range media.StandardSizes {
			path := fmt.Sprintf("/_matrix/client/v1/media/thumbnail/axon.test/%s?width=%d&height=%d&method=%s", id, size.Width, size.Height, size.Method)
			start := time.Now()
			res := mediaDo(t, r, http.MethodGet, path, alice.AccessToken, "", nil)
			if res.status != 200 {
				t.Fatalf("%s %v: %d %s", ctype, size, res.status, res.body)
			}
			img, format, err := image.Decode(bytes.NewReader(res.body))
			if err != nil {
				t.Fatalf("%s %v: decode: %v", ctype, size, err)
			}
			if b := img.Bounds(); b.Dx() != size.Width || b.Dy() != size.Height {
				t.Errorf("%s %v: got %dx%d", ctype, size, b.Dx(), b.Dy())
			}
			if want := map[bool]string{true: "jpeg", false: "png"}[ctype == "image/jpeg"]; format != want || res.header.Get("Content-Type") != "image/"+want {
				t.Errorf("%s %v: format %s, Content-Type %s", ctype, size, format, res.header.Get("Content-Type"))
			}
			t.Logf("%s %dx%d %s: %d bytes in %v", ctype, size.Width, size.Height, size.Method, len(res.body), time.Since(start))
		}
		if n := countFiles(t, filepath.Join(r.Server.Cfg.Media.Dir, "thumbnails")); n == 0 {
			t.Errorf("%s: no thumbnails cached", ctype)
		}
		// The legacy path serves the cached thumbnail.
		res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/thumbnail/axon.test/"+id+"?width=32&height=32&method=crop", "", "", nil)
		if res.status != 200 {
			t.Errorf("legacy thumbnail: %d", res.status)
		}
	}
	// Animated GIF thumbnails keep their frames.
	_, gid := upload(t, r, alice.AccessToken, "image/gif", "", gb.Bytes())
	res := mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/"+gid+"?width=96&height=96&method=crop&animated=true", alice.AccessToken, "", nil)
	g, err := gif.DecodeAll(bytes.NewReader(res.body))
	if err != nil || len(g.Image) != 2 || g.Config.Width != 96 || g.Config.Height != 96 {
		t.Fatalf("animated thumbnail: %d %v", res.status, err)
	}
	// Content smaller than the request is served as it is (never upscaled).
	small := encodePNG(t, testImage(20, 10))
	_, sid := upload(t, r, alice.AccessToken, "image/png", "", small)
	res = mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/"+sid+"?width=320&height=240", alice.AccessToken, "", nil)
	if res.status != 200 || !bytes.Equal(res.body, small) {
		t.Errorf("small image thumbnail: %d, %d bytes", res.status, len(res.body))
	}
	// Non-images have no thumbnails.
	_, tid := upload(t, r, alice.AccessToken, "text/plain", "", []byte("words"))
	res = mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/"+tid+"?width=32&height=32", alice.AccessToken, "", nil)
	if res.status != 400 {
		t.Errorf("thumbnail of text: %d %s", res.status, res.body)
	}
}

func TestMediaBadInput(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) {
		c.Media.MaxUploadBytes = 1000
		c.Media.UserQuotaBytes = 2500
	})
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	tok := alice.AccessToken
	check := func(name string, res mediaResp, status int, code string) {
		t.Helper()
		if res.status != status || res.errcode() != code {
			t.Errorf("%s: got %d %s, want %d %s", name, res.status, res.body, status, code)
		}
	}
	up := func(ctype string, body io.Reader) mediaResp {
		return mediaDo(t, r, http.MethodPost, "/_matrix/media/v3/upload", tok, ctype, body)
	}
	check("html claimed as png", up("image/png", strings.NewReader("<!DOCTYPE html><html><script>x</script></html>")), 400, "M_INVALID_PARAM")
	check("svg claimed as jpeg", up("image/jpeg", strings.NewReader(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`)), 400, "M_INVALID_PARAM")
	// Types that are never served inline are kept as claimed.
	_, svg := upload(t, r, tok, "image/svg+xml", "", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`))
	if res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+svg, "", "", nil); res.header.Get("Content-Type") != "image/svg+xml" ||
		res.header.Get("Content-Disposition") != "attachment" {
		t.Errorf("svg served as %q, %q", res.header.Get("Content-Type"), res.header.Get("Content-Disposition"))
	}
	// An image whose header promises more pixels than the thumbnailer
	// decodes is refused before decoding.
	huge := encodePNG(t, testImage(2, 2))
	binary.BigEndian.PutUint32(huge[16:], 10000)
	binary.BigEndian.PutUint32(huge[20:], 5000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	_, hid := upload(t, r, tok, "image/png", "", huge)
	check("thumbnail of a 50 MP image", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/"+hid+"?width=32&height=32", tok, "", nil), 413, "M_TOO_LARGE")
	check("malformed content type", up("not a type", strings.NewReader("x")), 400, "M_INVALID_PARAM")
	check("oversize with length", up("text/plain", bytes.NewReader(make([]byte, 1001))), 413, "M_TOO_LARGE")
	check("oversize chunked", up("text/plain", io.MultiReader(bytes.NewReader(make([]byte, 600)), bytes.NewReader(make([]byte, 600)))), 413, "M_TOO_LARGE")
	check("empty", up("text/plain", strings.NewReader("")), 400, "M_INVALID_PARAM")
	check("no token", mediaDo(t, r, http.MethodPost, "/_matrix/media/v3/upload", "", "text/plain", strings.NewReader("x")), 401, "M_MISSING_TOKEN")
	// A PNG claimed as JPEG is stored as what it is.
	_, pid := upload(t, r, tok, "image/jpeg", "", encodePNG(t, testImage(4, 4)))
	if res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+pid, "", "", nil); res.header.Get("Content-Type") != "image/png" {
		t.Errorf("corrected type: %q", res.header.Get("Content-Type"))
	}
	for _, claim := range []string{"image/jpg", ""} {
		_, id := upload(t, r, tok, claim, "", encodePNG(t, testImage(4, 4)))
		if res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+id, "", "", nil); res.header.Get("Content-Type") != "image/png" {
			t.Errorf("PNG claimed as %q served as %q", claim, res.header.Get("Content-Type"))
		}
	}
	check("unknown media ID", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/axon.test/nosuchmedia", tok, "", nil), 404, "M_NOT_FOUND")
	check("unknown thumbnail", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/nosuchmedia?width=32&height=32", tok, "", nil), 404, "M_NOT_FOUND")
	check("remote media", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/other.example/abc", tok, "", nil), 404, "M_NOT_FOUND")
	check("escaped traversal in media ID", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/axon.test/..%2F..%2Faxon.db", tok, "", nil), 400, "M_INVALID_PARAM")
	check("traversal in server name", mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/..%2F..%2F/abc", "", "", nil), 400, "M_INVALID_PARAM")
	check("dot media ID", mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/%2E%2E", "", "", nil), 400, "M_INVALID_PARAM")
	// An unescaped ../ is cleaned by the router and never reaches a file.
	if res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/../../../axon.db", "", "", nil); res.status == 200 {
		t.Errorf("unescaped traversal served %d bytes", len(res.body))
	}
	// Names are sanitised: no path survives into Content-Disposition.
	_, nid := upload(t, r, tok, "text/plain", "..%2F..%2Fetc%2Fpasswd", []byte("x"))
	if d := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+nid, "", "", nil).header.Get("Content-Disposition"); d != "inline; filename=passwd" {
		t.Errorf("sanitised name: %q", d)
	}
	check("bad thumbnail size", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/"+pid+"?width=0&height=32", tok, "", nil), 400, "M_INVALID_PARAM")
	check("bad thumbnail method", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/thumbnail/axon.test/"+pid+"?width=32&height=32&method=stretch", tok, "", nil), 400, "M_INVALID_PARAM")
	// Async uploads: only the creator, only once.
	res := mediaDo(t, r, http.MethodPost, "/_matrix/media/v1/create", tok, "", nil)
	var created struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(res.body, &created)
	aid := created.ContentURI[strings.LastIndexByte(created.ContentURI, '/')+1:]
	check("pending, no wait", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/axon.test/"+aid+"?timeout_ms=0", tok, "", nil), 504, "M_NOT_YET_UPLOADED")
	check("put by another user", mediaDo(t, r, http.MethodPut, "/_matrix/media/v3/upload/axon.test/"+aid, bob.AccessToken, "text/plain", strings.NewReader("x")), 403, "M_FORBIDDEN")
	check("put unknown", mediaDo(t, r, http.MethodPut, "/_matrix/media/v3/upload/axon.test/nosuchmedia", tok, "text/plain", strings.NewReader("x")), 404, "M_NOT_FOUND")
	if res := mediaDo(t, r, http.MethodPut, "/_matrix/media/v3/upload/axon.test/"+aid, tok, "text/plain", strings.NewReader("x")); res.status != 200 {
		t.Fatalf("put: %d %s", res.status, res.body)
	}
	check("put twice", mediaDo(t, r, http.MethodPut, "/_matrix/media/v3/upload/axon.test/"+aid, tok, "text/plain", strings.NewReader("y")), 409, "M_CANNOT_OVERWRITE_MEDIA")
	// Quota: 2500 bytes per user.
	carol := r.CreateUser("carol").AccessToken
	upload(t, r, carol, "text/plain", "", bytes.Repeat([]byte("a"), 1000))
	upload(t, r, carol, "text/plain", "", bytes.Repeat([]byte("b"), 1000))
	check("over quota", mediaDo(t, r, http.MethodPost, "/_matrix/media/v3/upload", carol, "text/plain", bytes.NewReader(bytes.Repeat([]byte("c"), 1000))), 403, "M_FORBIDDEN")
	upload(t, r, bob.AccessToken, "text/plain", "", bytes.Repeat([]byte("c"), 1000))
	// URL previews are off by default.
	check("preview off", mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/preview_url?url=https://example.org/", tok, "", nil), 403, "M_FORBIDDEN")
}

func TestMediaFreezeLegacy(t *testing.T) {
	dir := t.TempDir()
	r := testrig.StartIn(t, dir)
	alice := r.CreateUser("alice")
	_, before := upload(t, r, alice.AccessToken, "text/plain", "", []byte("before the freeze"))
	r.Stop()
	r = testrig.StartIn(t, dir, func(c *config.Config) { c.Media.FreezeLegacy = true })
	alice = r.CreateUserDevice("alice", "DEV2", false)
	_, after := upload(t, r, alice.AccessToken, "text/plain", "", []byte("after the freeze"))
	for id, legacy := range map[string]int{before: 200, after: 404} {
		if res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+id, "", "", nil); res.status != legacy {
			t.Errorf("legacy download of %s: %d, want %d", id, res.status, legacy)
		}
		if res := mediaDo(t, r, http.MethodGet, "/_matrix/client/v1/media/download/axon.test/"+id, alice.AccessToken, "", nil); res.status != 200 {
			t.Errorf("authenticated download of %s: %d", id, res.status)
		}
	}
}

// patternReader yields n pseudo-random bytes without holding them.
type patternReader struct {
	n, off int64
	state  uint64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int64(len(b))
	if rem := p.n - p.off; rem < k {
		k = rem
	}
	for i := range b[:k] {
		p.state = p.state*6364136223846793005 + 1442695040888963407
		b[i] = byte(p.state >> 56)
	}
	p.off += k
	return int(k), nil
}

func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestMediaLargeUploadBoundedMemory uploads and downloads 100 MB through
// the in-process server and checks that neither the heap nor the process's
// peak RSS grows with the file.
func TestMediaLargeUploadBoundedMemory(t *testing.T) {
	const size = 100 << 20
	r := testrig.Start(t, func(c *config.Config) { c.Media.MaxUploadBytes = 200 << 20 })
	alice := r.CreateUser("alice")
	runtime.GC()
	// Reset the kernel's peak-RSS mark so VmHWM measures this test alone.
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	rssBefore := peakRSS(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peakHeap.Load() {
				peakHeap.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	want := sha256.New()
	io.Copy(want, &patternReader{n: size, state: 1})
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/_matrix/media/v3/upload?filename=big.bin", &patternReader{n: size, state: 1})
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	uploaded := time.Since(start)
	resp, err = http.Get(r.URL + "/_matrix/media/v3/download/" + strings.TrimPrefix(out.ContentURI, "mxc://"))
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, _ := io.Copy(got, resp.Body)
	resp.Body.Close()
	close(stop)
	<-sampled
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("downloaded %d bytes, hash mismatch=%v", n, !bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	heapGrowth := int64(peakHeap.Load()) - int64(heapBefore)
	rssGrowth := peakRSS(t) - rssBefore
	t.Logf("100 MB: upload %v, round trip %v; peak heap growth %.1f MiB; peak RSS %.1f MiB (growth %.1f MiB)",
		uploaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), float64(heapGrowth)/(1<<20), float64(peakRSS(t))/(1<<20), float64(rssGrowth)/(1<<20))
	if heapGrowth > 32<<20 {
		t.Errorf("heap grew by %d MiB during a 100 MB round trip", heapGrowth>>20)
	}
	if rssGrowth > 64<<20 {
		t.Errorf("peak RSS grew by %d MiB during a 100 MB round trip", rssGrowth>>20)
	}
}

// TestMediaConcurrent uploads identical bytes from several clients at once
// and asks for one thumbnail concurrently: one stored file, every media ID
// served, one cached thumbnail.
func TestMediaConcurrent(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	data := encodePNG(t, testImage(300, 200))
	const n = 8
	ids := make(chan string, n)
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, r.URL+"/_matrix/media/v3/upload", bytes.NewReader(data))
			req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
			req.Header.Set("Content-Type", "image/png")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				ids <- ""
				return
			}
			var out struct {
				ContentURI string `json:"content_uri"`
			}
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			ids <- strings.TrimPrefix(out.ContentURI, "mxc://axon.test/")
		}()
	}
	var all []string
	for i := 0; i < n; i++ {
		all = append(all, <-ids)
	}
	for _, id := range all {
		if res := mediaDo(t, r, http.MethodGet, "/_matrix/media/v3/download/axon.test/"+id, "", "", nil); res.status != 200 || !bytes.Equal(res.body, data) {
			t.Fatalf("download %q: %d", id, res.status)
		}
	}
	if c := countFiles(t, filepath.Join(r.Server.Cfg.Media.Dir, "content")); c != 1 {
		t.Errorf("%d content files for identical uploads", c)
	}
	done := make(chan mediaResp, n)
	for i := 0; i < n; i++ {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, r.URL+"/_matrix/media/v3/thumbnail/axon.test/"+all[0]+"?width=96&height=96&method=crop", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				done <- mediaResp{}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- mediaResp{status: resp.StatusCode, body: b}
		}()
	}
	for i := 0; i < n; i++ {
		res := <-done
		if img, _, err := image.Decode(bytes.NewReader(res.body)); res.status != 200 || err != nil || img.Bounds().Dx() != 96 {
			t.Fatalf("concurrent thumbnail: %d %v", res.status, err)
		}
	}
	if c := countFiles(t, filepath.Join(r.Server.Cfg.Media.Dir, "thumbnails")); c != 1 {
		t.Errorf("%d cached thumbnails, want 1", c)
	}
	if c := countFiles(t, filepath.Join(r.Server.Cfg.Media.Dir, "tmp")); c != 0 {
		t.Errorf("%d temporary files left", c)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
