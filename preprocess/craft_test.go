package preprocess

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
)

// Crafted image headers for the budget tests and the fuzz seeds: small
// files that declare large images. Each is what the format's decoder
// accepts as a header (DecodeConfig succeeds), followed by little or no
// pixel data.

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// craftPNG is a PNG of w x h, bit depth and color type as given, with the
// extra chunks (e.g. tRNS, PLTE) before one IDAT holding raw compressed.
func craftPNG(w, h uint32, depth, colorType, interlace byte, raw []byte, extra ...[]byte) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, interlace)
	b = append(b, pngChunk("IHDR", ihdr)...)
	for _, e := range extra {
		b = append(b, e...)
	}
	b = append(b, pngChunk("IDAT", zlibBytes(raw))...)
	return append(b, pngChunk("IEND", nil)...)
}

// craftJPEG is a JFIF header and a start of frame (baseline or
// progressive) for components with the given sampling factors (hv as
// 0xHV), then EOI.
func craftJPEG(w, h uint16, progressive bool, hv ...byte) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16}
	b = append(b, "JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"...)
	sof := byte(0xc0)
	if progressive {
		sof = 0xc2
	}
	b = append(b, 0xff, sof)
	b = binary.BigEndian.AppendUint16(b, uint16(8+3*len(hv)))
	b = append(b, 8)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	b = append(b, byte(len(hv)))
	for i, x := range hv {
		b = append(b, byte(i+1), x, 0)
	}
	return append(b, 0xff, 0xd9)
}

// craftGIF is a GIF with a w x h logical screen and a 1x1 first frame.
func craftGIF(w, h uint16, interlaced bool) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	b = append(b, 0x80, 0, 0, 0, 0, 0, 255, 255, 255) // 2-color global table
	var flags byte
	if interlaced {
		flags = 0x40
	}
	b = append(b, ',', 0, 0, 0, 0, 1, 0, 1, 0, flags)
	// LZW minimum code size 2: clear (4), index 0, end (5), in one block.
	return append(b, 2, 2, 0x44, 0x01, 0, ';')
}

// craftBMP is a 24-bit BMP header for w x h with no pixel data.
func craftBMP(w, h int32) []byte {
	b := []byte("BM")
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 40)
	b = binary.LittleEndian.AppendUint32(b, uint32(w))
	b = binary.LittleEndian.AppendUint32(b, uint32(h))
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 24)
	return append(b, make([]byte, 24)...)
}

// tiffTag is one IFD entry: SHORT (3) or LONG (4) values.
type tiffTag struct {
	tag, typ uint16
	vals     []uint32
}

// craftTIFF is a little-endian TIFF with the given tags (sorted by tag)
// and data appended at offset dataOff (which StripOffsets may point to).
func craftTIFF(tags []tiffTag, data []byte) []byte {
	le := binary.LittleEndian
	b := []byte("II*\x00")
	b = le.AppendUint32(b, 8)
	b = le.AppendUint16(b, uint16(len(tags)))
	extraOff := 8 + 2 + 12*len(tags) + 4
	var extra []byte
	for _, t := range tags {
		b = le.AppendUint16(b, t.tag)
		b = le.AppendUint16(b, t.typ)
		b = le.AppendUint32(b, uint32(len(t.vals)))
		var v []byte
		for _, x := range t.vals {
			if t.typ == 3 {
				v = le.AppendUint16(v, uint16(x))
			} else {
				v = le.AppendUint32(v, x)
			}
		}
		if len(v) <= 4 {
			b = append(b, append(v, make([]byte, 4-len(v))...)...)
		} else {
			b = le.AppendUint32(b, uint32(extraOff+len(extra)))
			extra = append(extra, v...)
		}
	}
	b = le.AppendUint32(b, 0) // no next IFD
	b = append(b, extra...)
	return append(b, data...)
}

// tiffGray is a gray TIFF of w x h at depth bits, one strip of rps rows
// (0: a single strip) or one tile of tile x tile, compressed (8: deflate)
// or not (1), with raw as the strip's data.
func tiffGray(w, h uint32, depth, compression uint16, rps uint32, tile uint32, raw []byte) []byte {
	data := raw
	if compression == 8 {
		data = zlibBytes(raw)
	}
	off := uint32(8 + 2 + 12*10 + 4)
	tags := []tiffTag{
		{256, 4, []uint32{w}},
		{257, 4, []uint32{h}},
		{258, 3, []uint32{uint32(depth)}},
		{259, 3, []uint32{uint32(compression)}},
		{262, 3, []uint32{1}},
	}
	if tile > 0 {
		tags = append(tags,
			tiffTag{277, 3, []uint32{1}},
			tiffTag{322, 4, []uint32{tile}},
			tiffTag{323, 4, []uint32{tile}},
			tiffTag{324, 4, []uint32{off}},
			tiffTag{325, 4, []uint32{uint32(len(data))}})
	} else {
		if rps == 0 {
			rps = h
		}
		tags = append(tags,
			tiffTag{273, 4, []uint32{off}},
			tiffTag{277, 3, []uint32{1}},
			tiffTag{278, 4, []uint32{rps}},
			tiffTag{279, 4, []uint32{uint32(len(data))}})
		tags = append(tags, tiffTag{284, 3, []uint32{1}})
	}
	return craftTIFF(tags, data)
}

// webpFile wraps chunks in a RIFF WEBP container.
func webpFile(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+len(body)))
	b = append(b, "WEBP"...)
	return append(b, body...)
}

// webpChunk is a RIFF chunk; declared, if not 0, replaces the length.
func webpChunk(id string, data []byte, declared uint32) []byte {
	n := uint32(len(data))
	if declared != 0 {
		n = declared
	}
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, n)...)
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// vp8lHeader is a VP8L bitstream header for w x h (1..16384).
func vp8lHeader(w, h uint32) []byte {
	v := (w - 1) | (h-1)<<14 // alpha hint 0, version 0
	return []byte{0x2f, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// vp8xChunk declares a w x h canvas, with the alpha flag if alpha.
func vp8xChunk(w, h uint32, alpha bool) []byte {
	d := make([]byte, 10)
	if alpha {
		d[0] = 0x10
	}
	d[4], d[5], d[6] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
	d[7], d[8], d[9] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
	return webpChunk("VP8X", d, 0)
}

// vp8Frame is the start of a VP8 key frame for w x h (up to 16383).
func vp8Frame(w, h uint16) []byte {
	const firstPart = 16
	tag := uint32(0) | 0<<1 | 1<<4 | firstPart<<5 // key frame, version 0, shown
	b := []byte{byte(tag), byte(tag >> 8), byte(tag >> 16), 0x9d, 0x01, 0x2a}
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, make([]byte, firstPart)...)
}

// Tiny real WebP files, as used by Modernizr's feature test (MIT): 1x1
// lossy, lossless, and lossy with (lossless) alpha.
var (
	webpLossy1      = mustB64("UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA")
	webpLossless1   = mustB64("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	webpLossyAlpha1 = mustB64("UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEAAQAAAP4AAA3AAP7mtQAAAA==")
)

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// craftProgressiveGray is a real 8x8 progressive JPEG: one gray
// component, one DC scan whose only code (0, one bit) says "difference
// 0", so every pixel is 128.
func craftProgressiveGray() []byte {
	b := craftJPEG(8, 8, true, 0x11)
	b = b[:len(b)-2] // drop EOI
	// DQT: table 0, all ones.
	b = append(b, 0xff, 0xdb, 0, 67, 0)
	for i := 0; i < 64; i++ {
		b = append(b, 1)
	}
	// DHT: DC table 0 with one code of length 1 for symbol 0.
	b = append(b, 0xff, 0xc4, 0, 20, 0x00, 1)
	b = append(b, make([]byte, 15)...)
	b = append(b, 0)
	// SOS: component 1, DC table 0, Ss=0 Se=0 Ah=0 Al=0.
	b = append(b, 0xff, 0xda, 0, 8, 1, 1, 0x00, 0, 0, 0)
	b = append(b, 0x7f) // the bit 0, padded with ones
	return append(b, 0xff, 0xd9)
}
