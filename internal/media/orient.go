package media

import (
	"encoding/binary"
	"image"
	"io"
)

// jpegHeader is what the thumbnailer needs from a JPEG's markers before
// decoding it.
type jpegHeader struct {
	// orientation is the EXIF orientation (1-8), 1 when there is none.
	// Phones store photos as the sensor saw them and record the rotation
	// here; thumbnails are re-encoded without EXIF, so the rotation must be
	// applied to them.
	orientation int
	// progressive JPEGs are decoded with every DCT coefficient in memory
	// (256 bytes per 8x8 block and component), several times the size of
	// the decoded image.
	progressive bool
	// sampling holds each component's horizontal and vertical sampling
	// factors, which say how many samples the decoded image holds.
	sampling [][2]int
}

// readJPEGHeader reads the markers before the first scan.
func readJPEGHeader(r io.Reader) jpegHeader {
	h := jpegHeader{orientation: 1}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil || hdr[0] != 0xff || hdr[1] != 0xd8 {
		return h
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != 0xff {
			return h
		}
		marker, n := hdr[1], int(binary.BigEndian.Uint16(hdr[2:]))-2
		if marker == 0xda || marker == 0xd9 || n < 0 { // image data starts
			return h
		}
		seg := make([]byte, n)
		if _, err := io.ReadFull(r, seg); err != nil {
			return h
		}
		switch {
		case marker == 0xe1 && len(seg) > 14 && string(seg[:6]) == "Exif\x00\x00":
			h.orientation = tiffOrientation(seg[6:])
		case marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc && len(seg) >= 6:
			// A frame header: precision, height, width, components.
			h.progressive = marker == 0xc2 || marker == 0xc6 || marker == 0xca || marker == 0xce
			h.sampling = h.sampling[:0]
			for c := 0; c < int(seg[5]) && 6+3*c+2 < len(seg); c++ {
				hv := seg[6+3*c+1]
				h.sampling = append(h.sampling, [2]int{max(1, int(hv>>4)), max(1, int(hv&15))})
			}
		}
	}
}

func tiffOrientation(t []byte) int {
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int(bo.Uint32(t[4:8]))
	if off < 8 || off+2 > len(t) {
		return 1
	}
	count := int(bo.Uint16(t[off:]))
	for i := 0; i < count; i++ {
		e := off + 2 + 12*i
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 {
			if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// swapsAxes reports whether an orientation turns the image by 90 degrees.
func swapsAxes(o int) bool { return o >= 5 && o <= 8 }

// applyOrientation turns a decoded image the way EXIF orientation o says it
// should be displayed.
func applyOrientation(img *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return img
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	dw, dh := w, h
	if swapsAxes(o) {
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch o {
			case 2: // mirrored
				sx, sy = w-1-x, y
			case 3: // upside down
				sx, sy = w-1-x, h-1-y
			case 4: // mirrored upside down
				sx, sy = x, h-1-y
			case 5: // transposed
				sx, sy = y, x
			case 6: // turn 90 degrees clockwise
				sx, sy = y, h-1-x
			case 7: // transversed
				sx, sy = w-1-y, h-1-x
			case 8: // turn 90 degrees anticlockwise
				sx, sy = w-1-y, x
			}
			si, di := img.PixOffset(img.Rect.Min.X+sx, img.Rect.Min.Y+sy), out.PixOffset(x, y)
			copy(out.Pix[di:di+4], img.Pix[si:si+4])
		}
	}
	return out
}
