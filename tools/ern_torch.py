#!/usr/bin/python3
"""Run an edge-resnet model image (.ern, fp32) in PyTorch, independently of Go.

It reads the file as docs/FORMAT.md describes it (header, JSON manifest,
64-byte aligned blob; both CRC-32C checks) and evaluates the graph node by
node with torch.nn.functional, in NCHW: the reference that the Go engine's
results on a model trained by `edge-resnet train` are compared with (the
embedded default model: tools/make_default_model.sh).

Ops: Input, Conv (groups, dilation, asymmetric padding, fused ReLU), Add,
Relu, Affine, Pad, Slice, Concat, MaxPool, AvgPool, GlobalAvgPool, Flatten,
Dense, Softmax; anything else (and int8 weights) is refused by name.

Usage:
  tools/ern_torch.py MODEL.ern --npy IN.npy --out LOGITS.npy
      logits of the [N,C,H,W] float32 inputs of IN.npy, one image at a time
  tools/ern_torch.py MODEL.ern --samples testdata/samples
      rewrite DIR/expected.json: PyTorch's top-1 class and probability for
      each PNG listed there (the model's preprocessing: u8·scale, mean/std)
  tools/ern_torch.py MODEL.ern --idx IMAGES.gz [--labels LABELS.gz]
      top-1 accuracy on a 28x28 grayscale IDX set (Fashion-MNIST), as JSON
"""
import argparse
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = b"EDGERN\x00\x1a"


def crc32c(data):
    """CRC-32C (Castagnoli), bytewise; slow but only run on small models."""
    table = crc32c.table
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
        crc32c.table = table
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


crc32c.table = None


def read_ern(path):
    raw = open(path, "rb").read()
    if raw[:8] != MAGIC:
        raise SystemExit(f"{path}: not an edge-resnet model image (magic {raw[:8]!r})")
    (hsize,) = struct.unpack_from("<I", raw, 12)
    mo, ml, bo, bl = struct.unpack_from("<QQQQ", raw, 16)
    (pcrc,) = struct.unpack_from("<I", raw, 48)
    (hcrc,) = struct.unpack_from("<I", raw, hsize - 4)
    if crc32c(raw[:hsize - 4]) != hcrc or bo + bl != len(raw):
        raise SystemExit(f"{path}: corrupt header")
    if crc32c(raw[hsize:]) != pcrc:
        raise SystemExit(f"{path}: payload CRC mismatch")
    man = json.loads(raw[mo:mo + ml])
    blob = memoryview(raw)[bo:bo + bl]
    tensors = {}
    for t in man["tensors"]:
        if t["dtype"] != "f32":
            continue
        a = np.frombuffer(blob[t["offset"]:t["offset"] + t["nbytes"]], dtype="<f4")
        tensors[t["name"]] = torch.from_numpy(a.reshape(t["shape"]).copy())
    return man, tensors


def pads(p):
    p = p or {}
    return [p.get(k, 0) for k in ("left", "right", "top", "bottom")]


class Graph:
    def __init__(self, man, tensors):
        self.meta, self.nodes, self.out = man["meta"], man["graph"]["nodes"], man["graph"]["output"]
        self.t = tensors

    def w(self, attrs, key):
        name = attrs.get(key)
        if name is None:
            return None
        if name not in self.t:
            raise SystemExit(f"tensor {name}: missing or not f32 (int8-only models are not supported)")
        return self.t[name]

    def run(self, x):
        vals = []
        for i, n in enumerate(self.nodes):
            ins = [vals[j] for j in n.get("inputs", [])]
            y = self.node(n, ins, x)
            if n.get("relu"):
                y = F.relu(y)
            vals.append(y)
        return vals[self.out]

    def node(self, n, ins, x):
        op = n["op"]
        if op == "Input":
            return x
        if op == "Conv":
            a = n["conv"]
            w = self.w(a, "weight").permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            y = F.pad(ins[0], pads(a.get("pad")))
            y = F.conv2d(y, w, self.w(a, "bias"), stride=(a["stride_h"], a["stride_w"]),
                         dilation=(a.get("dil_h", 1), a.get("dil_w", 1)), groups=a.get("group", 1) or 1)
            if len(ins) > 1:  # fused residual
                y = y + ins[1]
            return y
        if op == "Add":
            return ins[0] + ins[1]
        if op == "Relu":
            return F.relu(ins[0])
        if op == "Affine":
            a = n["affine"]
            return ins[0] * self.w(a, "scale").view(1, -1, 1, 1) + self.w(a, "shift").view(1, -1, 1, 1)
        if op == "Pad":
            a = n["pad"]
            b, e = a["before"], a["after"]  # H, W, C
            return F.pad(ins[0], (b[1], e[1], b[0], e[0], b[2], e[2]), value=a.get("value", 0.0))
        if op == "Slice":
            a = n["slice"]
            s, e, st = a["start"], a["end"], a["step"]
            return ins[0][:, s[2]:e[2]:st[2], s[0]:e[0]:st[0], s[1]:e[1]:st[1]]
        if op == "Concat":
            return torch.cat(ins, dim={"C": 1, "H": 2, "W": 3}[n["concat"]["axis"]])
        if op in ("MaxPool", "AvgPool"):
            a = n["pool"]
            k, s, p = (a["kh"], a["kw"]), (a["stride_h"], a["stride_w"]), pads(a.get("pad"))
            if op == "MaxPool":
                y = F.pad(ins[0], p, value=float("-inf"))
                return F.max_pool2d(y, k, s, ceil_mode=a.get("ceil_mode", False))
            if p[0] != p[1] or p[2] != p[3]:
                raise SystemExit(f"node {n['name']}: asymmetric average-pool padding")
            return F.avg_pool2d(ins[0], k, s, padding=(p[2], p[0]), ceil_mode=a.get("ceil_mode", False),
                                count_include_pad=a.get("count_include_pad", False))
        if op == "GlobalAvgPool":
            return ins[0].mean(dim=(2, 3), keepdim=True)
        if op == "Flatten":
            if ins[0].shape[2] * ins[0].shape[3] != 1:  # the element order would matter
                raise SystemExit(f"node {n['name']}: Flatten of a {tuple(ins[0].shape)} tensor")
            return ins[0]
        if op == "Dense":
            a = n["dense"]
            if ins[0].shape[2] * ins[0].shape[3] != 1:
                raise SystemExit(f"node {n['name']}: Dense on a {tuple(ins[0].shape)} tensor")
            v = ins[0].reshape(ins[0].shape[0], -1)
            y = v @ self.w(a, "weight")
            if a.get("bias"):
                y = y + self.w(a, "bias")
            return y.reshape(y.shape[0], -1, 1, 1)
        if op == "Softmax":
            return torch.softmax(ins[0].reshape(ins[0].shape[0], -1), 1).reshape(ins[0].shape)
        raise SystemExit(f"node {n['name']}: op {op} is not supported here")

    def logits(self, x):
        with torch.no_grad():
            y = self.run(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return y.reshape(y.shape[0], -1).numpy()

    def preprocess(self, u8):
        """u8 [N,H,W] grayscale -> float32 [N,1,H,W] by the model's own spec."""
        p = self.meta["preprocess"]
        x = u8.astype(np.float32) * np.float32(p["scale"])
        x = (x - np.float32(p["mean"][0])) / np.float32(p["std"][0])
        return x[:, None]


def read_idx(path):
    raw = gzip.open(path).read()
    nd = raw[3]
    dims = struct.unpack_from(">" + "I" * nd, raw, 4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--npy")
    ap.add_argument("--out")
    ap.add_argument("--samples")
    ap.add_argument("--idx")
    ap.add_argument("--labels")
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = Graph(*read_ern(args.model))
    if args.npy:
        x = np.load(args.npy)
        y = np.concatenate([g.logits(x[i:i + 1]) for i in range(len(x))]).astype(np.float32)
        np.save(args.out, y)
        print(f"{args.out}: {y.shape} logits of {args.npy}")
    if args.samples:
        from PIL import Image
        path = f"{args.samples}/expected.json"
        exp = json.load(open(path))
        labels = g.meta.get("labels") or []
        for r in exp["samples"]:
            u8 = np.asarray(Image.open(f"{args.samples}/{r['file']}").convert("L"))
            lg = g.logits(g.preprocess(u8[None]))[0].astype(np.float64)
            e = np.exp(lg - lg.max())
            p = e / e.sum()
            k = int(p.argmax())
            r["predicted"], r["probability"] = k, round(float(p[k]), 6)
            r["predicted_name"] = labels[k] if k < len(labels) else str(k)
            print(f"  {r['file']:22s} {r['predicted_name']:12s} {p[k]:.4f}")
        exp["model"] = args.model
        exp["evaluator"] = "tools/ern_torch.py (PyTorch " + torch.__version__ + ")"
        with open(path, "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
        print("wrote", path)
    if args.idx:
        u8 = read_idx(args.idx)
        lab = read_idx(args.labels or args.idx.replace("images-idx3", "labels-idx1"))
        x = g.preprocess(u8)
        pred = np.concatenate([g.logits(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
        correct = int((pred == lab).sum())
        print(json.dumps({"model": args.model, "images": len(lab), "correct": correct,
                          "top1": round(correct / len(lab), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
