#!/usr/bin/python3
"""Export torchvision ResNets to ONNX for the peer comparison.

  /usr/bin/python3 bench/export_models.py [--cache DIR] [--force] [resnet18 resnet50 ...]

For each model: build torchvision's network with weights=None (no pretrained
weights can be downloaded here; speed does not depend on the values), seeded,
with non-trivial BatchNorm statistics so that BN folding is really exercised,
in eval mode; export ONNX opset 13 with a fixed [1,3,224,224] input named
"input" and output "logits"; then run the ONNX file with the small float64
NumPy interpreter below and compare it with PyTorch on one input.

Also written to the cache, for the agreement check of compare:
  input.npy                  one seeded N(0,1) float32 input [1,3,224,224]
  NAME.torch_logits.npy      PyTorch's logits for it, float32 [1,1000]

Needs Debian's python3-torch, python3-torchvision, python3-onnx and
python3-numpy (run with /usr/bin/python3).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CACHE = os.path.join(HERE, ".cache")
SHAPE = (1, 3, 224, 224)
MODELS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
          "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2")


def require():
    """Import the prerequisites or exit with a message that says what to install."""
    missing = []
    mods = {}
    for mod, pkg in (("numpy", "python3-numpy"), ("torch", "python3-torch"),
                     ("torchvision", "python3-torchvision"), ("onnx", "python3-onnx")):
        try:
            mods[mod] = __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        sys.exit(f"export_models.py: missing Python modules for {sys.executable}; "
                 f"install them with: apt-get install {' '.join(missing)} "
                 f"(and run this script with /usr/bin/python3)")
    return mods


def build(name, seed=0):
    """torchvision NAME with seeded random weights and BN statistics, eval mode."""
    import torch
    import torchvision
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; want one of {', '.join(MODELS)}")
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.rand(c, generator=g) - 0.1)
                m.running_mean.copy_(0.2 * torch.rand(c, generator=g) - 0.1)
                m.running_var.copy_(0.6 + 0.8 * torch.rand(c, generator=g))
    return model.eval()


def fixed_input(seed=1234):
    import torch
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*SHAPE, generator=g)


# ---------------------------------------------------------------------------
# A float64 NumPy interpreter for the operators of a torchvision ResNet export.

def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pad_nchw(x, pads, value=0.0):
    import numpy as np
    t, l, b, r = pads[0], pads[1], pads[2], pads[3]
    if not any((t, l, b, r)):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _windows(x, kh, kw, sh, sw):
    """[N,C,H,W] -> [N,C,OH,OW,kh,kw] view of the sliding windows."""
    from numpy.lib.stride_tricks import sliding_window_view
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _conv(x, w, b, a):
    import numpy as np
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise NotImplementedError("Conv with dilation")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("Conv with auto_pad")
    kh, kw = w.shape[2], w.shape[3]
    sh, sw = a.get("strides", [1, 1])
    win = _windows(_pad_nchw(x, a.get("pads", [0, 0, 0, 0])), kh, kw, sh, sw)
    groups = a.get("group", 1)
    cig, cog = x.shape[1] // groups, w.shape[0] // groups
    y = np.concatenate([np.einsum("ncyxij,ocij->noyx", win[:, g * cig:(g + 1) * cig], w[g * cog:(g + 1) * cog], optimize=True)
                        for g in range(groups)], axis=1)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def _maxpool(x, a):
    if any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("ceil_mode", 0):
        raise NotImplementedError("MaxPool with dilation or ceil_mode")
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    win = _windows(_pad_nchw(x, a.get("pads", [0, 0, 0, 0]), -float("inf")), kh, kw, sh, sw)
    return win.max(axis=(4, 5))


def run_onnx(model, feeds):
    """Evaluate model (onnx.ModelProto) on feeds {name: array} in float64."""
    import numpy as np
    from onnx import numpy_helper
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    env.update({k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()})
    for node in model.graph.node:
        a = _attrs(node)
        x = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Conv":
            y = _conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
        elif op == "Relu":
            y = np.maximum(x[0], 0)
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "MaxPool":
            y = _maxpool(x[0], a)
        elif op == "GlobalAveragePool":
            y = x[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = x[0].reshape(int(np.prod(x[0].shape[:ax])), -1)
        elif op == "Gemm":
            A = x[0].T if a.get("transA", 0) else x[0]
            B = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op == "BatchNormalization":
            scale, bias, mean, var = x[1:5]
            inv = scale / np.sqrt(var + a.get("epsilon", 1e-5))
            y = (x[0] - mean.reshape(1, -1, 1, 1)) * inv.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)
        else:
            raise NotImplementedError(f"operator {op} (node {node.name})")
        env[node.output[0]] = y
    return [env[o.name] for o in model.graph.output]


# ---------------------------------------------------------------------------

def export(name, cache, force, np, torch, onnx):
    path = os.path.join(cache, f"{name}.onnx")
    model = build(name)
    x = fixed_input()
    with torch.inference_mode():
        ref = model(x).numpy()
    np.save(os.path.join(cache, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(cache, f"{name}.torch_logits.npy"), ref.astype(np.float32))
    if os.path.exists(path) and not force:
        print(f"{name}: {path} exists (--force re-exports); logits for input.npy written")
        return
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, opset_version=13, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True)
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    t0 = time.time()
    got = run_onnx(m, {"input": x.numpy()})[0]
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{name}: {os.path.getsize(tmp) / 1e6:.1f} MB, opset 13, ops {','.join(ops)}; "
          f"NumPy float64 evaluation vs PyTorch: max|d|/max|logit| = {err:.2e} "
          f"(max|logit| {np.abs(ref).max():.3g}, {time.time() - t0:.1f} s)")
    if not err <= 1e-4:
        os.remove(tmp)
        sys.exit(f"{name}: the ONNX export disagrees with PyTorch ({err:.2e} > 1e-4)")
    os.replace(tmp, path)
    print(f"{name}: wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=["resnet18", "resnet50"], help="torchvision model names")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="output directory (default: bench/.cache)")
    ap.add_argument("--force", action="store_true", help="re-export even if the ONNX file exists")
    args = ap.parse_args()
    mods = require()
    os.makedirs(args.cache, exist_ok=True)
    mods["torch"].set_num_threads(os.cpu_count() or 1)
    for name in args.models:
        export(name, args.cache, args.force, mods["numpy"], mods["torch"], mods["onnx"])


if __name__ == "__main__":
    main()
