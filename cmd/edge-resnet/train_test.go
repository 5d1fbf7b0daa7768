package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTwoClassFolder writes n 8x8 gray PNGs per class into dir/left and
// dir/right: bright on the left or on the right half.
func writeTwoClassFolder(t *testing.T, dir string, n int) {
	t.Helper()
	for c, class := range []string{"left", "right"} {
		os.MkdirAll(filepath.Join(dir, class), 0o755)
		for i := range n {
			g := image.NewGray(image.Rect(0, 0, 8, 8))
			for y := range 8 {
				for x := range 8 {
					v := uint8((i*37 + x*11 + y*23) % 60)
					if (x < 4) == (c == 0) {
						v += 180
					}
					g.SetGray(x, y, color.Gray{v})
				}
			}
			f, err := os.Create(filepath.Join(dir, class, fmt.Sprintf("%02d.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			png.Encode(f, g)
			f.Close()
		}
	}
}

// TestTrainThenClassify trains a CIFAR ResNet-8 on a generated class
// folder for 2 epochs and classifies with DIR/best.ern.
func TestTrainThenClassify(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	writeTwoClassFolder(t, data, 24)
	args := []string{"train", "--arch", "cifar-resnet8", "--data", data, "--val-split", "8", "--epochs", "2",
		"--batch", "8", "--lr", "1e-2", "--seed", "3", "--threads", "1", "--keep", "2", "-o", out}
	stdout, _, err := run(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var m struct {
		Epoch  int     `json:"epoch"`
		Step   int     `json:"step"`
		ValAcc float64 `json:"val_acc"`
	}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &m) != nil || m.Epoch != 2 || m.Step != 10 {
		t.Fatalf("train --json printed %q", stdout)
	}
	checkClassifiesClasses(t, filepath.Join(out, "best.ern"), data, "left", "right")
	if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Errorf("training into a run's directory again: %v", err)
	}
	stdout, _, err = run(t, append(args, "--resume")...)
	if err != nil || !strings.Contains(stdout, "best: step") {
		t.Errorf("resuming a finished run: %v\n%s", err, stdout)
	}
}

// TestTrainScaleJitterAndName trains one epoch with --scale-jitter and
// --name: the run works and its model images carry the name.
func TestTrainScaleJitterAndName(t *testing.T) {
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	writeTwoClassFolder(t, data, 6)
	_, _, err := run(t, "train", "--arch", "cifar-resnet8", "--data", data, "--val-split", "4", "--epochs", "1",
		"--batch", "4", "--seed", "2", "--threads", "1", "--scale-jitter", "0.5,0.9", "--flip", "--name", "jittered", "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	stdout, _, err := run(t, "inspect", "--json", filepath.Join(out, "best.ern"))
	if err != nil || !strings.Contains(stdout, `"jittered"`) {
		t.Errorf("inspect of the model: %v\n%.300s", err, stdout)
	}
}

func TestTrainFlagErrors(t *testing.T) {
	data := t.TempDir()
	writeTwoClassFolder(t, data, 2)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no validation", []string{"--data", data}, "--val-split"},
		{"both validations", []string{"--data", data, "--val-split", "1", "--val", data}, "not both"},
		{"epochs", []string{"--data", data, "--val-split", "1", "--epochs", "0"}, "--epochs"},
		{"arch", []string{"--data", data, "--val-split", "1", "--arch", "resnet19"}, "resnet19"},
		{"optimizer", []string{"--data", data, "--val-split", "1", "--optimizer", "lion"}, "lion"},
		{"missing data", []string{"--data", filepath.Join(data, "nope"), "--val-split", "1"}, "nope"},
		{"scale jitter zero", []string{"--data", data, "--val-split", "1", "--scale-jitter", "0"}, "--scale-jitter"},
		{"scale jitter over 1", []string{"--data", data, "--val-split", "1", "--scale-jitter", "0.5,1.5"}, "--scale-jitter"},
		{"scale jitter reversed", []string{"--data", data, "--val-split", "1", "--scale-jitter", "0.8,0.5"}, "MIN <= MAX"},
		{"scale jitter text", []string{"--data", data, "--val-split", "1", "--scale-jitter", "half"}, "--scale-jitter"},
		{"memory budget", []string{"--data", data, "--val-split", "1", "--max-memory", "1MiB"}, "--batch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"train", "-o", filepath.Join(t.TempDir(), "run")}, tc.args...)
			_, _, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestTrainFromFreezeBackbone trains a small model on left/right, then
// fine-tunes its head with --from --freeze backbone on the same images
// under other class names whose sorted order swaps them: the new model
// prints the new labels, rightly.
func TestTrainFromFreezeBackbone(t *testing.T) {
	data, base := trainLeftRight(t)
	out := filepath.Join(t.TempDir(), "head")
	args := []string{"train", "--from", filepath.Join(base, "best.ern"), "--data", data, "--val-split", "8",
		"--epochs", "15", "--batch", "8", "--lr", "5e-2", "--seed", "3", "--threads", "1", "-o", out}
	stdout, _, err := run(t, append(args, "--freeze", "backbone")...)
	if err != nil || !strings.Contains(stdout, "best: step") {
		t.Fatalf("train --from --freeze backbone: %v\n%s", err, stdout)
	}
	checkClassifiesClasses(t, filepath.Join(out, "best.ern"), data, "west", "east")
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{[]string{"--freeze", "all"}, "want backbone, stem or layer1..layer3 (cifar-resnet8 has 3 stages)"},
		{[]string{"--freeze", "layer4"}, "layer1..layer3"},
		{[]string{"--size", "16x16"}, "--size does not apply"},
		{[]string{"--freeze", "backbone", "--flip"}, "augmentation"},
	} {
		if _, _, err := run(t, append(append(args[:len(args)-1:len(args)-1], t.TempDir()), tc.extra...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("train --from %v: %v, want an error about %q", tc.extra, err, tc.want)
		}
	}
	if _, _, err := run(t, "train", "--freeze", "backbone", "--data", data, "--val-split", "8", "-o", t.TempDir()); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("--freeze without --from: %v", err)
	}
}

// trainLeftRight trains a CIFAR ResNet-8 on a left/right class folder in
// base, then renames the classes west and east (their sorted order
// swapped) for the fine-tunings.
func trainLeftRight(t *testing.T) (data, base string) {
	t.Helper()
	data, base = t.TempDir(), filepath.Join(t.TempDir(), "base")
	writeTwoClassFolder(t, data, 24)
	if _, _, err := run(t, "train", "--arch", "cifar-resnet8", "--data", data, "--val-split", "8", "--epochs", "2",
		"--batch", "8", "--lr", "1e-2", "--seed", "3", "--threads", "1", "-o", base); err != nil {
		t.Fatal(err)
	}
	for old, name := range map[string]string{"left": "west", "right": "east"} {
		if err := os.Rename(filepath.Join(data, old), filepath.Join(data, name)); err != nil {
			t.Fatal(err)
		}
	}
	return data, base
}

// TestTrainFromFreezeLayer fine-tunes a small model trained on
// left/right, under swapped class names as TestTrainFromFreezeBackbone
// does, with its stem and first stage frozen and with augmentation
// (random crops: a flip would swap the classes), and then every layer of it: both new models classify the classes rightly.
func TestTrainFromFreezeLayer(t *testing.T) {
	data, base := trainLeftRight(t)
	for _, extra := range [][]string{{"--freeze", "layer1", "--pad", "1"}, {"--pad", "1"}} {
		out := t.TempDir()
		args := append([]string{"train", "--from", filepath.Join(base, "best.ern"), "--data", data, "--val-split", "8",
			"--epochs", "8", "--batch", "8", "--lr", "1e-2", "--seed", "3", "--threads", "1", "-o", out}, extra...)
		stdout, _, err := run(t, args...)
		if err != nil || !strings.Contains(stdout, "best: step") {
			t.Fatalf("train --from %v: %v\n%s", extra, err, stdout)
		}
		checkClassifiesClasses(t, filepath.Join(out, "best.ern"), data, "west", "east")
	}
}

// checkClassifiesClasses runs classify -m model on image 05.png of each
// class folder of data and fails unless its top label is the class.
func checkClassifiesClasses(t *testing.T, model, data string, classes ...string) {
	t.Helper()
	for _, class := range classes {
		stdout, _, err := run(t, "classify", "-m", model, "-k", "1", "--json", filepath.Join(data, class, "05.png"))
		var c struct {
			Top []struct {
				Label string `json:"label"`
			} `json:"top"`
		}
		if err != nil || json.Unmarshal([]byte(stdout), &c) != nil || len(c.Top) != 1 || c.Top[0].Label != class {
			t.Errorf("classify -m %s on a %s image: %v\n%s", filepath.Base(model), class, err, stdout)
		}
	}
}
