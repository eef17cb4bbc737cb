package media

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/media/mediatest"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// fuzzLimits are the production limits scaled down, so that every input
// the fuzzer tries is cheap: the checks are the same code.
var fuzzLimits = thumbLimits{pixels: 1 << 20, bytes: 16 << 20, animPixels: 4 << 20, frames: 64}

func fuzzSeeds(t testing.TB) [][]byte {
	var jp, pn bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	// Smooth content: small seeds keep the fuzzer's minimising cheap.
	for i := range img.Pix {
		img.Pix[i] = byte(i / 64)
	}
	if err := jpeg.Encode(&jp, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&pn, img); err != nil {
		t.Fatal(err)
	}
	bomb := mediatest.GIF(1100, 1000, 4)
	return [][]byte{
		mediatest.GIF(64, 64, 3),
		bomb,                                // 1.1 MP canvas: over the fuzzing pixel limit
		bomb[:len(bomb)/2],                  // cut in the middle
		mediatest.GIF(40, 40, 100),          // too many frames: a still thumbnail
		mediatest.PNG(1000, 1000, 16, 6, 3), // 8 MB declared, 3 rows held
		mediatest.PNG(60000, 60000, 8, 0, 1),
		jp.Bytes(),
		progressive(jp.Bytes()),
		pn.Bytes(),
		pn.Bytes()[:len(pn.Bytes())/2],
	}
}

// progressive marks a baseline JPEG's frame as progressive (SOF2).
func progressive(b []byte) []byte {
	b = bytes.Clone(b)
	if i := bytes.Index(b, []byte{0xff, 0xc0}); i >= 0 {
		b[i+1] = 0xc2
	}
	return b
}

// FuzzThumbnail feeds the thumbnailer hostile images (huge canvases, many
// frames, truncated data, mutations of each): it must never panic, and it
// answers with a thumbnail, "use the original", or a Matrix error.
func FuzzThumbnail(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint16(96), uint16(96), true, true)
		f.Add(s, uint16(320), uint16(240), false, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, w, h uint16, crop, animated bool) {
		req := ThumbnailRequest{Width: 1 + int(w%640), Height: 1 + int(h%640), Method: "scale", Animated: animated}
		if crop {
			req.Method = "crop"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := render(ctx, bytes.NewReader(data), int64(len(data)), req, animated, fuzzLimits, io.Discard)
		if err == nil || errors.Is(err, errUseOriginal) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if _, ok := mxerr.As(err); !ok {
			t.Fatalf("render: %v", err)
		}
	})
}

// TestThumbnailCostEstimates pins the estimates that keep decoders inside
// the memory limit.
func TestThumbnailCostEstimates(t *testing.T) {
	seeds := fuzzSeeds(t)
	baseline, prog := seeds[6], seeds[7]
	for _, c := range []struct {
		name string
		data []byte
		want int64
	}{
		// 64x48 4:2:0: 3072 luma and 2x768 chroma samples.
		{"baseline JPEG", baseline, 4608},
		// Plus an int32 coefficient per sample.
		{"progressive JPEG", prog, 5 * 4608},
		{"16-bit RGBA PNG", mediatest.PNG(100, 10, 16, 6, 10), 8 * 1000},
		{"grey PNG", mediatest.PNG(100, 10, 8, 0, 10), 1000},
		{"GIF", mediatest.GIF(100, 10, 5), 1000},
	} {
		cfg, format, err := image.DecodeConfig(bytes.NewReader(c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var jh jpegHeader
		if format == "jpeg" {
			jh = readJPEGHeader(bytes.NewReader(c.data))
		}
		if got := decodeCost(cfg, format, jh, false); got != c.want {
			t.Errorf("%s: cost %d, want %d", c.name, got, c.want)
		}
	}
	// A 4096x4096 target of a 6000x6000 image: no bilinear scratch buffer
	// (it would be 786 MB), only the result.
	if got := scaleCost(6000, 6000, 4096, 4096, "scale"); got != 4*4096*4096 {
		t.Errorf("scale cost of 6000x6000 to 4096x4096: %d", got)
	}
}

// TestThumbnailStopsAtDeadline: decoding reads through the request's
// context, so the time bound stops it.
func TestThumbnailStopsAtDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := render(ctx, bytes.NewReader(mediatest.GIF(64, 64, 3)), 1<<20, ThumbnailRequest{Width: 8, Height: 8, Method: "scale", Animated: true}, true, fuzzLimits, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("render after cancel: %v", err)
	}
}
