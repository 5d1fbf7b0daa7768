#!/usr/bin/python3
"""Make the small ResNet ONNX fixtures in testdata/models/.

What it makes
  For every model in MODELS below (tiny widths, random but realistic weights):
    testdata/models/NAME.onnx         plain eval-mode export, do_constant_folding=True
                                      (torch folds every BatchNorm into the Conv before it)
    testdata/models/NAME_bn.onnx      export of the same eval model with
                                      training=TrainingMode.PRESERVE, do_constant_folding=False:
                                      BatchNormalization nodes and the constant shape
                                      subgraphs (Shape/Gather/ConstantOfShape/... feeding Pad) stay
    testdata/models/NAME.input.npy    one input, float32 NCHW [1,C,H,W], standard normal
    testdata/models/NAME.logits.npy   PyTorch's output for it, float32 [1,classes]
                                      (probabilities for the model that ends in Softmax)
  and testdata/models/README.md, a table of what each file covers, with sizes and sha256.

  The ResNet definition is this file's own and covers the whole family:
    layout   "imagenet": conv7x7/2 (pad 3) -> BN -> ReLU -> maxpool 3x3/2 (pad 1) -> 4 stages
             (planes width*1,2,4,8; stride 1,2,2,2) -> head
             "cifar":    conv3x3/1 (pad 1) -> BN -> ReLU -> 3 stages (planes w0,w1,w2;
             stride 1,2,2) -> head
    block    "basic" (two 3x3, expansion 1; ResNet-18/34 and CIFAR ResNets) or "bottleneck"
             (1x1 -> 3x3 -> 1x1, expansion 4; ResNet-50/101/152)
    stride   for bottlenecks: on the 3x3 ("v1.5", torchvision) or on the first 1x1
             ("v1", the original paper / TF-slim)
    shortcut where the shape changes: "B" = 1x1 conv (stride s) + BN projection;
             "A" = parameter-free: x[:, :, ::2, ::2] when s = 2, then zero-pad the channel
             axis with F.pad, either symmetrically ((out-in)//2 before, rest after; for
             out = 2*in that is planes//4 before and after, as in the common CIFAR code) or
             TF-style (all zero channels after)
    bias     convs with or without bias (BN still follows every conv)
    head     global average pool -> flatten -> fc, or AvgPool2d(k, s, p, count_include_pad)
             leaving a non-1x1 map -> torch.flatten (NCHW order) -> fc; optional Softmax
    maxpool  ceil_mode on or off (imagenet layout)

  Weights: He-normal convs (kaiming_normal_, fan_out, ReLU gain), conv biases U(-0.1,0.1),
  BN gamma U(0.5,1.5), beta U(-0.2,0.2), running_mean U(-0.5,0.5), running_var U(0.5,2),
  eps 1e-5, fc PyTorch default init. Everything is seeded (SEED + model index), runs in
  float32 on the CPU, and the model is in eval mode.

  Verification (printed; the script fails if a check fails): onnx.checker (full_check) on
  every file; both exports evaluated with tools/onnx_eval.py (an independent numpy ONNX
  evaluator written for this project) and compared with PyTorch's output; the folded export
  must have no BatchNormalization and the _bn export one per BatchNorm2d. If
  /work/shared/data/tools/onnx_numpy.py exists it is imported read-only as a second,
  optional cross-check where it supports the graph.

Install (Debian bookworm):
  apt-get install python3-torch python3-onnx python3-numpy
Run (from the repository root, with Debian's python):
  /usr/bin/python3 tools/make_fixtures.py            # writes testdata/models/
  /usr/bin/python3 tools/make_fixtures.py --out DIR  # writes DIR instead
"""
import argparse
import collections
import hashlib
import io
import os
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import onnx_eval  # noqa: E402

SEED = 1234

# ------------------------------------------------------------------ the fixtures
# Every option of the family appears in at least one model; see README_ROWS.
MODELS = [
    dict(name="in_basic_b", layout="imagenet", block="basic", layers=(2, 1, 1, 1), width=8,
         shortcut="B", bias=False, in_shape=(3, 40, 56), classes=10, opset=13,
         covers="ImageNet layout, basic blocks (ResNet-18/34 style) [2,1,1,1] width 8, "
                "shortcut B (1x1 conv+BN projection), convs without bias, 40x56 input, "
                "global average pool, opset 13"),
    dict(name="in_basic_a_1ch", layout="imagenet", block="basic", layers=(1, 1, 1, 1), width=8,
         shortcut="A", apad="sym", bias=True, in_shape=(1, 33, 47), classes=7, opset=13,
         pool_ceil=True, softmax=True,
         covers="ImageNet layout, basic blocks [1,1,1,1] width 8, shortcut A symmetric "
                "(subsample + planes//4 zero channels before and after), convs with bias, "
                "1-channel odd 33x47 input, MaxPool ceil_mode=True (17x24 -> 9x13, "
                "floor would give 9x12), Softmax output (probabilities), opset 13"),
    dict(name="in_bottleneck_v15_b", layout="imagenet", block="bottleneck", layers=(1, 1, 1, 1),
         width=8, stride_on="3x3", shortcut="B", bias=False, in_shape=(3, 33, 47), classes=7,
         opset=17,
         covers="ImageNet layout, bottleneck blocks (ResNet-50 style, expansion 4) [1,1,1,1] "
                "width 8, stride on the 3x3 (torchvision v1.5), shortcut B (also on the "
                "stride-1 first stage, 8->32 channels), no bias, odd 33x47 input, opset 17 "
                "(BatchNormalization-15 in the _bn file)"),
    dict(name="in_bottleneck_v1_a_after", layout="imagenet", block="bottleneck",
         layers=(2, 1, 1, 1), width=8, stride_on="1x1", shortcut="A", apad="after", bias=True,
         in_shape=(3, 40, 56), classes=10, opset=13,
         covers="ImageNet layout, bottleneck blocks [2,1,1,1] width 8, stride on the first "
                "1x1 (original paper / TF v1), shortcut A TF-style (all zero channels after; "
                "stage 1 pads 8->32 channels without subsampling), convs with bias, 40x56 "
                "input, opset 13"),
    dict(name="cifar8_a_flatten", layout="cifar", n=1, widths=(4, 8, 16), shortcut="A",
         apad="sym", bias=False, in_shape=(3, 16, 24), classes=10, opset=13,
         head=dict(k=2, s=2, p=0, cip=True),
         covers="CIFAR layout depth 8 (n=1) widths 4/8/16, shortcut A symmetric (planes//4 "
                "before and after), 16x24 input; head AvgPool 2x2/2 leaving 2x3 (non-square) "
                "-> torch.flatten (16*2*3 = 96, NCHW order) -> fc; opset 13"),
    dict(name="cifar14_b_opset9", layout="cifar", n=2, widths=(4, 8, 16), shortcut="B",
         bias=True, in_shape=(1, 20, 28), classes=7, opset=9,
         head=dict(k=3, s=2, p=1, cip=False),
         covers="CIFAR layout depth 14 (n=2) widths 4/8/16, shortcut B, convs with bias, "
                "1-channel 20x28 input; head AvgPool 3x3/2 pad 1 count_include_pad=False "
                "(5x7 -> 3x4) -> flatten (192) -> fc; opset 9 (BatchNormalization-9, "
                "AveragePool-7)"),
    dict(name="cifar8_a_after_opset10", layout="cifar", n=1, widths=(4, 8, 16), shortcut="A",
         apad="after", bias=False, in_shape=(3, 32, 32), classes=10, opset=10,
         covers="CIFAR layout depth 8 widths 4/8/16, shortcut A TF-style (zeros after), "
                "32x32 input, global average pool; opset 10: Pad-2 with the pads as an "
                "attribute and Slice-10 with steps as inputs (opset 9 cannot export the "
                "strided slice)"),
]


# ------------------------------------------------------------------ the network
class ShortcutA(nn.Module):
    """Parameter-free shortcut: subsample, then zero-pad the channel axis."""

    def __init__(self, cin, cout, stride, apad):
        super().__init__()
        assert cout >= cin and stride in (1, 2)
        extra = cout - cin
        self.before = extra // 2 if apad == "sym" else 0
        self.after = extra - self.before
        self.stride = stride

    def forward(self, x):
        if self.stride == 2:
            x = x[:, :, ::2, ::2]
        # F.pad pads the last axis first: (W left, W right, H top, H bottom, C before, C after)
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


def make_shortcut(cin, cout, stride, cfg):
    if stride == 1 and cin == cout:
        return nn.Identity()
    if cfg["shortcut"] == "B":
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=cfg["bias"]),
                             nn.BatchNorm2d(cout))
    return ShortcutA(cin, cout, stride, cfg["apad"])


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, cfg):
        super().__init__()
        b = cfg["bias"]
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=b)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=b)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = make_shortcut(cin, planes, stride, cfg)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, cfg):
        super().__init__()
        b = cfg["bias"]
        s1, s3 = (stride, 1) if cfg.get("stride_on", "3x3") == "1x1" else (1, stride)
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, s1, 0, bias=b)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, s3, 1, bias=b)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, 1, 0, bias=b)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = make_shortcut(cin, out, stride, cfg)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        cin, b = cfg["in_shape"][0], cfg["bias"]
        block = Bottleneck if cfg.get("block", "basic") == "bottleneck" else Basic
        if cfg["layout"] == "imagenet":
            w = cfg["width"]
            self.conv1 = nn.Conv2d(cin, w, 7, 2, 3, bias=b)
            self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=cfg.get("pool_ceil", False))
            planes = [w, 2 * w, 4 * w, 8 * w]
            counts, strides, c = cfg["layers"], (1, 2, 2, 2), w
        else:
            w = cfg["widths"][0]
            self.conv1 = nn.Conv2d(cin, w, 3, 1, 1, bias=b)
            self.maxpool = None
            planes = list(cfg["widths"])
            counts, strides, c = (cfg["n"],) * 3, (1, 2, 2), w
        self.bn1 = nn.BatchNorm2d(w)
        stages = []
        for p, n, s in zip(planes, counts, strides):
            blocks = []
            for j in range(n):
                blocks.append(block(c, p, s if j == 0 else 1, cfg))
                c = p * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        h = cfg.get("head")
        self.pool = (nn.AvgPool2d(h["k"], h["s"], h["p"], count_include_pad=h["cip"])
                     if h else None)
        with torch.no_grad():
            feat = self.features(torch.zeros(1, *cfg["in_shape"]))
        self.feature_shape = tuple(feat.shape[1:])
        self.fc = nn.Linear(feat[0].numel(), cfg["classes"])

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.stages(x)
        if self.pool is None:
            return F.adaptive_avg_pool2d(x, 1)
        return self.pool(x)

    def forward(self, x):
        x = self.fc(torch.flatten(self.features(x), 1))
        if self.cfg.get("softmax"):
            x = torch.softmax(x, dim=1)
        return x


def randomize(model):
    """He-normal convs and randomized BN statistics/affine, all from torch's global RNG."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)


# ------------------------------------------------------------------ export + checks
def export(model, x, opset, out_name, preserve):
    f = io.BytesIO()
    kw = (dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
          if preserve else dict(training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, f, opset_version=opset, input_names=["input"],
                          output_names=[out_name], **kw)
    return f.getvalue()


def load_shared_numpy_interpreter():
    path = "/work/shared/data/tools/onnx_numpy.py"
    if not os.path.exists(path):
        return None
    import importlib.util
    spec = importlib.util.spec_from_file_location("shared_onnx_numpy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def op_counts(m):
    return collections.Counter(n.op_type for n in m.graph.node)


def fmt_counts(c):
    return ", ".join(f"{k} {v}" if v > 1 else k for k, v in sorted(c.items(), key=lambda kv: -kv[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "testdata", "models"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    shared = load_shared_numpy_interpreter()
    rows, failures = [], []

    for idx, cfg in enumerate(MODELS):
        name = cfg["name"]
        torch.manual_seed(SEED + idx)
        model = ResNet(cfg)
        randomize(model)
        model.eval()
        gen = torch.Generator().manual_seed(10_000 + SEED + idx)
        x = torch.randn(1, *cfg["in_shape"], generator=gen, dtype=torch.float32)
        with torch.no_grad():
            y = model(x).float()
        out_name = "probs" if cfg.get("softmax") else "logits"
        params = sum(p.numel() for p in model.parameters())
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())

        files = {}
        for suffix, preserve in (("", False), ("_bn", True)):
            blob = export(model, x, cfg["opset"], out_name, preserve)
            m = onnx.load_from_string(blob)
            onnx.checker.check_model(m, full_check=True)
            ops = op_counts(m)
            want_bn = n_bn if preserve else 0
            if ops.get("BatchNormalization", 0) != want_bn:
                failures.append(f"{name}{suffix}: {ops.get('BatchNormalization', 0)} "
                                f"BatchNormalization nodes, want {want_bn}")
            (got,) = onnx_eval.run(m, {"input": x.numpy()})
            diff = float(np.abs(got - y.numpy()).max())
            scale = float(np.abs(y.numpy()).max())
            if not diff <= 1e-4 * max(1.0, scale):
                failures.append(f"{name}{suffix}: onnx_eval differs from torch by {diff}")
            extra = ""
            if shared is not None:
                try:
                    (got2,) = shared.run(m, {"input": x.numpy()})
                    extra = f"  shared onnx_numpy |diff| {float(np.abs(got2 - y.numpy()).max()):.1e}"
                except Exception as e:  # noqa: BLE001 (optional cross-check only)
                    extra = f"  shared onnx_numpy: not applicable ({type(e).__name__}: {e})"[:110]
            fname = f"{name}{suffix}.onnx"
            with open(os.path.join(args.out, fname), "wb") as f:
                f.write(blob)
            files[fname] = dict(ops=ops, opset=onnx_eval.opset_of(m), ir=m.ir_version,
                                out_shape=declared_shape(m.graph.output[0]))
            print(f"{fname:34s} opset {cfg['opset']:2d}  nodes {sum(ops.values()):3d}  "
                  f"onnx_eval |diff| {diff:.1e}{extra}", flush=True)

        np.save(os.path.join(args.out, f"{name}.input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(args.out, f"{name}.logits.npy"), y.numpy().astype(np.float32))
        print(f"{'':34s} params {params}  feature map {model.feature_shape}  "
              f"output {out_name} {tuple(y.shape)} range [{float(y.min()):.3f}, "
              f"{float(y.max()):.3f}]  argmax {int(y.argmax())}", flush=True)
        rows.append(dict(cfg=cfg, files=files, params=params, out_name=out_name,
                         feature_shape=model.feature_shape, y=y.numpy()))

    write_readme(args.out, rows)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"all checks passed; {len(os.listdir(args.out))} files, {total} bytes in {args.out}")
    return 0


def debian_version(pkg, fallback):
    """Version of an installed Debian package (torch itself reports 1.13.0a0)."""
    import subprocess
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], check=True,
                              capture_output=True, text=True).stdout.strip() or fallback
    except (OSError, subprocess.CalledProcessError):
        return fallback


def declared_shape(vi):
    return "[" + ",".join(d.dim_param or str(d.dim_value)
                          for d in vi.type.tensor_type.shape.dim) + "]"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_readme(out, rows):
    L = [
        "# Small ResNet ONNX fixtures",
        "",
        "Tiny ResNets with random but realistic weights, exported from PyTorch to ONNX, for",
        "checking the Go importer and runtime against PyTorch. Everything here is generated by",
        "`tools/make_fixtures.py` (run `/usr/bin/python3 tools/make_fixtures.py` from the",
        "repository root; Debian bookworm python3-torch "
        f"{debian_version('python3-torch', torch.__version__)}, python3-onnx "
        f"{debian_version('python3-onnx', onnx.__version__)}). The output is",
        "deterministic (fixed seeds, float32, CPU, single thread).",
        "",
        "## How each model was made",
        "",
        "- The ResNet definition is the script's own (`ResNet`, `Basic`, `Bottleneck`,",
        "  `ShortcutA`). Convs are He-normal (fan_out, ReLU gain); conv biases, when present,",
        "  U(-0.1, 0.1). Every conv is followed by BatchNorm2d (eps 1e-5) with gamma",
        "  U(0.5, 1.5), beta U(-0.2, 0.2), running_mean U(-0.5, 0.5), running_var U(0.5, 2), so BN",
        "  folding really changes the weights. The fc layer has PyTorch's default init.",
        "- Models are in eval mode. Each is exported twice with input name `input` and a",
        "  static batch of 1:",
        "  - `NAME.onnx`: `torch.onnx.export(..., training=TrainingMode.EVAL,",
        "    do_constant_folding=True)`. torch folds each BatchNorm into the Conv before it",
        "    (so every Conv has a bias). For option-A shortcuts at opset >= 11 torch 1.13",
        "    still leaves part of the F.pad arithmetic as a subgraph of constants feeding",
        "    Pad's `pads` input: ConstantOfShape -> Concat -> Reshape -> Slice (step -1,",
        "    end -INT64_MAX, i.e. a reversal) -> Transpose -> Reshape -> Cast. An importer",
        "    has to constant-fold it. At opset 10 the pads are a plain attribute.",
        "  - `NAME_bn.onnx`: `training=TrainingMode.PRESERVE, do_constant_folding=False` on",
        "    the same eval model. It keeps one `BatchNormalization` node per BatchNorm2d",
        "    (inference form, epsilon 1e-5 as float32, momentum 0.9; `training_mode=0` from",
        "    opset 15), and for option-A shortcuts",
        "    the whole shape subgraph that computes the Pad amounts (also Shape of a",
        "    constant, Gather, Mul, Sub, Cast).",
        "- Quirks of torch 1.13 visible here: `x[:, :, ::2, ::2]` becomes two Slice nodes",
        "  (one per axis, end INT64_MAX, step 2); an AvgPool2d without padding at opset >= 11",
        "  is exported as an all-zero Pad followed by AveragePool (see `cifar8_a_flatten`);",
        "  at opset 9 AveragePool carries its pads itself and omits `count_include_pad`",
        "  (default 0); Pad's optional constant-value input is given as the empty name.",
        "- `NAME.input.npy`: float32 NCHW [1,C,H,W], standard normal (seeded).",
        "  `NAME.logits.npy`: PyTorch's float32 output for it, [1,classes]. For",
        "  `in_basic_a_1ch` the graph ends in Softmax, so the output (named `probs`) holds",
        "  probabilities; every other graph's output is named `logits`.",
        "- Both exports of every model pass `onnx.checker.check_model(full_check=True)` and",
        "  were evaluated with `tools/onnx_eval.py` (a numpy ONNX evaluator written for this",
        "  project), matching PyTorch to about 1e-6.",
        "- Shortcut A \"symmetric\" puts (out-in)//2 zero channels before the identity channels",
        "  and the rest after, which is planes//4 before and after when channels double (the",
        "  common CIFAR code). \"after\" (TF style) puts all zero channels after. With stride 2",
        "  the input is first subsampled as `x[:, :, ::2, ::2]` (rows/columns 0, 2, 4, ...).",
        "",
        "## Models",
        "",
        "| model | covers | input | classes | params | opset | feature map before head |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["cfg"]
        fs = "x".join(str(v) for v in r["feature_shape"])
        L.append(f"| `{c['name']}` | {c['covers']} | [1,{','.join(map(str, c['in_shape']))}] "
                 f"| {c['classes']} | {r['params']} | {c['opset']} | {fs} (CxHxW) |")
    L += ["", "## ONNX node types", "",
          "The output shape is as declared in the file. torch 1.13 cannot infer the batch",
          "size through an option-A Pad whose pads come from a subgraph, so those files",
          "declare a symbolic first dimension (such as `Gemmlogits_dim_0`) although the input is",
          "static [1,C,H,W]. They are left as exported.", "",
          "| file | opset | IR | output shape | nodes |", "|---|---|---|---|---|"]
    for r in rows:
        for fname, info in r["files"].items():
            L.append(f"| `{fname}` | {info['opset']} | {info['ir']} | `{info['out_shape']}` | "
                     f"{fmt_counts(info['ops'])} |")
    L += ["", "## Outputs (PyTorch, float32)", "",
          "| model | output | argmax | values |", "|---|---|---|---|"]
    for r in rows:
        vals = ", ".join(f"{v:.4f}" for v in r["y"][0])
        L.append(f"| `{r['cfg']['name']}` | `{r['out_name']}` | {int(r['y'].argmax())} | {vals} |")
    L += ["", "## Files (bytes, sha256)", "", "| file | bytes | sha256 |", "|---|---|---|"]
    names = sorted(f for f in os.listdir(out) if f != "README.md")
    for f in names:
        p = os.path.join(out, f)
        L.append(f"| `{f}` | {os.path.getsize(p)} | `{sha256(p)}` |")
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
