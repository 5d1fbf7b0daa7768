package edgeresnet

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
	"testing"
)

// fakeSet is an in-memory set of n small gray images for the built-in
// model. Image fails for the samples in bad (an error without the name,
// as a Set of someone else's might return) and returns an empty image for
// those in empty (which preprocessing refuses).
type fakeSet struct {
	n          int
	bad, empty map[int]bool
}

func (s fakeSet) Len() int          { return s.n }
func (s fakeSet) Label(i int) int   { return i % 10 }
func (s fakeSet) Name(i int) string { return fmt.Sprintf("fake/%03d.png", i) }
func (s fakeSet) Classes() []string { return nil }
func (s fakeSet) Close() error      { return nil }
func (s fakeSet) Image(i int) (image.Image, error) {
	if s.bad[i] {
		return nil, errors.New("broken file")
	}
	if s.empty[i] {
		return image.NewGray(image.Rect(0, 0, 0, 0)), nil
	}
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for p := range img.Pix {
		img.Pix[p] = uint8(p*7 + i*31)
	}
	return img, nil
}

func set(is ...int) map[int]bool {
	m := map[int]bool{}
	for _, i := range is {
		m[i] = true
	}
	return m
}

// TestEvaluateNamesSamples: every per-sample error names the sample once,
// with OnError and without; negative limits and worker counts are errors.
func TestEvaluateNamesSamples(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	s := fakeSet{n: 6, bad: set(1), empty: set(4)}
	var msgs []string
	res, err := Evaluate(m, s, EvalOptions{Workers: 2, OnError: func(name string, err error) {
		if !strings.HasPrefix(err.Error(), name+": ") || strings.Count(err.Error(), name) != 1 {
			t.Errorf("error for %s does not name it once: %v", name, err)
		}
		msgs = append(msgs, err.Error())
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 2 || len(msgs) != 2 || res.Predictions[1] != -1 || res.Predictions[4] != -1 {
		t.Errorf("failed %d, messages %q", res.Failed, msgs)
	}
	_, err = Evaluate(m, s, EvalOptions{Workers: 1})
	if err == nil || !strings.HasPrefix(err.Error(), "fake/001.png: broken file") {
		t.Errorf("without OnError: %v", err)
	}
	for _, opt := range []EvalOptions{{Limit: -5}, {Workers: -1}} {
		if _, err := Evaluate(m, s, opt); !errors.Is(err, ErrInput) {
			t.Errorf("%+v: %v, want ErrInput", opt, err)
		}
	}
}

// TestContextCancels: Evaluate and Quantize stop between images when their
// context is cancelled, and return its error.
func TestContextCancels(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = EvaluateContext(ctx, m, fakeSet{n: 10000}, EvalOptions{Workers: 2, Progress: func(int) {
		if n++; n == 5 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || n > 100 {
		t.Fatalf("EvaluateContext after cancel: %v after %d images", err, n)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, _, err := QuantizeContext(ctx, m, fakeSet{n: 50}, QuantizeOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("QuantizeContext with a cancelled context: %v", err)
	}
}
