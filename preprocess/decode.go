package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"strings"

	// Registered decoders: what DecodeFile understands.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// MaxDecodePixels bounds the width*height DecodeFile accepts, checked from
// the header before any pixel is decoded, so that a small crafted file
// cannot make us allocate gigabytes. 2^27 pixels is 512 MiB as RGBA.
var MaxDecodePixels = 1 << 27

// DecodeFile reads a JPEG, PNG, GIF (first frame), BMP, TIFF or WebP file.
// Errors name the file and say what went wrong: unknown or unsupported
// format (with a hint for common ones, such as .npy tensors), truncated
// data, corrupt data, or an image too large. EXIF orientation is not
// applied, which matches torchvision's Pillow loader (it ignores EXIF too).
// Decoding JPEG uses Go's decoder, which differs slightly from
// libjpeg-turbo (see Apply).
func DecodeFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	defer f.Close()
	return Decode(f, path)
}

// Decode is DecodeFile for data from any seekable reader (an archive
// member, a network buffer); name is used in errors.
func Decode(f io.ReadSeeker, name string) (image.Image, error) {
	var head [16]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("preprocess: reading %s: %w", name, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("preprocess: %s: empty file, not an image", name)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("preprocess: reading %s: %w", name, err)
	}
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, decodeError(name, format, head[:n], err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > int64(MaxDecodePixels) {
		return nil, fmt.Errorf("preprocess: %s: %s image is %dx%d, outside 1..%d pixels", name, format, cfg.Width, cfg.Height, MaxDecodePixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("preprocess: reading %s: %w", name, err)
	}
	img, format, err := image.Decode(f)
	if err != nil {
		return nil, decodeError(name, format, head[:n], err)
	}
	return img, nil
}

// decodeError turns a decoder's terse error into one that names the file
// and the likely problem.
func decodeError(path, format string, head []byte, err error) error {
	if errors.Is(err, image.ErrFormat) {
		what := "unknown image format"
		if hint := sniffUnsupported(head); hint != "" {
			what = "unsupported format: " + hint
		}
		return fmt.Errorf("preprocess: %s: %s (file starts with % x); DecodeFile reads JPEG, PNG, GIF, BMP, TIFF and WebP", path, what, head)
	}
	if format == "" {
		format = "image"
	}
	// image/png reports a short image stream as "not enough pixel data".
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "not enough pixel data") {
		return fmt.Errorf("preprocess: %s: %s data is truncated: %w", path, format, err)
	}
	return fmt.Errorf("preprocess: %s: corrupt or unsupported %s data: %w", path, format, err)
}

// sniffUnsupported names formats people commonly try that we cannot decode.
func sniffUnsupported(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return "a NumPy .npy array (use ReadNPYFile)"
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		switch string(head[8:12]) {
		case "avif", "avis":
			return "AVIF"
		case "heic", "heix", "mif1", "msf1", "hevc":
			return "HEIF/HEIC"
		}
		return "an ISO media (MP4/HEIF family) file"
	case bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cjP  ")), bytes.HasPrefix(head, []byte("\xff\x4f\xff\x51")):
		return "JPEG 2000"
	case bytes.HasPrefix(head, []byte("\xff\x0a")), bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cJXL ")):
		return "JPEG XL"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "a zip archive (.npz?)"
	case len(head) >= 3 && head[0] == 'P' && head[1] >= '1' && head[1] <= '7' && strings.ContainsRune(" \t\r\n", rune(head[2])):
		return "Netpbm (PBM/PGM/PPM)"
	}
	return ""
}
