package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// tempFile is a received upload.
type tempFile struct {
	path   string
	size   int64
	sha256 string
	head   []byte // first bytes, for content sniffing
}

// sniffLen is how much http.DetectContentType looks at.
const sniffLen = 512

// writeTemp copies body into a new file under tmp/ while hashing it, with a
// fixed-size buffer: memory use does not depend on the size of the upload.
// More than limit bytes is M_TOO_LARGE.
func (s *Service) writeTemp(ctx context.Context, body io.Reader, limit int64) (*tempFile, error) {
	f, err := os.CreateTemp(filepath.Join(s.cfg.Dir, "tmp"), "upload-*")
	if err != nil {
		return nil, fmt.Errorf("media temp file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	hw := &headWriter{}
	lr := &io.LimitedReader{R: ctxReader{ctx, body}, N: limit + 1}
	n, err := io.CopyBuffer(io.MultiWriter(f, h, hw), lr, make([]byte, 64<<10))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge(limit)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, io.ErrUnexpectedEOF), isNetError(err):
			return nil, mxerr.New("M_UNKNOWN", "Upload interrupted").WithStatus(http.StatusBadRequest)
		}
		return nil, fmt.Errorf("media write: %w", err)
	}
	if n > limit {
		return nil, tooLarge(limit)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("media write: %w", err)
	}
	ok = true
	return &tempFile{path: f.Name(), size: n, sha256: hex.EncodeToString(h.Sum(nil)), head: hw.b}, nil
}

// isNetError recognises a client that went away mid-upload; its body read
// fails with an error from the connection rather than a clean EOF.
func isNetError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "http: invalid")
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// headWriter keeps the first sniffLen bytes written to it.
type headWriter struct{ b []byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := sniffLen - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// checkType compares the client's claimed type with what the bytes look
// like. A claim of an image, audio or video type that is served inline
// whose bytes are markup, text or a document is refused: it is how HTML or
// SVG gets smuggled past clients that trust the type. An image claimed as the wrong image format is corrected.
// Other claims are kept: the spec lets the server trust them as long as
// Content-Disposition is derived from the stored type.
func checkType(claimed string, head []byte) (string, error) {
	sniffed, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	family, _, _ := strings.Cut(claimed, "/")
	if (family == "image" || claimed == "application/octet-stream") && thumbnailable(sniffed) {
		// Bytes that are plainly JPEG, PNG, GIF or WebP get that type, so
		// that image/jpg, a PNG sent as image/jpeg or an untyped upload is
		// shown inline and thumbnailed.
		return sniffed, nil
	}
	if family != "image" && family != "audio" && family != "video" || !inlineTypes[claimed] {
		// Served as an attachment whatever the bytes are (SVG, TIFF, MKV...).
		return claimed, nil
	}
	sf, _, _ := strings.Cut(sniffed, "/")
	switch {
	case sniffed == "application/octet-stream", sniffed == "application/ogg":
		// Not recognised (AVIF, HEIC, many audio formats): trust the claim.
		return claimed, nil
	case sf == "image" && family == "image":
		if thumbnailable(claimed) || claimed == "image/bmp" {
			return sniffed, nil
		}
		return claimed, nil
	case sf == "image" || sf == "audio" || sf == "video":
		return claimed, nil
	}
	return "", mxerr.InvalidParam("Content-Type %s does not match the uploaded bytes (%s)", claimed, sniffed)
}

// inlineTypes may be served with Content-Disposition: inline (the spec's
// list in "Serving inline content"); everything else is an attachment.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true, "application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true, "image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true,
	"audio/wave": true, "audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// Disposition returns the Content-Disposition header for serving content of
// the given type under the given file name.
func Disposition(contentType, fileName string) string {
	base, _, _ := mime.ParseMediaType(contentType)
	kind := "attachment"
	if inlineTypes[base] {
		kind = "inline"
	}
	fileName = cleanFileName(fileName)
	if fileName == "" {
		return kind
	}
	if d := mime.FormatMediaType(kind, map[string]string{"filename": fileName}); d != "" {
		return d
	}
	return kind
}
