//go:build !amd64 || purego

package firmware

import "errors"

// simdjson-go has assembly for amd64 only; elsewhere (arm64, armv7) the
// manifest is read with encoding/json, and this build leaves simdjson-go
// out of the binary.
const simdAvailable = false

func parseSimd([]byte) (jsonValue, error) {
	return nil, errors.New("simdjson is not available in this build")
}
