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
	"time"

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

// Limits on thumbnailing. Images are small on disk and large in memory (a
// 100 KB PNG can declare 36 megapixels of 16-bit colour), so what decoding
// will cost is worked out from the headers before any pixel is decoded.
const (
	// MaxThumbnailPixels bounds the canvas of an image to thumbnail.
	MaxThumbnailPixels = 40_000_000
	// MaxThumbnailBytes bounds the memory one thumbnail may take: the
	// decoded image in the decoder's own layout, the scaled copies and the
	// output, as estimated by decodeCost and scaleCost.
	MaxThumbnailBytes = 256 << 20
	// MaxAnimatedPixels bounds the work of an animated thumbnail: every
	// frame is composed onto the canvas, which is then scaled, so the cost
	// is frames x (canvas + thumbnail) pixels. Beyond it, or beyond
	// MaxAnimatedFrames, the thumbnail is a still one.
	MaxAnimatedPixels = 100_000_000
	MaxAnimatedFrames = 2000
	MaxThumbnailDim   = 4096 // largest size a client may ask for
	// ThumbnailTimeout bounds the time one thumbnail may take; the limits
	// above keep real images well inside it.
	ThumbnailTimeout = 15 * time.Second
	// ThumbnailQueueWait is how long a request waits for a free
	// thumbnailer before it is told to come back later (429).
	ThumbnailQueueWait   = 10 * time.Second
	maxCachedThumbnailsN = 16 // per content, beyond the standard sizes
)

// thumbLimits are the limits above, in one value so that tests and fuzzing
// can use smaller ones.
type thumbLimits struct {
	pixels, bytes, animPixels int64
	frames                    int
}

func defaultThumbLimits() thumbLimits {
	return thumbLimits{pixels: MaxThumbnailPixels, bytes: MaxThumbnailBytes, animPixels: MaxAnimatedPixels, frames: MaxAnimatedFrames}
}

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
	var call *thumbCall
	for {
		s.thumbMu.Lock()
		c, running := s.thumbGen[cachePath]
		if !running {
			c = &thumbCall{done: make(chan struct{})}
			s.thumbGen[cachePath] = c
		}
		s.thumbMu.Unlock()
		if !running {
			c.err = s.generate(ctx, s.contentPath(m.SHA256), cachePath, req, animated)
			s.thumbMu.Lock()
			delete(s.thumbGen, cachePath)
			s.thumbMu.Unlock()
			close(c.done)
		} else {
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if errors.Is(c.err, context.Canceled) && ctx.Err() == nil {
				continue // the request that was generating it went away
			}
		}
		call = c
		break
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
// At most cap(thumbSem) thumbnails are made at once, each bounded in memory
// by the limits and in time by ThumbnailTimeout.
func (s *Service) generate(ctx context.Context, src, dst string, req ThumbnailRequest, animated bool) error {
	if err := s.acquireThumbnailer(ctx); err != nil {
		return err
	}
	defer func() { <-s.thumbSem }()
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("thumbnail source: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("thumbnail source: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.cfg.Dir, "tmp"), "thumb-*")
	if err != nil {
		return fmt.Errorf("thumbnail temp: %w", err)
	}
	defer os.Remove(tmp.Name())
	rctx, cancel := context.WithTimeout(ctx, ThumbnailTimeout)
	err = render(rctx, f, fi.Size(), req, animated, s.thumbLimits, tmp)
	cancel()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		s.log.Warn("thumbnail took too long", "source", filepath.Base(src), "limit", ThumbnailTimeout)
		return tooLargeToThumbnail()
	}
	if err != nil {
		if _, ok := mxerr.As(err); ok || errors.Is(err, errUseOriginal) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("thumbnail: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// acquireThumbnailer takes a slot of thumbSem. Clients ask for many
// thumbnails at once and cannot retry an <img>, so a request waits for a
// slot; only after ThumbnailQueueWait is it told to come back.
func (s *Service) acquireThumbnailer(ctx context.Context) error {
	select {
	case s.thumbSem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(ThumbnailQueueWait)
	defer t.Stop()
	select {
	case s.thumbSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		e := mxerr.New("M_LIMIT_EXCEEDED", "Too many thumbnails are being generated; try again shortly")
		e.Extra = map[string]any{"retry_after_ms": 1000}
		return e
	}
}

// tooLargeToThumbnail is the spec's answer for local content the server
// will not thumbnail.
func tooLargeToThumbnail() error {
	return mxerr.New("M_TOO_LARGE", "Content is too large to thumbnail")
}

// cannotDecode is the answer for content that is not a valid image of its
// type (the spec's 400: the server cannot thumbnail the content), unless
// decoding was stopped by ctx.
func cannotDecode(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mxerr.New("M_UNKNOWN", "Cannot decode image").WithStatus(400)
}

// ctxReaderAt fails reads once ctx is done, so that a decoder stops at its
// next read when the time bound is reached.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// render writes the thumbnail of the image in src (size bytes) to w, or
// returns errUseOriginal when the image is not larger than asked for.
// Nothing is decoded before its cost is known to be within lim.
func render(ctx context.Context, src io.ReaderAt, size int64, req ThumbnailRequest, animated bool, lim thumbLimits, w io.Writer) error {
	src = ctxReaderAt{ctx, src}
	read := func() io.Reader { return bufio.NewReader(io.NewSectionReader(src, 0, size)) }
	cfg, format, err := image.DecodeConfig(read())
	if err != nil {
		return cannotDecode(ctx)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cannotDecode(ctx)
	}
	if int64(cfg.Width)*int64(cfg.Height) > lim.pixels {
		return tooLargeToThumbnail()
	}
	var jh jpegHeader
	orientation := 1
	if format == "jpeg" {
		jh = readJPEGHeader(read())
		orientation = jh.orientation
	}
	// Sizes are those of the image as displayed, after EXIF rotation.
	dispW, dispH := cfg.Width, cfg.Height
	if swapsAxes(orientation) {
		dispW, dispH = dispH, dispW
	}
	animated = animated && format == "gif"
	tw, th, ok := targetSize(dispW, dispH, req)
	if !ok && !(format == "gif" && !animated) {
		return errUseOriginal
	}
	if !ok {
		// A GIF asked for without animation: re-encode its first frame at
		// full size, since the original may be animated.
		tw, th = cfg.Width, cfg.Height
	}
	if animated {
		err := animatedThumbnail(ctx, src, size, w, cfg, tw, th, req.Method, lim)
		if !errors.Is(err, errAnimationTooCostly) {
			return err
		}
		// The spec asks for an animated thumbnail "if possible": this one
		// is not, and a still one is the next best answer.
	}
	// Scale in the stored orientation, then turn the small result.
	rw, rh := tw, th
	if swapsAxes(orientation) {
		rw, rh = th, tw
	}
	interlaced := false
	if format == "png" {
		var b [1]byte
		_, err := src.ReadAt(b[:], 28) // IHDR's interlace method
		interlaced = err == nil && b[0] != 0
	}
	cost := decodeCost(cfg, format, jh, interlaced) + scaleCost(cfg.Width, cfg.Height, rw, rh, req.Method) + 8*int64(rw)*int64(rh)
	if cost > lim.bytes {
		return tooLargeToThumbnail()
	}
	img, _, err := image.Decode(read())
	if err != nil {
		return cannotDecode(ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	out := applyOrientation(resize(img, rw, rh, req.Method), orientation)
	if format == "jpeg" {
		return jpeg.Encode(w, out, &jpeg.Options{Quality: 85})
	}
	return (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(w, out)
}

// decodeCost estimates the bytes the standard decoders allocate for an
// image, from its header.
func decodeCost(cfg image.Config, format string, jh jpegHeader, interlaced bool) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch format {
	case "gif":
		return px // one paletted frame
	case "jpeg":
		if len(jh.sampling) == 0 { // unknown: assume the worst
			return 20 * px
		}
		hmax, vmax := 1, 1
		for _, hv := range jh.sampling {
			hmax, vmax = max(hmax, hv[0]), max(vmax, hv[1])
		}
		var samples int64
		for _, hv := range jh.sampling {
			samples += px * int64(hv[0]*hv[1]) / int64(hmax*vmax)
		}
		cost := samples
		if len(jh.sampling) == 4 {
			cost += 4 * px // CMYK and YCCK are converted into a new image
		}
		if jh.progressive {
			cost += 4 * samples // an int32 coefficient per sample
		}
		return cost
	case "webp":
		switch cfg.ColorModel {
		case color.NRGBAModel:
			return 8 * px // lossless: the pixels and a transform's copy
		case color.NYCbCrAModel:
			// Lossy with alpha: the alpha plane may itself be a lossless
			// image, decoded at 4 bytes a pixel with a transform's copy.
			return 21 * px / 2
		}
		return 3 * px / 2 // lossy: 4:2:0 YCbCr
	}
	var bpp int64 = 4
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		bpp = 1
	case color.Gray16Model, color.Alpha16Model:
		bpp = 2
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	default:
		if _, ok := cfg.ColorModel.(color.Palette); ok {
			bpp = 1
		}
	}
	if interlaced {
		bpp *= 2 // PNG decodes the passes apart, then merges them
	}
	return bpp * px
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
	finalScaler(tw, src.Dy()).Scale(dst, dst.Bounds(), cur, src, draw.Src, nil)
	return dst
}

// maxScratchBytes bounds the scratch buffer of the last scaling step.
const maxScratchBytes = 32 << 20

// finalScaler picks the last step's filter. After halving, the source is
// less than twice the target on one side, but a large target (a client may
// ask for 4096x4096) still gives BiLinear a scratch buffer of gigabytes:
// beyond maxScratchBytes ApproxBiLinear, which needs none, does the step.
func finalScaler(tw, srcH int) draw.Scaler {
	if bilinearScratch(tw, srcH) > maxScratchBytes {
		return draw.ApproxBiLinear
	}
	return draw.BiLinear
}

// bilinearScratch is the size of x/image/draw's kernel scratch buffer: a
// [4]float64 per target column and source row.
func bilinearScratch(tw, srcH int) int64 { return 32 * int64(tw) * int64(srcH) }

// scaleCost is the memory resize takes for a w x h source: the halved
// copies (the previous one is alive while the next is made), the result
// and the last step's scratch buffer.
func scaleCost(w, h, tw, th int, method string) int64 {
	src := image.Rect(0, 0, w, h)
	if method == "crop" {
		src = cropRect(src, tw, th)
	}
	sw, sh := src.Dx(), src.Dy()
	var peak, prev int64
	for sw/2 >= tw && sh/2 >= th {
		sw, sh = sw/2, sh/2
		cur := 4 * int64(sw) * int64(sh)
		peak = max(peak, prev+cur)
		prev = cur
	}
	last := prev + 4*int64(tw)*int64(th)
	if s := bilinearScratch(tw, sh); s <= maxScratchBytes {
		last += s
	}
	return max(peak, last)
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

// errAnimationTooCostly says an animated thumbnail is beyond the limits;
// a still one may still be made.
var errAnimationTooCostly = errors.New("animation too costly to thumbnail")

// animatedThumbnail scales every frame of a GIF. The frames are counted
// first, without decoding any, and the work checked against lim; then they
// are decoded one at a time. Frames are composed onto a full canvas (GIF
// frames may cover only part of it), scaled and mapped back onto their
// palette.
func animatedThumbnail(ctx context.Context, src io.ReaderAt, size int64, w io.Writer, cfg image.Config, tw, th int, method string, lim thumbLimits) error {
	g, err := scanGIF(io.NewSectionReader(src, 0, size), lim.frames)
	if errors.Is(err, errTooManyFrames) {
		return errAnimationTooCostly
	}
	if err != nil {
		return cannotDecode(ctx)
	}
	canvasPx, outPx, frames := int64(cfg.Width)*int64(cfg.Height), int64(tw)*int64(th), int64(len(g.frames))
	// The canvas, a saved copy for "restore to previous", one decoded
	// frame, scaling, and every scaled frame until the GIF is encoded.
	mem := 9*canvasPx + scaleCost(cfg.Width, cfg.Height, tw, th, method) + frames*outPx + 4*outPx
	if frames*(canvasPx+outPx) > lim.animPixels || mem > lim.bytes {
		return errAnimationTooCostly
	}
	bounds := image.Rect(0, 0, cfg.Width, cfg.Height)
	canvas := image.NewRGBA(bounds)
	var saved *image.RGBA
	out := &gif.GIF{LoopCount: g.loopCount, Config: image.Config{Width: tw, Height: th}}
	for i, f := range g.frames {
		if err := ctx.Err(); err != nil {
			return err
		}
		frame, err := g.decodeFrame(src, i)
		if err != nil {
			return cannotDecode(ctx)
		}
		if f.disposal == gif.DisposalPrevious {
			if saved == nil {
				saved = image.NewRGBA(bounds)
			}
			copy(saved.Pix, canvas.Pix)
		}
		draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Over)
		out.Image = append(out.Image, toPaletted(resize(canvas, tw, th, method), frame.Palette))
		out.Delay = append(out.Delay, f.delay)
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		switch f.disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, frame.Bounds(), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas, saved = saved, canvas
		}
	}
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
