#!/usr/bin/python3
"""A small, independent numpy evaluator for the ONNX graphs in testdata/.

Written for edge-resnet to check its fixtures (Debian bookworm has no
onnxruntime, and onnx 1.12 has no reference evaluator). It follows the ONNX
operator specs for the opsets the fixtures use (9, 10, 13, 17): the
attribute forms of Slice/Pad/Unsqueeze before opset 10/11/13, the input forms
after, and Softmax's 2-D coercion before opset 13. Pooling output sizes with
ceil_mode follow PyTorch's rule (a window that would start in the right
padding is dropped), which is also what resnet/graph.go implements.

Float32, batch 1 or more, NCHW, 2-D convolution and pooling, groups = 1.

Usage as a module:  run(model, {"input": x}) -> list of outputs
Usage as a script:  onnx_eval.py MODEL.onnx INPUT.npy [EXPECTED.npy]
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _attrs(node):
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _np_dtype(onnx_type):
    if hasattr(helper, "tensor_dtype_to_np_dtype"):  # onnx >= 1.13
        return helper.tensor_dtype_to_np_dtype(onnx_type)
    return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[onnx_type]


def _window_out(n, k, s, pb, pa, ceil):
    span = n + pb + pa - k
    if ceil:
        o = -(-span // s) + 1
        if (o - 1) * s >= n + pb:
            o -= 1
        return o
    return span // s + 1


def _windows(xp, kh, kw, sh, sw, oh, ow):
    """[kh*kw, N, C, oh, ow] views of the padded input."""
    return np.stack([xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                     for i in range(kh) for j in range(kw)])


def conv2d(x, w, b, a):
    assert a.get("group", 1) == 1, "groups are not supported"
    assert a.get("auto_pad", "NOTSET") == "NOTSET"
    n, c, h, wd = x.shape
    m, c2, kh, kw = w.shape
    assert c == c2
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    acc = np.zeros((n, m, oh, ow), np.float64)
    w64 = w.astype(np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            acc += np.einsum("nchw,mc->nmhw", patch, w64[:, :, i, j])
    if b is not None:
        acc += b.astype(np.float64).reshape(1, -1, 1, 1)
    return acc.astype(np.float32)


def pool(x, a, kind):
    assert a.get("auto_pad", "NOTSET") == "NOTSET"
    assert a.get("dilations", [1, 1]) == [1, 1]
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    ceil = bool(a.get("ceil_mode", 0))
    n, c, h, w = x.shape
    oh = _window_out(h, kh, sh, pt, pb, ceil)
    ow = _window_out(w, kw, sw, pl, pr, ceil)
    # Extra room on the right/bottom so ceil-mode windows can hang over.
    eb = max(0, (oh - 1) * sh + kh - (h + pt + pb))
    er = max(0, (ow - 1) * sw + kw - (w + pl + pr))
    if kind == "max":
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb + eb), (pl, pr + er)), constant_values=-np.inf)
        return _windows(xp, kh, kw, sh, sw, oh, ow).max(0)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb + eb), (pl, pr + er)))
    s = _windows(xp, kh, kw, sh, sw, oh, ow).sum(0)
    if a.get("count_include_pad", 0):
        # Divide by the part of the window inside the explicitly padded input.
        inside = np.zeros((1, 1, h + pt + pb + eb, w + pl + pr + er))
        inside[:, :, :h + pt + pb, :w + pl + pr] = 1
    else:
        inside = np.zeros((1, 1, h + pt + pb + eb, w + pl + pr + er))
        inside[:, :, pt:pt + h, pl:pl + w] = 1
    cnt = _windows(inside, kh, kw, sh, sw, oh, ow).sum(0)
    return (s / cnt).astype(np.float32)


def slice_(x, starts, ends, axes, steps):
    axes = list(range(len(starts))) if axes is None else [int(v) for v in axes]
    steps = [1] * len(starts) if steps is None else [int(v) for v in steps]
    idx = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = ax % x.ndim
        d = x.shape[ax]
        s, e = int(s), int(e)
        if s < 0:
            s += d
        if e < 0:
            e += d
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
            idx[ax] = slice(s, e, st)
        else:
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
            idx[ax] = slice(s, e if e >= 0 else None, st)
    return x[tuple(idx)]


def run_node(node, ins, opset):
    t, a = node.op_type, _attrs(node)
    if t == "Constant":
        return [numpy_helper.to_array(a["value"])]
    if t == "Identity":
        return [ins[0]]
    if t == "Conv":
        return [conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 and ins[2] is not None else None, a)]
    if t == "BatchNormalization":
        assert not a.get("training_mode", 0)
        x, g, b, mu, var = ins[:5]
        eps = a.get("epsilon", 1e-5)
        sh = (1, -1, 1, 1)
        y = (x.astype(np.float64) - mu.reshape(sh)) / np.sqrt(var.reshape(sh).astype(np.float64) + eps)
        return [(y * g.reshape(sh) + b.reshape(sh)).astype(np.float32)]
    if t == "Relu":
        return [np.maximum(ins[0], 0).astype(ins[0].dtype)]
    if t in ("Add", "Sub", "Mul", "Div"):
        f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[t]
        r = f(ins[0], ins[1])
        if t == "Div" and np.issubdtype(ins[0].dtype, np.integer):
            r = np.trunc(r)
        return [r.astype(ins[0].dtype)]
    if t == "MaxPool":
        assert len(node.output) == 1 and a.get("storage_order", 0) == 0
        return [pool(ins[0], a, "max")]
    if t == "AveragePool":
        return [pool(ins[0], a, "avg")]
    if t == "GlobalAveragePool":
        return [ins[0].astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)]
    if t == "Flatten":
        ax = a.get("axis", 1) % max(ins[0].ndim, 1)
        return [ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)]
    if t == "Gemm":
        A, B = ins[0].astype(np.float64), ins[1].astype(np.float64)
        A = A.T if a.get("transA", 0) else A
        B = B.T if a.get("transB", 0) else B
        y = a.get("alpha", 1.0) * (A @ B)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get("beta", 1.0) * ins[2]
        return [y.astype(np.float32)]
    if t == "MatMul":
        return [(ins[0].astype(np.float64) @ ins[1]).astype(np.float32)]
    if t == "Softmax":
        x = ins[0].astype(np.float64)
        if opset < 13:  # coerce to 2-D at `axis` (default 1)
            ax = a.get("axis", 1) % x.ndim
            shp = x.shape
            x = x.reshape(int(np.prod(shp[:ax])), -1)
            e = np.exp(x - x.max(1, keepdims=True))
            return [(e / e.sum(1, keepdims=True)).reshape(shp).astype(np.float32)]
        ax = a.get("axis", -1)
        e = np.exp(x - x.max(ax, keepdims=True))
        return [(e / e.sum(ax, keepdims=True)).astype(np.float32)]
    if t == "Slice":
        if opset < 10:
            return [slice_(ins[0], a["starts"], a["ends"], a.get("axes"), None)]
        return [slice_(ins[0], ins[1], ins[2], ins[3] if len(ins) > 3 else None,
                       ins[4] if len(ins) > 4 else None)]
    if t == "Pad":
        x = ins[0]
        if opset < 11:
            pads, val = list(a["pads"]), a.get("value", 0.0)
        else:
            pads = [int(p) for p in ins[1]]
            val = ins[2].reshape(-1)[0] if len(ins) > 2 and ins[2] is not None else 0
        assert a.get("mode", "constant") == "constant"
        r = x.ndim
        assert min(pads) >= 0, "negative pads (cropping) are not handled"
        return [np.pad(x, [(pads[i], pads[i + r]) for i in range(r)], constant_values=val)]
    if t == "ConstantOfShape":
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full([int(d) for d in ins[0]], v.reshape(-1)[0], dtype=v.dtype)]
    if t == "Concat":
        return [np.concatenate(ins, axis=a["axis"])]
    if t == "Reshape":
        shape = [int(d) for d in ins[1]]
        shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return [ins[0].reshape(shape)]
    if t == "Transpose":
        return [np.transpose(ins[0], a.get("perm"))]
    if t == "Cast":
        return [ins[0].astype(_np_dtype(a["to"]))]
    if t == "Shape":
        return [np.array(ins[0].shape, dtype=np.int64)]
    if t == "Gather":
        return [np.take(ins[0], ins[1], axis=a.get("axis", 0))]
    if t in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes") if opset < 13 else (ins[1] if len(ins) > 1 else None)
        x = ins[0]
        if t == "Unsqueeze":
            r = x.ndim + len(axes)
            for ax in sorted(int(v) % r for v in axes):
                x = np.expand_dims(x, ax)
            return [x]
        if axes is None:
            return [np.squeeze(x)]
        return [np.squeeze(x, tuple(int(v) % x.ndim for v in axes))]
    raise NotImplementedError(f"{t} (opset {opset})")


def opset_of(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    raise ValueError("no default-domain opset")


def run(model, feeds):
    opset = opset_of(model)
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        ins = [env[n] if n else None for n in node.input]
        outs = run_node(node, ins, opset)
        for name, val in zip(node.output, outs):
            if name:
                env[name] = val
    return [env[o.name] for o in model.graph.output]


def main(argv):
    model = onnx.load(argv[1])
    x = np.load(argv[2])
    (y,) = run(model, {model.graph.input[0].name: x})
    print("output", y.shape, y.dtype)
    print(y)
    if len(argv) > 3:
        ref = np.load(argv[3])
        print("max |diff| vs", argv[3], float(np.abs(y - ref).max()))


if __name__ == "__main__":
    main(sys.argv)
