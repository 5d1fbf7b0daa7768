//go:build amd64 && !purego

package firmware

import (
	"errors"

	"github.com/minio/simdjson-go"
)

// simdAvailable: simdjson-go needs AVX2 and CLMUL.
var simdAvailable = simdjson.SupportedCPU()

// parseSimd parses with simdjson-go. Any error makes the caller fall back
// to encoding/json, so the messages here need not be good.
func parseSimd(b []byte) (jsonValue, error) {
	// simdjson-go pads its last block internally; the private copy with
	// slack also keeps its vector loads away from the end of an mmapped
	// file, and the parsed strings are copied out of it (the default), so
	// nothing refers to it afterwards.
	buf := make([]byte, len(b), len(b)+64)
	copy(buf, b)
	pj, err := simdjson.Parse(buf, nil)
	if err != nil {
		return nil, err
	}
	it := pj.Iter()
	if it.Advance() != simdjson.TypeRoot {
		return nil, errors.New("no JSON value")
	}
	var root simdjson.Iter
	if _, _, err := it.Root(&root); err != nil {
		return nil, err
	}
	if it.Advance() != simdjson.TypeNone {
		return nil, errors.New("more than one JSON value")
	}
	return &simdValue{root}, nil
}

// simdValue is one value on simdjson-go's tape: an Iter whose current
// element is the value (Iter copies are independent).
type simdValue struct{ it simdjson.Iter }

func (v *simdValue) kind() jsonKind {
	switch v.it.Type() {
	case simdjson.TypeBool:
		return jsonBool
	case simdjson.TypeInt, simdjson.TypeUint, simdjson.TypeFloat:
		return jsonNumber
	case simdjson.TypeString:
		return jsonString
	case simdjson.TypeArray:
		return jsonArray
	case simdjson.TypeObject:
		return jsonObject
	}
	return jsonNull
}

func (v *simdValue) boolean() bool { b, _ := v.it.Bool(); return b }

func (v *simdValue) str() (string, error) { return v.it.String() }

// integer accepts only what simdjson-go stored as int64: TypeUint is an
// integer above MaxInt64 and TypeFloat has a fraction or exponent, exactly
// the literals strconv.ParseInt rejects on the encoding/json side.
func (v *simdValue) integer() (int64, bool) {
	if v.it.Type() != simdjson.TypeInt {
		return 0, false
	}
	i, err := v.it.Int()
	return i, err == nil
}

func (v *simdValue) float() (float64, bool) {
	f, err := v.it.Float()
	return f, err == nil
}

func (v *simdValue) elems() ([]jsonValue, error) {
	arr, err := v.it.Array(nil)
	if err != nil {
		return nil, err
	}
	var out []jsonValue
	it := arr.Iter()
	for it.Advance() != simdjson.TypeNone {
		out = append(out, &simdValue{it})
	}
	return out, nil
}

func (v *simdValue) fields() (map[string]jsonValue, error) {
	obj, err := v.it.Object(nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]jsonValue)
	for {
		var e simdjson.Iter
		name, t, err := obj.NextElement(&e)
		if err != nil {
			return nil, err
		}
		if t == simdjson.TypeNone {
			return out, nil
		}
		out[name] = &simdValue{e} // a later duplicate replaces an earlier one, as in encoding/json
	}
}
