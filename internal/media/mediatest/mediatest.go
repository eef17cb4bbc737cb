// Package mediatest builds hostile images for tests of the media
// repository: files that are small on disk but promise (or hold) far more
// pixels than they take bytes.
package mediatest

import (
	"bytes"
	"compress/lzw"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
)

// GIF returns an animated GIF of frames frames, each covering the whole
// w x h canvas with one colour. Runs of one colour compress about 2000:1
// under LZW, so 150 frames of 4000x4000 take about 2 MB.
func GIF(w, h, frames int) []byte {
	var b bytes.Buffer
	b.WriteString("GIF89a")
	le16(&b, w)
	le16(&b, h)
	b.Write([]byte{0xf7, 0, 0}) // global colour table of 256 entries
	for i := 0; i < 256; i++ {
		b.Write([]byte{byte(i), byte(255 - i), byte(i * 7)})
	}
	// Loop forever (the NETSCAPE2.0 application extension).
	b.Write([]byte{0x21, 0xff, 11})
	b.WriteString("NETSCAPE2.0")
	b.Write([]byte{3, 1, 0, 0, 0})
	// One frame's image data, reused for every frame: only the colour
	// (through the transparent index, unused) varies, which is enough.
	var data bytes.Buffer
	lw := lzw.NewWriter(&data, lzw.LSB, 8)
	row := make([]byte, w)
	for y := 0; y < h; y++ {
		lw.Write(row)
	}
	lw.Close()
	for f := 0; f < frames; f++ {
		b.Write([]byte{0x21, 0xf9, 4, 1 << 2, 10, 0, 0, 0}) // disposal none, 100 ms
		b.WriteByte(0x2c)
		le16(&b, 0)
		le16(&b, 0)
		le16(&b, w)
		le16(&b, h)
		b.WriteByte(0) // no local colour table, not interlaced
		b.WriteByte(8) // LZW minimum code size
		d := data.Bytes()
		for len(d) > 0 {
			n := min(len(d), 255)
			b.WriteByte(byte(n))
			b.Write(d[:n])
			d = d[n:]
		}
		b.WriteByte(0)
	}
	b.WriteByte(0x3b)
	return b.Bytes()
}

// PNG returns a PNG that declares a w x h canvas with the given bit depth
// and colour type (6: RGBA, 0: grey) but holds only rows rows of zero
// pixels: decoders allocate the whole canvas before finding out.
func PNG(w, h, depth, colorType, rows int) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(depth), byte(colorType)
	chunk(&b, "IHDR", ihdr)
	channels := map[int]int{0: 1, 2: 3, 4: 2, 6: 4}[colorType]
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	row := make([]byte, 1+w*channels*depth/8)
	for y := 0; y < rows; y++ {
		zw.Write(row)
	}
	zw.Close()
	chunk(&b, "IDAT", z.Bytes())
	chunk(&b, "IEND", nil)
	return b.Bytes()
}

func chunk(b *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	b.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	b.Write(n[:])
}

func le16(b *bytes.Buffer, v int) { b.Write([]byte{byte(v), byte(v >> 8)}) }
