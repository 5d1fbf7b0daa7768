package train_test

import (
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/train"
)

// svgPlot is what TestWritePlot reads back of a plot.
type svgPlot struct {
	Polylines []struct {
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

// TestWritePlot checks the SVG: well-formed XML, one polyline per series
// (train and validation loss, train and validation accuracy) with a point
// per finite value, the value and step ranges as labels; no records and
// one record still give a valid plot, and a failed write names the file.
func TestWritePlot(t *testing.T) {
	ms := []train.Metrics{
		{Step: 10, TrainLoss: 2.0, ValLoss: 1.8, TrainAcc: 0.3, ValAcc: 0.35},
		{Step: 20, TrainLoss: 1.0, ValLoss: 1.1, TrainAcc: 0.6, ValAcc: 0.55},
		{Step: 30, TrainLoss: 0.5, ValLoss: math.Inf(1), TrainAcc: 0.8, ValAcc: 0.7},
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		ms     []train.Metrics
		points []int // per polyline
		labels []string
	}{
		{"three", ms, []int{3, 2, 3, 3}, []string{"loss", "accuracy", "step 10", "step 30", "2", "0.5", "0.8", "0.3"}},
		{"one", ms[:1], []int{1, 1, 1, 1}, []string{"step 10", "step 11"}},
		{"none", nil, []int{0, 0, 0, 0}, []string{"step 0", "step 1"}},
	} {
		path := filepath.Join(dir, tc.name+".svg")
		if err := train.WritePlot(path, tc.ms); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var p svgPlot
		if err := xml.Unmarshal(data, &p); err != nil {
			t.Fatalf("%s: not XML: %v\n%s", tc.name, err, data)
		}
		if len(p.Polylines) != len(tc.points) {
			t.Fatalf("%s: %d polylines, want %d", tc.name, len(p.Polylines), len(tc.points))
		}
		for i, pl := range p.Polylines {
			if n := len(strings.Fields(pl.Points)); n != tc.points[i] {
				t.Errorf("%s: polyline %d has %d points, want %d", tc.name, i, n, tc.points[i])
			}
		}
		texts := strings.Join(p.Texts, "|")
		for _, l := range tc.labels {
			if !strings.Contains("|"+texts+"|", "|"+l+"|") {
				t.Errorf("%s: no label %q in %q", tc.name, l, texts)
			}
		}
	}
	if err := train.WritePlot(filepath.Join(dir, "missing", "p.svg"), ms); err == nil || !strings.Contains(err.Error(), "p.svg") {
		t.Errorf("writing into a missing directory: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".plot-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
