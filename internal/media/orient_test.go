package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"strings"
	"testing"
)

// withOrientation inserts an EXIF APP1 segment with the given orientation
// right after the SOI marker of a JPEG.
func withOrientation(jpg []byte, o uint16, bo binary.ByteOrder) []byte {
	var tiff bytes.Buffer
	if bo == binary.LittleEndian {
		tiff.WriteString("II")
	} else {
		tiff.WriteString("MM")
	}
	binary.Write(&tiff, bo, uint16(42))
	binary.Write(&tiff, bo, uint32(8))
	binary.Write(&tiff, bo, uint16(1))      // one entry
	binary.Write(&tiff, bo, uint16(0x0112)) // orientation
	binary.Write(&tiff, bo, uint16(3))      // SHORT
	binary.Write(&tiff, bo, uint32(1))
	binary.Write(&tiff, bo, o)
	binary.Write(&tiff, bo, uint16(0))
	binary.Write(&tiff, bo, uint32(0)) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xff, 0xe1})
	binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(jpg[2:])
	return out.Bytes()
}

func TestJPEGOrientation(t *testing.T) {
	var b bytes.Buffer
	jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil)
	if o := readJPEGHeader(bytes.NewReader(b.Bytes())).orientation; o != 1 {
		t.Errorf("no EXIF: %d", o)
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := uint16(1); o <= 8; o++ {
			if got := readJPEGHeader(bytes.NewReader(withOrientation(b.Bytes(), o, bo))).orientation; got != int(o) {
				t.Errorf("%v %d: got %d", bo, o, got)
			}
		}
	}
	if o := readJPEGHeader(strings.NewReader("\xff\xd8\xff\xe1\x00")).orientation; o != 1 {
		t.Errorf("truncated: %d", o)
	}
}

// TestThumbnailFollowsEXIFRotation thumbnails a landscape photo that EXIF
// says to turn clockwise: the thumbnail is portrait, left side on top.
func TestThumbnailFollowsEXIFRotation(t *testing.T) {
	s := newTestService(t, Config{})
	src := image.NewRGBA(image.Rect(0, 0, 1200, 600))
	for y := 0; y < 600; y++ {
		for x := 0; x < 1200; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 600 {
				c = color.RGBA{0, 0, 255, 255}
			}
			src.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	jpeg.Encode(&b, src, &jpeg.Options{Quality: 90})
	ctx := context.Background()
	mxc, err := s.Upload(ctx, Upload{UserID: "@a:media.test", ContentType: "image/jpeg", Length: -1, Body: bytes.NewReader(withOrientation(b.Bytes(), 6, binary.BigEndian))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Thumbnail(ctx, "media.test", strings.TrimPrefix(mxc, "mxc://media.test/"), ThumbnailRequest{Width: 320, Height: 240, Method: "scale"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data, _ := io.ReadAll(c.File)
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 640 {
		t.Fatalf("thumbnail %dx%d, want 320x640", b.Dx(), b.Dy())
	}
	top, bottom := img.At(160, 20), img.At(160, 620)
	if r, _, bl, _ := top.RGBA(); r < 0xc000 || bl > 0x4000 {
		t.Errorf("top is %v, want red", top)
	}
	if r, _, bl, _ := bottom.RGBA(); bl < 0xc000 || r > 0x4000 {
		t.Errorf("bottom is %v, want blue", bottom)
	}
}
