package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
)

type convertFlags struct {
	out, labels, size, name string
	arch, shortcut          string
	strideOn1x1, convBias   bool
	resize                  int
	mean, std               string
	scale                   float32
	bgr                     bool
}

func newConvertCmd() *cobra.Command {
	var f convertFlags
	cmd := &cobra.Command{
		Use:   "convert IN.onnx|IN.safetensors -o OUT.ern [--arch A] [--labels FILE] [--size HxW] [--resize N] [--mean a,b,c] [--std a,b,c]",
		Short: "Convert an ONNX model or safetensors weights into an edge-resnet model image",
		Long: `Convert an ONNX model into an edge-resnet model image: one file with the graph
(BatchNorm folded into the convolutions, bias/residual/ReLU fused), its
weights, class labels and preprocessing, protected by a CRC32C.

A .safetensors file holds only weights (a PyTorch state dict with
torchvision's names; a "module." prefix and a "linear" classifier are
accepted): give the architecture with --arch (resnet18/34/50/101/152,
resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, wide_resnet50_2,
wide_resnet101_2, cifar-resnet20/32/44/56/110) and, where it differs from the
default, the
shortcut (--shortcut A|A-end|B; CIFAR defaults to A, ImageNet to B), the
stride placement (--stride-on-1x1) and --conv-bias.

Preprocessing defaults to torchvision's ImageNet eval transform for 224x224
color inputs (shorter side to 256, center crop 224, /255, ImageNet mean/std)
and to a plain resize to the input size otherwise; the flags override it.
Labels default to the ImageNet class names for 1000-class models.`,
		Example: `  edge-resnet convert resnet50.onnx -o resnet50.ern
  edge-resnet convert cifar.onnx -o cifar.ern --labels classes.txt --resize 0 --mean 0.4914,0.4822,0.4465 --std 0.247,0.243,0.261
  edge-resnet convert tiny.onnx -o tiny.ern --scale 1 --mean 0,0,0 --std 1,1,1   # raw 0..255 input
  edge-resnet convert resnet20.safetensors --arch cifar-resnet20 -o r20.ern --labels cifar10.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "output model image (required)")
	fl.StringVar(&f.labels, "labels", "", "class names: a text file (one per line) or an imagenet_class_index.json-style file")
	fl.StringVar(&f.size, "size", "", "input size HxW, for models with symbolic or other spatial dims")
	fl.IntVar(&f.resize, "resize", -1, "resize the shorter side to N before center-cropping to the input size; 0 resizes straight to the input size")
	fl.StringVar(&f.mean, "mean", "", "per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406")
	fl.StringVar(&f.std, "std", "", "per-channel standard deviation divided by, e.g. 0.229,0.224,0.225")
	fl.Float32Var(&f.scale, "scale", 0, "multiply 0..255 pixels by this before mean/std (default 1/255; 1 for raw-pixel models)")
	fl.BoolVar(&f.bgr, "bgr", false, "the model takes BGR channel order")
	fl.StringVar(&f.name, "name", "", "model name recorded in the image (default: the input file name)")
	fl.StringVar(&f.arch, "arch", "", "architecture of a .safetensors input, e.g. resnet50, resnext50_32x4d, wide_resnet50_2 or cifar-resnet20")
	fl.StringVar(&f.shortcut, "shortcut", "", "shortcut of a .safetensors input where shapes change: A (zero-pad, centered), A-end (zero-pad after), B (1x1 projection)")
	fl.BoolVar(&f.strideOn1x1, "stride-on-1x1", false, "a .safetensors bottleneck has its stride on the first 1x1 (original paper) instead of the 3x3")
	fl.BoolVar(&f.convBias, "conv-bias", false, "the convolutions of a .safetensors input have biases")
	cmd.MarkFlagRequired("output")
	return cmd
}

func parseFloats(s string) ([]float32, error) {
	var out []float32
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

func parseSize(s string) (h, w int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		h, err = strconv.Atoi(a)
		if err == nil {
			w, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || h < 1 || w < 1 {
		return 0, 0, fmt.Errorf("--size %q: want HxW, e.g. 224x224", s)
	}
	return h, w, nil
}

// runConvert imports in (ONNX, or safetensors with --arch), applies the
// preprocessing flags, checks that the model compiles and writes it to -o.
func runConvert(cmd *cobra.Command, f convertFlags, in string) error {
	opt, err := importOptions(f, in)
	if err != nil {
		return err
	}
	var fm *firmware.Model
	if strings.EqualFold(filepath.Ext(in), ".safetensors") {
		fm, err = importSafetensors(f, in, opt)
	} else {
		fm, err = importONNX(f, in, opt)
	}
	if err != nil {
		return err
	}
	if err := applyPreprocessFlags(&fm.Meta.Preprocess, f); err != nil {
		return err
	}
	// Compile once to check that the model runs (labels match outputs,
	// preprocessing matches the input) before writing anything.
	m, err := fromModel(fm)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	defer m.Close()
	if err := m.WriteFile(f.out); err != nil {
		return err
	}
	st, err := os.Stat(f.out)
	if err != nil {
		return err
	}
	in0 := m.Plan().InputShape()
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s, input %dx%dx%d, %d outputs, %d labels, %.1f MB\n",
		f.out, fm.Meta.Name, in0.H, in0.W, in0.C, m.Plan().OutputShape().Size(), len(fm.Meta.Labels), float64(st.Size())/1e6)
	return nil
}

// importOptions checks the flags that do not depend on the input's format
// (before any file is read) and turns them into import options.
func importOptions(f convertFlags, in string) (edgeresnet.ImportOptions, error) {
	var opt edgeresnet.ImportOptions
	var err error
	if err := refuseOverwrite(in, f.out); err != nil {
		return opt, err
	}
	if f.resize < -1 {
		return opt, fmt.Errorf("--resize %d: want N >= 1, 0 (straight to the input size) or -1 (the default)", f.resize)
	}
	if f.size != "" {
		if opt.Height, opt.Width, err = parseSize(f.size); err != nil {
			return opt, err
		}
	}
	if f.labels != "" {
		if opt.Labels, err = edgeresnet.ReadLabelsFile(f.labels); err != nil {
			return opt, err
		}
	}
	opt.Name = f.name
	return opt, nil
}

// importSafetensors imports weights-only safetensors with the architecture
// given by --arch, --shortcut, --stride-on-1x1 and --conv-bias.
func importSafetensors(f convertFlags, in string, opt edgeresnet.ImportOptions) (*firmware.Model, error) {
	if f.arch == "" {
		return nil, fmt.Errorf("%s holds only weights: give the architecture with --arch", in)
	}
	cfg, err := edgeresnet.ParseArch(f.arch)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(f.shortcut) {
	case "":
	case "A":
		cfg.Shortcut = resnet.ShortcutA
	case "A-END":
		cfg.Shortcut = resnet.ShortcutAEnd
	case "B":
		cfg.Shortcut = resnet.ShortcutB
	default:
		return nil, fmt.Errorf("--shortcut %q: want A, A-end or B", f.shortcut)
	}
	cfg.StrideOn1x1, cfg.ConvBias = f.strideOn1x1, f.convBias
	return edgeresnet.ImportSafetensorsFile(in, cfg, opt)
}

// importONNX imports an ONNX file, which describes its own graph: the
// architecture flags are refused.
func importONNX(f convertFlags, in string, opt edgeresnet.ImportOptions) (*firmware.Model, error) {
	if f.arch != "" || f.shortcut != "" || f.strideOn1x1 || f.convBias {
		return nil, fmt.Errorf("--arch, --shortcut, --stride-on-1x1 and --conv-bias are for .safetensors inputs; an ONNX file describes its own graph")
	}
	return edgeresnet.ImportONNXFile(in, opt)
}

// applyPreprocessFlags overrides the imported preprocessing with the
// flags that were given (--bgr always).
func applyPreprocessFlags(spec *preprocess.Spec, f convertFlags) error {
	var err error
	if f.resize >= 0 {
		spec.Resize = f.resize
	}
	if f.mean != "" {
		if spec.Mean, err = parseFloats(f.mean); err != nil {
			return fmt.Errorf("--mean: %w", err)
		}
	}
	if f.std != "" {
		if spec.Std, err = parseFloats(f.std); err != nil {
			return fmt.Errorf("--std: %w", err)
		}
	}
	if f.scale != 0 {
		spec.Scale = f.scale
	}
	spec.BGR = f.bgr
	return nil
}
