#!/usr/bin/python3
"""Write a QDQ int8 ONNX of the seeded torchvision ResNets, for ONNX Runtime.

  /usr/bin/python3 bench/export_qdq.py [--cache DIR] [-n 96] [--check 8] [resnet18 resnet50 ...]

Input: CACHE/NAME.onnx, the fp32 export of bench/export_models.py (run it
first; BatchNorm is already folded into the convolutions there). Output:

  CACHE/NAME.qdq.onnx    the same graph in ONNX Runtime's QDQ form:
    - weights int8, symmetric per output channel (scale = max|w|/127, values
      in [-127, 127]) as initializers + DequantizeLinear(axis 0); biases
      int32 with scale = input scale x weight scale, zero point 0, as ONNX
      Runtime's own quantizer writes them, so that it fuses QLinearConv;
    - activations uint8 per tensor, QuantizeLinear -> DequantizeLinear on
      the input and on every Conv, Add and GlobalAveragePool output; a Relu
      that is the only consumer of a Conv/Add output is dropped and its
      range (zero point 0) quantizes that output, which clamps the same
      way; MaxPool and Flatten keep their input's parameters (ONNX Runtime
      runs them on uint8 directly); the logits stay float;
    - ranges: min/max (widened to include 0) observed while running the fp32
      graph in PyTorch on the calibration images below.
  CACHE/calib/           the calibration images as lossless PNGs of the
      decoded pixels, at their original size, in the order used: the four
      photos of ../shared/data/images/skimage, then the first N images of
      cifar10_train_calib500_jpeg.zip. `edge-resnet quantize --calib
      CACHE/calib -n COUNT` reads the same pixels; both runtimes apply the
      model's preprocessing (resize 256, center crop 224, ImageNet mean/std;
      edge-resnet reproduces Pillow's resize bit for bit).
  CACHE/NAME.qdq.json    the per-tensor ranges and parameters, and the check
      below.
  CACHE/check.npy, CACHE/NAME.check_torch_logits.npy   the first held-out
      input (preprocessed, [1,3,224,224]) and PyTorch's fp32 logits for it:
      bench/cmd/compare checks every int8 runtime against them.

Check: --check K inputs that were not calibrated on (the CIFAR-10 test
images after the calibration ones, same preprocessing) go through ONNX
Runtime (node bench/ort_bench.mjs --logits) with the QDQ model, and are
compared with PyTorch fp32: top-1 agreement and cosine of the logits.

Needs Debian's python3-torch, python3-torchvision, python3-onnx,
python3-numpy, python3-pil (run with /usr/bin/python3); Node.js with
bench/node_modules for the check.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_models  # noqa: E402

DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def require():
    missing = []
    for mod, pkg in (("numpy", "python3-numpy"), ("torch", "python3-torch"),
                     ("torchvision", "python3-torchvision"), ("onnx", "python3-onnx"),
                     ("PIL", "python3-pil")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        sys.exit(f"export_qdq.py: missing Python modules for {sys.executable}; "
                 f"install them with: apt-get install {' '.join(missing)}")


# ---------------------------------------------------------------------------
# Images

def photo_paths(data):
    d = os.path.join(data, "images", "skimage")
    return [os.path.join(d, f) for f in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")]


def zip_images(path, n, skip=0):
    """The first n image entries (sorted names) after skip, as (name, PIL image)."""
    from PIL import Image
    with zipfile.ZipFile(path) as z:
        names = sorted(x for x in z.namelist() if x.lower().endswith((".jpg", ".jpeg", ".png")))
        out = []
        for name in names[skip:skip + n]:
            img = Image.open(io.BytesIO(z.read(name)))
            img.load()
            out.append((name, img))
        return out


def write_calib(calib_dir, images):
    """Store the decoded pixels losslessly, named so that sorted order is
    the calibration order."""
    os.makedirs(calib_dir, exist_ok=True)
    for f in os.listdir(calib_dir):
        if f.endswith(".png"):
            os.remove(os.path.join(calib_dir, f))
    paths = []
    for i, (name, img) in enumerate(images):
        base = os.path.splitext(name.replace("/", "_"))[0]
        p = os.path.join(calib_dir, f"{i:04d}_{base}.png")
        img.convert("RGB").save(p)
        paths.append(p)
    return paths


def preprocess(img):
    """torchvision's ImageNet evaluation transform: Resize(256),
    CenterCrop(224), ToTensor, Normalize -> [1,3,224,224] float32."""
    from torchvision import transforms
    t = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                            transforms.Normalize(MEAN, STD)])
    return t(img.convert("RGB")).unsqueeze(0)


# ---------------------------------------------------------------------------
# The fp32 graph run with PyTorch ops, recording every tensor's range.

def attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def run_graph(model, x, ranges=None):
    """Evaluate the ONNX graph (the ops of a torchvision ResNet export) on x
    with torch float32; update ranges {tensor: [min, max]}; return the logits."""
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper
    env = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    env[model.graph.input[0].name] = x

    def seen(name, v):
        if ranges is not None:
            lo, hi = float(v.min()), float(v.max())
            r = ranges.setdefault(name, [lo, hi])
            r[0], r[1] = min(r[0], lo), max(r[1], hi)

    seen(model.graph.input[0].name, x)
    for node in model.graph.node:
        a = attrs(node)
        i = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Conv":
            p = a.get("pads", [0, 0, 0, 0])
            if p[0] != p[2] or p[1] != p[3] or a.get("group", 1) != 1:
                raise NotImplementedError(f"{node.name}: asymmetric pads or groups")
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=tuple(a.get("strides", [1, 1])),
                         padding=(p[0], p[1]), dilation=tuple(a.get("dilations", [1, 1])))
        elif op == "Relu":
            y = torch.relu(i[0])
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "MaxPool":
            p = a.get("pads", [0, 0, 0, 0])
            y = F.max_pool2d(i[0], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])), (p[0], p[1]),
                             ceil_mode=bool(a.get("ceil_mode", 0)))
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            y = torch.flatten(i[0], a.get("axis", 1))
        elif op == "Gemm":
            A = i[0].t() if a.get("transA", 0) else i[0]
            B = i[1].t() if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2 and i[2] is not None:
                y = y + a.get("beta", 1.0) * i[2]
        else:
            raise NotImplementedError(f"operator {op} (node {node.name})")
        env[node.output[0]] = y
        seen(node.output[0], y)
    return env[model.graph.output[0].name]


# ---------------------------------------------------------------------------
# Quantization and the QDQ graph

def act_params(lo, hi):
    """uint8 asymmetric: the range widened to include 0 (so that 0 is exact,
    as padding needs), scale = (hi-lo)/255, zero = round(-lo/scale)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zero = int(round(-lo / scale))
    return float(scale), max(0, min(255, zero))


def weight_params(w):
    """int8 symmetric per output channel (axis 0)."""
    import numpy as np
    m = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scale


def build_qdq(model, ranges):
    """Return the QDQ ModelProto and the table of activation parameters."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    out_name = g.output[0].name

    # Relu nodes that go away: the only consumer of a Conv or Add output.
    producer = {o: n for n in g.node for o in n.output}
    dropped = {}  # relu output -> relu input
    for n in g.node:
        if n.op_type == "Relu":
            src = producer.get(n.input[0])
            if src is not None and src.op_type in ("Conv", "Add") and len(consumers[n.input[0]]) == 1 \
                    and n.output[0] != out_name:
                dropped[n.output[0]] = n.input[0]

    def alias(name):  # a dropped Relu's output is its input's quantized value
        return dropped.get(name, name)

    # Activation parameters per tensor (after aliasing), and the range
    # each came from.
    params, used_range = {}, {}

    def observe(t, r):
        params[t], used_range[t] = act_params(*ranges[r]), ranges[r]

    inp = g.input[0].name
    observe(inp, inp)
    for n in g.node:
        o = n.output[0]
        if n.op_type == "Relu" and o in dropped:
            observe(dropped[o], o)  # the post-ReLU range: zero point 0
        elif n.op_type in ("Conv", "Add", "GlobalAveragePool") and o != out_name:
            if not any(c.op_type == "Relu" and c.output[0] in dropped for c in consumers.get(o, [])):
                observe(o, o)
        elif n.op_type in ("MaxPool", "Flatten"):
            a = alias(n.input[0])
            params[o], used_range[o] = params[a], used_range[a]
        elif n.op_type == "Relu":
            observe(o, o)

    new_inits, nodes = [], []

    def const(name, arr):
        new_inits.append(numpy_helper.from_array(arr, name))
        return name

    # Scales and zero points of each quantized activation.
    qp = {}
    for t, (s, z) in params.items():
        qp[t] = (const(t + "_scale", np.array(s, dtype=np.float32)), const(t + "_zero_point", np.array(z, dtype=np.uint8)))

    def qdq(t):
        """Q -> DQ of activation t; returns the dequantized name."""
        s, z = qp[t]
        nodes.append(helper.make_node("QuantizeLinear", [t, s, z], [t + "_q"], name=t + "_Q"))
        nodes.append(helper.make_node("DequantizeLinear", [t + "_q", s, z], [t + "_dq"], name=t + "_DQ"))
        return t + "_dq"

    dq_of = {inp: qdq(inp)}
    nq = 0
    for n in g.node:
        if n.op_type == "Relu" and n.output[0] in dropped:
            dq_of[n.output[0]] = dq_of[dropped[n.output[0]]]
            continue
        ins = [dq_of.get(x, x) for x in n.input]
        if n.op_type in ("Conv", "Gemm"):
            w = inits[n.input[1]]
            if n.op_type == "Gemm" and not attrs(n).get("transB", 0):
                raise NotImplementedError("Gemm without transB")
            q, ws = weight_params(w)
            wn = n.input[1]
            wq = const(wn + "_quantized", q)
            wsn = const(wn + "_scale", ws)
            wz = const(wn + "_zero_point", np.zeros(len(ws), dtype=np.int8))
            nodes.append(helper.make_node("DequantizeLinear", [wq, wsn, wz], [wn + "_dq"], name=wn + "_DQ", axis=0))
            ins[1] = wn + "_dq"
            if len(n.input) > 2 and n.input[2]:
                xs = params[alias(n.input[0])][0]
                bs = (np.float32(xs) * ws).astype(np.float32)
                bq = np.round(inits[n.input[2]] / bs).astype(np.int64)
                bq = np.clip(bq, -2**31, 2**31 - 1).astype(np.int32)
                bn = n.input[2]
                bqn = const(bn + "_quantized", bq)
                bsn = const(bn + "_scale", bs)
                bz = const(bn + "_zero_point", np.zeros(len(bs), dtype=np.int32))
                nodes.append(helper.make_node("DequantizeLinear", [bqn, bsn, bz], [bn + "_dq"], name=bn + "_DQ", axis=0))
                ins[2] = bn + "_dq"
            nq += 1
        nodes.append(helper.make_node(n.op_type, ins, list(n.output), name=n.name or n.output[0], **attrs(n)))
        o = n.output[0]
        if o in params:
            dq_of[o] = qdq(o)

    used = set()
    for n in nodes:
        used.update(n.input)
    keep = [i for i in g.initializer if i.name in used]
    graph = helper.make_graph(nodes, g.name + "_qdq", list(g.input), list(g.output), keep + new_inits)
    qm = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 13)],
                           producer_name="edge-resnet bench/export_qdq.py")
    qm.ir_version = model.ir_version
    onnx.checker.check_model(qm)
    table = {t: {"scale": s, "zero_point": z, "range": used_range[t]} for t, (s, z) in params.items()}
    return qm, table, nq, len(dropped)


# ---------------------------------------------------------------------------

def ort_logits(node, qdq_path, npy_path, name):
    out = subprocess.run([node, os.path.join(HERE, "ort_bench.mjs"), "--model", qdq_path, "--name", name,
                          "--logits", npy_path], capture_output=True, text=True, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"ort_bench.mjs: {out.stderr.strip()}")
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)["logits"]
    raise RuntimeError(f"ort_bench.mjs printed no logits: {out.stdout!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=["resnet18", "resnet50"])
    ap.add_argument("--cache", default=export_models.DEFAULT_CACHE)
    ap.add_argument("--data", default=DATA, help="the shared data folder (images/)")
    ap.add_argument("-n", type=int, default=96, help="CIFAR-10 calibration images after the 4 photos")
    ap.add_argument("--check", type=int, default=8, help="held-out inputs for the ORT vs PyTorch check (0: none)")
    ap.add_argument("--node", default="node")
    args = ap.parse_args()
    args.cache = os.path.abspath(args.cache)  # ort_bench.mjs runs with cwd=HERE
    require()
    import numpy as np
    import onnx
    import torch
    from PIL import Image
    torch.set_num_threads(os.cpu_count() or 1)

    photos = []
    for p in photo_paths(args.data):
        img = Image.open(p)
        img.load()
        photos.append((os.path.basename(p), img))
    calib_zip = os.path.join(args.data, "images", "cifar10_train_calib500_jpeg.zip")
    images = photos + zip_images(calib_zip, args.n)
    calib_dir = os.path.join(args.cache, "calib")
    paths = write_calib(calib_dir, images)
    # Calibrate from the PNGs just written: exactly the pixels edge-resnet reads.
    xs = [preprocess(Image.open(p)) for p in paths]
    print(f"calibration: {len(paths)} images in {calib_dir} ({len(photos)} photos + {args.n} CIFAR-10 train)")

    test_zip = os.path.join(args.data, "images", "cifar10_test_jpeg.zip")
    held = [preprocess(img) for _, img in zip_images(test_zip, max(args.check, 1))]
    np.save(os.path.join(args.cache, "check.npy"), held[0].numpy().astype(np.float32))
    held = held[:args.check]

    for name in args.models:
        src = os.path.join(args.cache, f"{name}.onnx")
        if not os.path.exists(src):
            sys.exit(f"{src} is missing: run bench/export_models.py {name} first")
        model = onnx.load(src)
        net = export_models.build(name)
        ranges = {}
        with torch.inference_mode():
            for x in xs:
                got = run_graph(model, x, ranges)
                ref = net(x)
                err = float((got - ref).abs().max() / ref.abs().max())
                if not err <= 1e-4:
                    sys.exit(f"{name}: the graph run in torch disagrees with the PyTorch model ({err:.2e})")
        with torch.inference_mode():
            x0 = torch.from_numpy(np.load(os.path.join(args.cache, "check.npy")))
            np.save(os.path.join(args.cache, f"{name}.check_torch_logits.npy"), net(x0).numpy().astype(np.float32))
        qm, table, nq, nrelu = build_qdq(model, ranges)
        dst = os.path.join(args.cache, f"{name}.qdq.onnx")
        onnx.save(qm, dst + ".tmp")
        os.replace(dst + ".tmp", dst)
        print(f"{name}: wrote {dst} ({os.path.getsize(dst) / 1e6:.1f} MB, {nq} Conv/Gemm with int8 weights, "
              f"{len(table)} quantized activations, {nrelu} Relu folded into their producer's zero point)")

        report = {"model": name, "calibration": [os.path.basename(p) for p in paths], "activations": table}
        if held:
            agree, cos = 0, []
            rows = []
            for k, x in enumerate(held):
                npy = os.path.join(args.cache, f"check{k}.npy")
                np.save(npy, x.numpy().astype(np.float32))
                with torch.inference_mode():
                    ref = net(x).numpy().ravel().astype(np.float64)
                q = np.array(ort_logits(args.node, dst, npy, name), dtype=np.float64)
                c = float(q @ ref / (np.linalg.norm(q) * np.linalg.norm(ref)))
                same = int(q.argmax() == ref.argmax())
                agree += same
                cos.append(c)
                rows.append({"top1_torch": int(ref.argmax()), "top1_ort_int8": int(q.argmax()), "cosine": c,
                             "max_abs_diff_over_max_abs": float(np.abs(q - ref).max() / np.abs(ref).max())})
                os.remove(npy)
            report["check"] = {"inputs": len(held), "top1_agreement": agree / len(held),
                               "cosine_min": min(cos), "cosine_mean": sum(cos) / len(cos), "per_input": rows}
            print(f"{name}: ORT int8 (QDQ) vs PyTorch fp32 on {len(held)} held-out CIFAR-10 test images: "
                  f"top-1 agreement {agree}/{len(held)}, cosine of logits min {min(cos):.4f} mean {sum(cos) / len(cos):.4f}")
        with open(os.path.join(args.cache, f"{name}.qdq.json"), "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
