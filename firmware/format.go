package firmware

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt is wrapped by every error about a damaged or inconsistent
// image: bad magic, CRC mismatch, truncation, or a manifest that does not
// describe a valid graph.
var ErrCorrupt = errors.New("corrupt model image")

// ErrVersion is wrapped by the errors about images this reader cannot
// interpret although they look intact: a newer major format version, a
// required feature, op or dtype it does not know.
var ErrVersion = errors.New("unsupported model image version")

// The container layout; docs/FORMAT.md is the normative description.
const (
	// MajorVersion is the format major version this package writes and the
	// newest it reads. It changes only for incompatible changes.
	MajorVersion = 1
	// MinorVersion is the newest minor version this package writes; it is
	// bumped for additions old readers may ignore. 1.1 adds int8
	// quantization; 1.2 the graph's batch, the ops after Softmax (Sigmoid,
	// HardSigmoid, Clip, Mul) and grouped convolutions (feature
	// "grouped_conv"). The writer emits the lowest minor that describes
	// the model (1.0 without int8 content), so older models keep their
	// bytes.
	MinorVersion = 2

	headerSize    = 64       // what this writer emits; readers accept more
	maxHeaderSize = 4096     // larger header sizes are treated as corruption
	blobAlign     = 64       // tensors and the blob start on this boundary (cache line, AVX-512 vector)
	maxManifest   = 64 << 20 // a ResNet-152 manifest is well under 1 MiB

	// Byte offsets of the header fields. Magic, versions, header size and the
	// rule that the header ends with its own CRC are stable across all
	// versions, so that any reader can tell "newer" from "damaged".
	offMagic       = 0
	offMajor       = 8
	offMinor       = 10
	offHeaderSize  = 12
	offManifestOff = 16
	offManifestLen = 24
	offBlobOff     = 32
	offBlobLen     = 40
	offPayloadCRC  = 48
	// 52..59 reserved (written as zero, ignored by readers, covered by the header CRC)
	// header size-4 .. header size: header CRC
)

// magic starts every image. The NUL makes tools treat the file as binary
// and 0x1A stops text dumps on some systems.
var magic = [8]byte{'E', 'D', 'G', 'E', 'R', 'N', 0x00, 0x1a}

// castagnoli is hardware accelerated on amd64 (SSE4.2) and arm64 (CRC32).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IsImage reports whether prefix starts like a model image. Eight bytes are
// enough; it is how callers tell an image from an .onnx file.
func IsImage(prefix []byte) bool {
	return len(prefix) >= len(magic) && [8]byte(prefix[:8]) == magic
}

// header is the decoded fixed header.
type header struct {
	major, minor uint16
	size         int // header size
	manifestOff  int
	manifestLen  int
	blobOff      int
	blobLen      int
}

// formatError carries a message without the "firmware: " prefix, so that
// the public functions can add the path where there is one.
type formatError struct {
	msg  string
	kind error // ErrCorrupt or ErrVersion
	also error // an underlying error that errors.Is should see too, or nil
}

func (e *formatError) Error() string { return e.msg + ": " + e.kind.Error() }

func (e *formatError) Unwrap() []error {
	if e.also != nil {
		return []error{e.kind, e.also}
	}
	return []error{e.kind}
}

func corruptf(format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...), kind: ErrCorrupt}
}

func versionf(format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...), kind: ErrVersion}
}

// parseHeader checks everything about the container that does not need the
// manifest: magic, header CRC, version, section bounds and payload CRC.
func parseHeader(data []byte) (header, error) {
	h, err := parseFixedHeader(data)
	if err != nil {
		return h, err
	}
	n := uint64(len(data))
	mo := binary.LittleEndian.Uint64(data[offManifestOff:])
	ml := binary.LittleEndian.Uint64(data[offManifestLen:])
	bo := binary.LittleEndian.Uint64(data[offBlobOff:])
	bl := binary.LittleEndian.Uint64(data[offBlobLen:])
	// Every comparison is arranged so that no sum can overflow.
	switch {
	case mo < uint64(h.size):
		return h, corruptf("manifest offset %d overlaps the %d-byte header", mo, h.size)
	case ml > maxManifest:
		return h, corruptf("manifest length %d exceeds the %d limit", ml, maxManifest)
	case bo%blobAlign != 0:
		return h, corruptf("blob offset %d is not a multiple of %d", bo, blobAlign)
	case bo > n || mo > bo || ml > bo-mo:
		if bo > n {
			return h, corruptf("truncated: file is %d bytes, blob starts at %d", n, bo)
		}
		return h, corruptf("manifest [%d, +%d) overlaps the blob at %d", mo, ml, bo)
	case bl > n-bo:
		return h, corruptf("truncated: file is %d bytes, the blob needs %d at offset %d", n, bl, bo)
	case bl < n-bo:
		return h, corruptf("%d bytes of trailing data after the blob", n-bo-bl)
	}
	h.manifestOff, h.manifestLen, h.blobOff, h.blobLen = int(mo), int(ml), int(bo), int(bl)

	want := binary.LittleEndian.Uint32(data[offPayloadCRC:])
	if got := crc32.Checksum(data[h.size:], castagnoli); got != want {
		return h, corruptf("CRC32C of manifest and blob is %08x, header says %08x", got, want)
	}
	return h, nil
}

// parseFixedHeader checks the header at the start of data (the rest of
// the image need not be there): magic, header size, header CRC, version.
func parseFixedHeader(data []byte) (header, error) {
	var h header
	if !IsImage(data) {
		if len(data) < len(magic) && string(data) == string(magic[:len(data)]) {
			return h, corruptf("truncated: %d bytes, shorter than the magic", len(data))
		}
		return h, corruptf("not a model image (bad magic)")
	}
	if len(data) < offHeaderSize+4 {
		return h, corruptf("truncated: %d bytes, header needs %d", len(data), headerSize)
	}
	hs := binary.LittleEndian.Uint32(data[offHeaderSize:])
	if hs < headerSize || hs > maxHeaderSize || hs%8 != 0 {
		return h, corruptf("header size %d is invalid", hs)
	}
	if uint64(len(data)) < uint64(hs) {
		return h, corruptf("truncated: %d bytes, header needs %d", len(data), hs)
	}
	h.size = int(hs)
	want := binary.LittleEndian.Uint32(data[h.size-4:])
	if got := crc32.Checksum(data[:h.size-4], castagnoli); got != want {
		return h, corruptf("header CRC32C is %08x, header says %08x", got, want)
	}
	h.major = binary.LittleEndian.Uint16(data[offMajor:])
	h.minor = binary.LittleEndian.Uint16(data[offMinor:])
	if h.major > MajorVersion {
		return h, versionf("format version %d.%d is newer than this reader (%d.x); update edge-resnet", h.major, h.minor, MajorVersion)
	}
	if h.major == 0 {
		return h, corruptf("format version 0.%d does not exist", h.minor)
	}
	return h, nil
}

// putHeader fills a 64-byte header; the payload CRC must be known.
func putHeader(b []byte, minor uint16, manifestLen, blobOff, blobLen int64, payloadCRC uint32) {
	clear(b[:headerSize])
	copy(b[offMagic:], magic[:])
	binary.LittleEndian.PutUint16(b[offMajor:], MajorVersion)
	binary.LittleEndian.PutUint16(b[offMinor:], minor)
	binary.LittleEndian.PutUint32(b[offHeaderSize:], headerSize)
	binary.LittleEndian.PutUint64(b[offManifestOff:], headerSize)
	binary.LittleEndian.PutUint64(b[offManifestLen:], uint64(manifestLen))
	binary.LittleEndian.PutUint64(b[offBlobOff:], uint64(blobOff))
	binary.LittleEndian.PutUint64(b[offBlobLen:], uint64(blobLen))
	binary.LittleEndian.PutUint32(b[offPayloadCRC:], payloadCRC)
	binary.LittleEndian.PutUint32(b[headerSize-4:], crc32.Checksum(b[:headerSize-4], castagnoli))
}

func alignUp(n int64) int64 { return (n + blobAlign - 1) &^ (blobAlign - 1) }
