package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/gif"
	"io"
)

// GIFs are walked block by block before any frame is decoded: image/gif's
// DecodeAll decodes every frame before a caller can count them, so a 2 MB
// file of 150 frames of 4000x4000 costs 2.4 GB. The walk reads the file
// once, decodes no image data and keeps a few numbers per frame; frames are
// then decoded one at a time (decodeFrame), each as a one-frame GIF.

// gifFrame is where one frame lies in the file.
type gifFrame struct {
	gce        []byte // its graphic control extension, nil if none
	start, end int64  // the image descriptor up to the end of the image data
	bounds     image.Rectangle
	delay      int  // hundredths of a second
	disposal   byte // as in image/gif: DisposalNone, ...
}

// gifScan is the structure of a GIF file.
type gifScan struct {
	head          []byte // header, logical screen descriptor, global colour table
	width, height int
	loopCount     int // as image/gif's GIF.LoopCount: -1 plays once, 0 loops forever
	frames        []gifFrame
}

var (
	errNotGIF        = errors.New("gif: malformed")
	errTooManyFrames = errors.New("gif: too many frames")
	errGIFNoFrames   = errors.New("gif: no complete frame")
)

const netscapeExtension = "NETSCAPE2.0"

// offsetReader counts the bytes read through it.
type offsetReader struct {
	r   *bufio.Reader
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

func (o *offsetReader) byte() (byte, error) {
	b, err := o.r.ReadByte()
	if err == nil {
		o.off++
	}
	return b, err
}

func (o *offsetReader) discard(n int) error {
	m, err := o.r.Discard(n)
	o.off += int64(m)
	return err
}

// skipSubBlocks skips data sub-blocks up to and including the terminator.
func (o *offsetReader) skipSubBlocks() error {
	for {
		n, err := o.byte()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if err := o.discard(int(n)); err != nil {
			return err
		}
	}
}

// scanGIF walks the blocks of a GIF and lists its frames, stopping with
// errTooManyFrames after maxFrames. A file cut short after a complete frame
// keeps the frames before the cut, as browsers show them.
func scanGIF(r io.Reader, maxFrames int) (*gifScan, error) {
	o := &offsetReader{r: bufio.NewReaderSize(r, 32<<10)}
	head := make([]byte, 13)
	if _, err := io.ReadFull(o, head); err != nil || (string(head[:6]) != "GIF87a" && string(head[:6]) != "GIF89a") {
		return nil, errNotGIF
	}
	g := &gifScan{
		width:     int(binary.LittleEndian.Uint16(head[6:])),
		height:    int(binary.LittleEndian.Uint16(head[8:])),
		loopCount: -1,
	}
	if head[10]&0x80 != 0 {
		gct := make([]byte, 3<<(head[10]&7+1))
		if _, err := io.ReadFull(o, gct); err != nil {
			return nil, errNotGIF
		}
		head = append(head, gct...)
	}
	g.head = head
	var gce []byte
	for {
		b, err := o.byte()
		if err != nil || b == 0x3b { // end of file or trailer
			break
		}
		switch b {
		case 0x21: // extension
			label, err := o.byte()
			if err != nil {
				return g.complete()
			}
			switch label {
			case 0xf9: // graphic control: size 4, then the terminator
				ext := make([]byte, 8)
				ext[0], ext[1] = 0x21, 0xf9
				if _, err := io.ReadFull(o, ext[2:]); err != nil || ext[2] != 4 || ext[7] != 0 {
					return g.complete()
				}
				gce = ext
			case 0xff: // application: the NETSCAPE loop count
				n, err := o.byte()
				if err != nil {
					return g.complete()
				}
				id := make([]byte, n)
				if _, err := io.ReadFull(o, id); err != nil {
					return g.complete()
				}
				// Sub-blocks; the NETSCAPE one numbered 1 holds the loop count.
				for {
					n, err := o.byte()
					if err != nil {
						return g.complete()
					}
					if n == 0 {
						break
					}
					sub := make([]byte, n)
					if _, err := io.ReadFull(o, sub); err != nil {
						return g.complete()
					}
					if string(id) == netscapeExtension && n >= 3 && sub[0] == 1 {
						g.loopCount = int(binary.LittleEndian.Uint16(sub[1:]))
					}
				}
			default: // comments, plain text
				if err := o.skipSubBlocks(); err != nil {
					return g.complete()
				}
			}
		case 0x2c: // image descriptor
			if len(g.frames) >= maxFrames {
				return nil, errTooManyFrames
			}
			f := gifFrame{start: o.off - 1, gce: gce}
			desc := make([]byte, 9)
			if _, err := io.ReadFull(o, desc); err != nil {
				return g.complete()
			}
			x, y := int(binary.LittleEndian.Uint16(desc[0:])), int(binary.LittleEndian.Uint16(desc[2:]))
			w, h := int(binary.LittleEndian.Uint16(desc[4:])), int(binary.LittleEndian.Uint16(desc[6:]))
			f.bounds = image.Rect(x, y, x+w, y+h)
			if desc[8]&0x80 != 0 { // local colour table
				if err := o.discard(3 << (desc[8]&7 + 1)); err != nil {
					return g.complete()
				}
			}
			if _, err := o.byte(); err != nil { // LZW minimum code size
				return g.complete()
			}
			if err := o.skipSubBlocks(); err != nil {
				return g.complete()
			}
			f.end = o.off
			if gce != nil {
				f.disposal = (gce[3] >> 2) & 7
				f.delay = int(binary.LittleEndian.Uint16(gce[4:]))
			}
			g.frames = append(g.frames, f)
			gce = nil
		default:
			// image/gif refuses unknown blocks; so do we, after the frames
			// that came before them.
			return g.complete()
		}
	}
	return g.complete()
}

func (g *gifScan) complete() (*gifScan, error) {
	if len(g.frames) == 0 {
		return nil, errGIFNoFrames
	}
	return g, nil
}

// decodeFrame decodes frame i alone, as a one-frame GIF made of the file's
// head, the frame's blocks and a trailer: only that frame is in memory.
func (g *gifScan) decodeFrame(src io.ReaderAt, i int) (*image.Paletted, error) {
	f := g.frames[i]
	r := io.MultiReader(bytes.NewReader(g.head), bytes.NewReader(f.gce),
		io.NewSectionReader(src, f.start, f.end-f.start), bytes.NewReader([]byte{0x3b}))
	img, err := gif.Decode(r)
	if err != nil {
		return nil, err
	}
	p, ok := img.(*image.Paletted)
	if !ok {
		return nil, errNotGIF
	}
	return p, nil
}
