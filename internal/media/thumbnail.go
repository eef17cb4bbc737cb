package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder

	"github.com/axon-matrix/axon/internal/mxerr"
)

// ThumbnailRequest is what a client asked for.
type ThumbnailRequest struct {
	Width, Height int
	Method        string // "scale" (default) or "crop"
	Animated      bool
}

// Limits on thumbnailing. Decoding allocates width*height*4 bytes, so the
// pixel count is checked from the header before any decoding.
const (
	MaxThumbnailPixels   = 40_000_000
	MaxAnimatedPixels    = 100_000_000 // summed over frames
	MaxThumbnailDim      = 4096        // largest size a client may ask for
	maxCachedThumbnailsN = 16          // per content, beyond the standard sizes
)

// StandardSizes are the sizes the spec tells servers to produce.
var StandardSizes = []ThumbnailRequest{
	{Width: 32, Height: 32, Method: "crop"},
	{Width: 96, Height: 96, Method: "crop"},
	{Width: 320, Height: 240, Method: "scale"},
	{Width: 640, Height: 480, Method: "scale"},
	{Width: 800, Height: 600, Method: "scale"},
}

func thumbnailable(ct string) bool {
	switch ct {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return true
	}
	return false
}

type thumbCall struct {
	done chan struct{}
	err  error
}

// Thumbnail returns a thumbnail of local media, generating and caching it
// on first use. Content smaller than the request is returned as it is.
func (s *Service) Thumbnail(ctx context.Context, serverName, mediaID string, req ThumbnailRequest, opt Options) (*Content, error) {
	if err := checkIDs(serverName, mediaID); err != nil {
		return nil, err
	}
	if req.Method == "" {
		req.Method = "scale"
	}
	if req.Method != "scale" && req.Method != "crop" {
		return nil, mxerr.InvalidParam("method must be scale or crop")
	}
	if req.Width < 1 || req.Height < 1 || req.Width > MaxThumbnailDim || req.Height > MaxThumbnailDim {
		return nil, mxerr.InvalidParam("width and height must be between 1 and %d", MaxThumbnailDim)
	}
	if serverName != s.cfg.ServerName {
		// Remote thumbnails come with the federation work.
		return nil, mxerr.NotFound("Media not found")
	}
	m, err := s.lookup(ctx, mediaID, opt)
	if err != nil {
		return nil, err
	}
	if !thumbnailable(m.ContentType) {
		return nil, mxerr.New("M_UNKNOWN", "Cannot generate thumbnails for %s", m.ContentType).WithStatus(400)
	}
	animated := req.Animated && m.ContentType == "image/gif"
	name := fmt.Sprintf("%dx%d-%s", req.Width, req.Height, req.Method)
	if animated {
		name += "-animated"
	}
	cachePath := filepath.Join(s.thumbDir(m.SHA256), name)
	if c, err := s.openThumb(cachePath); err == nil {
		return c, nil
	}
	if !s.cacheable(m.SHA256, req) {
		cachePath = filepath.Join(s.cfg.Dir, "tmp", "thumb-once-"+newMediaID())
		defer os.Remove(cachePath) // the open file stays readable
	}
	// One generation per cache path at a time; concurrent requests for the
	// same thumbnail wait for it.
	s.thumbMu.Lock()
	call, running := s.thumbGen[cachePath]
	if !running {
		call = &thumbCall{done: make(chan struct{})}
		s.thumbGen[cachePath] = call
	}
	s.thumbMu.Unlock()
	if !running {
		call.err = s.generate(ctx, s.contentPath(m.SHA256), m.ContentType, cachePath, req, animated)
		s.thumbMu.Lock()
		delete(s.thumbGen, cachePath)
		s.thumbMu.Unlock()
		close(call.done)
	} else {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if errors.Is(call.err, errUseOriginal) {
		return s.openContent(m)
	}
	if call.err != nil {
		return nil, call.err
	}
	return s.openThumb(cachePath)
}

var errUseOriginal = errors.New("content smaller than the thumbnail")

// openThumb opens a cached thumbnail; its type is in its first bytes.
func (s *Service) openThumb(path string) (*Content, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	head := make([]byte, 8)
	io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	ct := "image/png"
	switch {
	case head[0] == 0xff && head[1] == 0xd8:
		ct = "image/jpeg"
	case string(head[:3]) == "GIF":
		ct = "image/gif"
	}
	c := &Content{File: f, Size: fi.Size(), ContentType: ct, UploadName: "thumbnail"}
	c.Created = fi.ModTime()
	return c, nil
}

// generate writes the thumbnail of src to dst, or returns errUseOriginal.
func (s *Service) generate(ctx context.Context, src, ctype, dst string, req ThumbnailRequest, animated bool) error {
	select {
	case s.thumbSem <- struct{}{}:
		defer func() { <-s.thumbSem }()
	case <-ctx.Done():
		return ctx.Err()
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("thumbnail source: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return mxerr.New("M_UNKNOWN", "Cannot decode image").WithStatus(400)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxThumbnailPixels {
		return mxerr.New("M_TOO_LARGE", "Image too large to thumbnail")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	orientation := 1
	if ctype == "image/jpeg" {
		orientation = jpegOrientation(bufio.NewReader(f))
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	// Sizes are those of the image as displayed, after EXIF rotation.
	dispW, dispH := cfg.Width, cfg.Height
	if swapsAxes(orientation) {
		dispW, dispH = dispH, dispW
	}
	tw, th, ok := targetSize(dispW, dispH, req)
	if !ok && !(ctype == "image/gif" && !animated) {
		return errUseOriginal
	}
	if !ok {
		// A GIF asked for without animation: re-encode its first frame at
		// full size, since the original may be animated.
		tw, th = cfg.Width, cfg.Height
	}
	tmp, err := os.CreateTemp(filepath.Join(s.cfg.Dir, "tmp"), "thumb-*")
	if err != nil {
		return fmt.Errorf("thumbnail temp: %w", err)
	}
	defer os.Remove(tmp.Name())
	if animated {
		err = animatedThumbnail(f, tmp, cfg, tw, th, req.Method)
	} else {
		var img image.Image
		if img, _, err = image.Decode(f); err != nil {
			tmp.Close()
			return mxerr.New("M_UNKNOWN", "Cannot decode image").WithStatus(400)
		}
		// Scale in the stored orientation, then turn the small result.
		rw, rh := tw, th
		if swapsAxes(orientation) {
			rw, rh = th, tw
		}
		out := applyOrientation(resize(img, rw, rh, req.Method), orientation)
		if ctype == "image/jpeg" {
			err = jpeg.Encode(tmp, out, &jpeg.Options{Quality: 85})
		} else {
			err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(tmp, out)
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if _, ok := mxerr.As(err); ok {
			return err
		}
		return fmt.Errorf("thumbnail: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// targetSize computes the thumbnail's size; ok is false when the content is
// not larger than the request, so the original should be served (servers
// must never upscale).
//
// scale keeps the aspect ratio and covers the requested box: the spec says a
// thumbnail must not be smaller than requested where the content allows.
// crop has the requested aspect ratio, at the requested size when the
// content is large enough, else as large as the content allows.
func targetSize(w, h int, req ThumbnailRequest) (tw, th int, ok bool) {
	if w <= req.Width && h <= req.Height {
		return w, h, false
	}
	if req.Method == "crop" {
		if w >= req.Width && h >= req.Height {
			return req.Width, req.Height, true
		}
		// Shrink the box to fit inside the content, keeping its aspect.
		f := min(float64(w)/float64(req.Width), float64(h)/float64(req.Height))
		return max(1, int(float64(req.Width)*f)), max(1, int(float64(req.Height)*f)), true
	}
	f := max(float64(req.Width)/float64(w), float64(req.Height)/float64(h))
	if f >= 1 {
		return w, h, false
	}
	return max(1, int(float64(w)*f+0.5)), max(1, int(float64(h)*f+0.5)), true
}

// resize scales img to tw x th; for crop it first cuts the centre of the
// image to the target's aspect ratio.
func resize(img image.Image, tw, th int, method string) *image.RGBA {
	src := img.Bounds()
	if method == "crop" {
		src = cropRect(src, tw, th)
	}
	// Halve first while the image is at least twice the target: an exact
	// 2:1 ApproxBiLinear step averages 2x2 blocks (a box filter, so no
	// aliasing) and needs no scratch memory. A single BiLinear pass from a
	// large photo would allocate a float64 scratch buffer of target width x
	// source height x 32 bytes (100 MB for 6000x4000 to 800x600).
	cur := img
	for src.Dx()/2 >= tw && src.Dy()/2 >= th {
		half := image.NewRGBA(image.Rect(0, 0, src.Dx()/2, src.Dy()/2))
		draw.ApproxBiLinear.Scale(half, half.Bounds(), cur, src, draw.Src, nil)
		cur, src = half, half.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.BiLinear.Scale(dst, dst.Bounds(), cur, src, draw.Src, nil)
	return dst
}

func cropRect(b image.Rectangle, tw, th int) image.Rectangle {
	w, h := b.Dx(), b.Dy()
	// Compare w/h with tw/th without floating point.
	if w*th > h*tw { // too wide: cut the sides
		nw := h * tw / th
		x := b.Min.X + (w-nw)/2
		return image.Rect(x, b.Min.Y, x+nw, b.Max.Y)
	}
	nh := w * th / tw
	y := b.Min.Y + (h-nh)/2
	return image.Rect(b.Min.X, y, b.Max.X, y+nh)
}

// animatedThumbnail scales every frame of a GIF. Frames are composed onto a
// full canvas first (GIF frames may cover only part of it), then scaled and
// mapped back onto the GIF's palette.
func animatedThumbnail(r io.Reader, w io.Writer, cfg image.Config, tw, th int, method string) error {
	g, err := gif.DecodeAll(r)
	if err != nil {
		return mxerr.New("M_UNKNOWN", "Cannot decode image").WithStatus(400)
	}
	if int64(len(g.Image))*int64(cfg.Width)*int64(cfg.Height) > MaxAnimatedPixels {
		return mxerr.New("M_TOO_LARGE", "Animation too large to thumbnail")
	}
	bounds := image.Rect(0, 0, cfg.Width, cfg.Height)
	canvas := image.NewRGBA(bounds)
	out := &gif.GIF{Delay: g.Delay, LoopCount: g.LoopCount, Config: image.Config{Width: tw, Height: th}}
	for i, frame := range g.Image {
		var saved *image.RGBA
		disposal := byte(0)
		if i < len(g.Disposal) {
			disposal = g.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			saved = image.NewRGBA(bounds)
			copy(saved.Pix, canvas.Pix)
		}
		draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Over)
		scaled := resize(canvas, tw, th, method)
		pal := frame.Palette
		if p, ok := g.Config.ColorModel.(color.Palette); ok && len(p) > 0 {
			pal = p
		}
		out.Image = append(out.Image, toPaletted(scaled, pal))
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		switch disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, frame.Bounds(), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas = saved
		}
	}
	out.Config.ColorModel = nil
	return gif.EncodeAll(w, out)
}

// toPaletted maps img onto pal, remembering each colour's index: palette
// lookups are a linear search and thumbnails repeat colours heavily.
func toPaletted(img *image.RGBA, pal color.Palette) *image.Paletted {
	out := image.NewPaletted(img.Bounds(), pal)
	cache := map[uint32]uint8{}
	for i := 0; i+3 < len(img.Pix); i += 4 {
		p := img.Pix[i : i+4 : i+4]
		key := uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])
		idx, ok := cache[key]
		if !ok {
			idx = uint8(pal.Index(color.RGBA{p[0], p[1], p[2], p[3]}))
			cache[key] = idx
		}
		out.Pix[i/4] = idx
	}
	return out
}

// isStandard reports whether req is one of StandardSizes.
func isStandard(req ThumbnailRequest) bool {
	for _, s := range StandardSizes {
		if s.Width == req.Width && s.Height == req.Height && s.Method == req.Method {
			return true
		}
	}
	return false
}

// cacheable says whether a thumbnail should be kept on disk: the standard
// sizes always, others only up to a few per content, so that requests for
// many odd sizes cannot fill the disk.
func (s *Service) cacheable(sha string, req ThumbnailRequest) bool {
	if isStandard(req) {
		return true
	}
	ents, _ := os.ReadDir(s.thumbDir(sha))
	return len(ents) < len(StandardSizes)+maxCachedThumbnailsN
}
