package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
)

// HeaderContentLength is the binary extension's header: the length of the
// JSON at the start of a body that binary tensor data follows.
const HeaderContentLength = "Inference-Header-Content-Length"

// inferRequest is $inference_request.
type inferRequest struct {
	ID         string          `json:"id"`
	Parameters params          `json:"parameters"`
	Inputs     []requestInput  `json:"inputs"`
	Outputs    []requestOutput `json:"outputs"`
}

type requestInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters params          `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

type requestOutput struct {
	Name       string `json:"name"`
	Parameters params `json:"parameters"`
}

// params is $parameters, read a key at a time.
type params map[string]json.RawMessage

// int is an integer parameter; present is false when it is absent.
func (p params) int(key string) (v int64, present bool, err error) {
	raw, ok := p[key]
	if !ok {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, true, fmt.Errorf("parameter %q is %s, want an integer", key, raw)
	}
	return v, true, nil
}

// bool is a boolean parameter, false when absent.
func (p params) bool(key string) (v, present bool, err error) {
	raw, ok := p[key]
	if !ok {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, true, fmt.Errorf("parameter %q is %s, want true or false", key, raw)
	}
	return v, true, nil
}

// readBody reads the body whole, refusing one over limit before reading
// it when its length is declared.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes: the limit is %d", r.ContentLength, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var b []byte
	var err error
	if r.ContentLength >= 0 {
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(body, b)
	} else {
		b, err = io.ReadAll(body)
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body over the limit of %d bytes", limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, errorf(http.StatusRequestTimeout, "the request body did not arrive within the request timeout: %v", err)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return b, nil
}

// splitBody separates the JSON from the binary data after it (binary
// extension), as the Inference-Header-Content-Length header says.
func splitBody(h http.Header, body []byte) (jsonPart, bin []byte, err error) {
	v := h.Get(HeaderContentLength)
	if v == "" {
		return body, nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || n > uint64(len(body)) {
		return nil, nil, errorf(http.StatusBadRequest, "%s: %q, want the JSON's length, at most the body's %d bytes", HeaderContentLength, v, len(body))
	}
	return body[:n], body[n:], nil
}

// parseRequest decodes $inference_request.
func parseRequest(b []byte) (*inferRequest, error) {
	var req inferRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid inference request JSON: %v", err)
	}
	if len(req.Inputs) != 1 {
		return nil, errorf(http.StatusBadRequest, "%d inputs: the model takes one", len(req.Inputs))
	}
	return &req, nil
}

// tensorInput is a request's input tensor as either protocol gives it.
// Its data is one of: raw, little-endian binary data (REST's binary
// extension, gRPC's raw_input_contents; BYTES elements each a 4-byte
// length and the bytes); text, REST's JSON "data"; or typed, gRPC's
// contents (fp32, or elems for BYTES).
type tensorInput struct {
	name, datatype string
	shape          []int64
	form           dataForm
	raw            []byte
	text           json.RawMessage
	fp32           []float32
	elems          [][]byte
}

type dataForm int

const (
	formText dataForm = iota
	formRaw
	formTyped
)

// restInput is a REST input: its binary data's bytes when it has a
// binary_data_size, else its JSON "data". It checks that exactly the
// binary data is used.
func restInput(in requestInput, bin []byte) (*tensorInput, error) {
	t := &tensorInput{name: in.Name, datatype: in.Datatype, shape: in.Shape}
	size, ok, err := in.Parameters.int("binary_data_size")
	switch {
	case err != nil:
	case !ok && len(bin) > 0:
		err = fmt.Errorf("%d bytes of binary data after the JSON, but no binary_data_size", len(bin))
	case !ok && (len(in.Data) == 0 || string(in.Data) == "null"):
		err = errors.New("no data (and no binary_data_size)")
	case !ok:
		t.text = in.Data
	case len(in.Data) != 0 && string(in.Data) != "null":
		err = errors.New("both data and binary_data_size: send one")
	case size < 0 || size != int64(len(bin)):
		err = fmt.Errorf("binary_data_size %d, but %d bytes of binary data follow the JSON", size, len(bin))
	default:
		t.form, t.raw = formRaw, bin
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "input %q: %v", in.Name, err)
	}
	return t, nil
}

// topKParam is the request parameter top_k, as the protocol read it.
type topKParam struct {
	k       int64
	present bool
}

// newJob checks the request's input against the model and decodes its
// data.
func (m *served) newJob(in *tensorInput, k topKParam, maxSamples int) (*job, error) {
	bad := func(format string, args ...any) error {
		return errorf(http.StatusBadRequest, "input %q: %s", in.name, fmt.Sprintf(format, args...))
	}
	if in.name != m.in.name {
		return nil, bad("the model's input is %q", m.in.name)
	}
	j := &job{in: m.in}
	var err error
	if j.topK, err = topK(k, m.classes); err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	switch in.datatype {
	case "FP32":
		if j.n, err = m.samples(in.shape); err == nil {
			err = checkSamples(j.n, maxSamples)
		}
		if err == nil {
			j.tensor, err = in.fp32Values(j.n * m.in.size)
		}
	case "BYTES":
		if !m.images {
			return nil, bad("datatype BYTES (encoded images): the model takes FP32 tensors only, its input is not an image")
		}
		if j.n, err = imageCount(in.shape); err == nil {
			err = checkSamples(j.n, maxSamples)
		}
		if err == nil {
			j.images, err = in.bytesValues(j.n)
		}
	default:
		return nil, bad("datatype %q: the model takes FP32 tensors %s or BYTES (encoded images)", in.datatype, m.wantShape())
	}
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return nil, errorf(he.status, "input %q: %s", in.name, he.msg)
		}
		return nil, bad("%v", err)
	}
	return j, nil
}

// fp32Values decodes the count float32 values of the input's data.
func (in *tensorInput) fp32Values(count int) ([]float32, error) {
	switch in.form {
	case formRaw:
		return fp32Data(in.raw, true, count)
	case formTyped:
		if len(in.fp32) != count {
			return nil, fmt.Errorf("fp32_contents has %d values, the shape needs %d", len(in.fp32), count)
		}
		return in.fp32, nil
	}
	return fp32Data(in.text, false, count)
}

// bytesValues decodes the n BYTES elements of the input's data.
func (in *tensorInput) bytesValues(n int) ([][]byte, error) {
	switch in.form {
	case formRaw:
		return bytesData(in.raw, true, n)
	case formTyped:
		if len(in.elems) != n {
			return nil, fmt.Errorf("bytes_contents has %d elements, the shape says %d", len(in.elems), n)
		}
		return in.elems, nil
	}
	return bytesData(in.text, false, n)
}

// topK checks the request parameter top_k (0 when absent), at most the
// number of classes.
func topK(p topKParam, classes int) (int, error) {
	if !p.present {
		return 0, nil
	}
	if p.k < 1 {
		return 0, fmt.Errorf("parameter top_k %d: want 1 or more", p.k)
	}
	return int(min(p.k, int64(classes))), nil
}

func checkSamples(n, limit int) error {
	if n > limit {
		return errorf(http.StatusRequestEntityTooLarge, "%d samples: at most %d per request", n, limit)
	}
	return nil
}

// samples checks an FP32 tensor shape against the model's input, [N,...]
// or one sample without N, and returns N.
func (m *served) samples(shape []int64) (int, error) {
	n, rest := int64(1), shape
	if len(shape) == len(m.in.shape)+1 {
		n, rest = shape[0], shape[1:]
	}
	ok := n >= 1 && len(rest) == len(m.in.shape)
	for i := 0; ok && i < len(rest); i++ {
		ok = rest[i] == int64(m.in.shape[i])
	}
	if !ok {
		return 0, fmt.Errorf("shape %v, want %s", shape, m.wantShape())
	}
	return int(min(n, math.MaxInt32)), nil
}

func (m *served) wantShape() string {
	dims := "N"
	for _, d := range m.in.shape {
		dims += "," + strconv.Itoa(d)
	}
	return "[" + dims + "] with N >= 1"
}

// imageCount checks a BYTES shape, [N] or [N,1], and returns N.
func imageCount(shape []int64) (int, error) {
	if len(shape) < 1 || len(shape) > 2 || shape[0] < 1 || len(shape) == 2 && shape[1] != 1 {
		return 0, fmt.Errorf("BYTES shape %v, want [N] (or [N,1]) for N encoded images", shape)
	}
	return int(min(shape[0], math.MaxInt32)), nil
}

// fp32Data decodes count float32 values: little-endian binary data, or
// JSON numbers (a flat or nested array), each parsed as a float32.
func fp32Data(raw []byte, binary bool, count int) ([]float32, error) {
	if binary {
		if len(raw) != 4*count {
			return nil, fmt.Errorf("%d bytes of binary data, the shape needs %d (%d FP32 values)", len(raw), 4*count, count)
		}
		out := make([]float32, count)
		for i := range out {
			out[i] = math.Float32frombits(binaryLE.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	if count > len(raw) { // a JSON number takes a byte at least
		return nil, fmt.Errorf("data has fewer than the %d values the shape needs", count)
	}
	var flat []float32
	if err := json.Unmarshal(raw, &flat); err != nil {
		if flat, err = nestedFP32(raw, count); err != nil {
			return nil, err
		}
	}
	if len(flat) != count {
		return nil, fmt.Errorf("data has %d values, the shape needs %d", len(flat), count)
	}
	return flat, nil
}

var binaryLE = binary.LittleEndian

// nestedFP32 flattens a nested JSON array of numbers (row-major), and
// says which value is wrong otherwise.
func nestedFP32(raw []byte, count int) ([]float32, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	out := make([]float32, 0, count)
	for depth := 0; ; {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("data: %v", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '}' {
				return nil, fmt.Errorf("data: value %d is an object, want a number", len(out))
			}
			depth += map[json.Delim]int{'[': 1, ']': -1}[v]
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 32)
			if depth == 0 || err != nil {
				return nil, fmt.Errorf("data: value %d (%s) is not an FP32 number in an array", len(out), v)
			}
			if len(out) == count {
				return nil, fmt.Errorf("data has more than the %d values the shape needs", count)
			}
			out = append(out, float32(f))
		default:
			return nil, fmt.Errorf("data: value %d is %v, want a number", len(out), tok)
		}
	}
}

// bytesData decodes n BYTES elements: each a 4-byte little-endian length
// and the bytes in binary data, a base64 string in JSON.
func bytesData(raw []byte, binary bool, n int) ([][]byte, error) {
	if !binary {
		var strs []string
		if err := json.Unmarshal(raw, &strs); err != nil {
			return nil, fmt.Errorf("data: want an array of base64 strings (BYTES), %v", err)
		}
		if len(strs) != n {
			return nil, fmt.Errorf("data has %d elements, the shape says %d", len(strs), n)
		}
		out := make([][]byte, n)
		for i, s := range strs {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("data element %d is not base64: %v", i, err)
			}
			out[i], strs[i] = b, ""
		}
		return out, nil
	}
	var out [][]byte
	for off := 0; off < len(raw); {
		if len(raw)-off < 4 {
			return nil, fmt.Errorf("binary data: %d bytes at offset %d, too short for element %d's 4-byte length", len(raw)-off, off, len(out))
		}
		l := int64(binaryLE.Uint32(raw[off:]))
		if l > int64(len(raw)-off-4) {
			return nil, fmt.Errorf("binary data: element %d at offset %d claims %d bytes, %d are left", len(out), off, l, len(raw)-off-4)
		}
		if len(out) == n {
			return nil, fmt.Errorf("binary data holds more than the %d BYTES elements the shape says", n)
		}
		out = append(out, raw[off+4:off+4+int(l)])
		off += 4 + int(l)
	}
	if len(out) != n {
		return nil, fmt.Errorf("binary data holds %d BYTES elements, the shape says %d", len(out), n)
	}
	return slices.Clip(out), nil
}
