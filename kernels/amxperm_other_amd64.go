//go:build gc && !purego && !linux

package kernels

import (
	"errors"
	"runtime"
)

// amxRequest: this build knows how to ask only Linux for the AMX tile
// state, so the amx path is offered only there.
func amxRequest() error { return errors.New("AMX tile permission: not implemented on " + runtime.GOOS) }
