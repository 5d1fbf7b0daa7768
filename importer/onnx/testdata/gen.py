#!/usr/bin/python3
"""Regenerates the torch-exported test models in this folder.

A tiny ResNet with what torch.onnx makes of real ResNet code: a 7x7/2 stem
with BatchNorm and a (ceil-mode from opset 10) max pool, an identity block, an option-A
block whose channel padding is computed from x.shape (so the export has a
Shape/Gather/Sub/Div/... subgraph feeding Pad; opset 9 cannot express that
and gets constant pads), a projection (option-B)
block, global average pooling, x.view(x.size(0), -1) and a Linear head;
the opset 17 variant ends in x @ W + b (MatMul + Add) and a Softmax.

Height and width are exported as dynamic axes, so the importer must be
given them (Options{Height: 32, Width: 32}) and must fold the shape
subgraphs through the known input shape.

Outputs: torch_tiny_opset{9,11,13,17}.onnx and torch_tiny_io.f32 (float32
little-endian: the input [1,3,32,32], then for each opset in that order the
output [1,10] computed by PyTorch).

Run with Debian's python3-torch (1.13): /usr/bin/python3 gen.py
"""
import io
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET9 = False


def bn(c):
    b = nn.BatchNorm2d(c)
    # Non-trivial statistics, so that a wrong BatchNorm shows.
    with torch.no_grad():
        b.weight.uniform_(0.5, 1.5)
        b.bias.uniform_(-0.5, 0.5)
        b.running_mean.uniform_(-0.5, 0.5)
        b.running_var.uniform_(0.5, 1.5)
    return b


class Block(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = bn(cout)
        self.shortcut, self.cin, self.cout = shortcut, cin, cout
        if shortcut == "B":
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut == "A":
            # Opset 9 has neither Slice steps (a 1x1 stride-2 pool does the
            # same) nor computed Pad sizes.
            if OPSET9:
                p, sub = (self.cout - self.cin) // 2, F.avg_pool2d(x, 1, 2)
            else:
                p, sub = (self.cout - x.shape[1]) // 2, x[:, :, ::2, ::2]
            sc = F.pad(sub, (0, 0, 0, 0, p, p))
        elif self.shortcut == "B":
            sc = self.down(x)
        else:
            sc = x
        return F.relu(out + sc)


class Tiny(nn.Module):
    def __init__(self, matmul_head, ceil_mode):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 7, 2, 3, bias=False)
        self.bn = bn(4)
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=ceil_mode)
        self.b1 = Block(4, 4, 1, None)
        self.b2 = Block(4, 8, 2, "A")
        self.b3 = Block(8, 16, 2, "B")
        self.fc = nn.Linear(16, 10)
        self.matmul_head = matmul_head

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.stem(x))))
        x = self.b3(self.b2(self.b1(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.view(x.size(0), -1)
        if self.matmul_head:
            return torch.softmax(x @ self.fc.weight.t() + self.fc.bias, dim=1)
        return self.fc(x)


def main():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    blobs = [x.numpy().astype("<f4").tobytes()]
    global OPSET9
    for opset, preserve_bn, fold, matmul in [(9, True, True, False), (11, False, False, False),
                                              (13, False, False, False), (17, True, True, True)]:
        torch.manual_seed(opset)
        # Opset 9 has no ceil_mode attribute, and torch cannot emulate it
        # with dynamic input sizes.
        m = Tiny(matmul, ceil_mode=opset >= 10).eval()
        OPSET9 = opset < 10
        with torch.no_grad():
            y = m(x)
        blobs.append(y.numpy().astype("<f4").tobytes())
        buf = io.BytesIO()
        torch.onnx.export(
            m, x, buf, opset_version=opset, input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "output": {0: "N"}},
            training=torch.onnx.TrainingMode.PRESERVE if preserve_bn else torch.onnx.TrainingMode.EVAL,
            do_constant_folding=fold)
        path = os.path.join(HERE, "torch_tiny_opset%d.onnx" % opset)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        print(path, len(buf.getvalue()), "bytes", file=sys.stderr)
    with open(os.path.join(HERE, "torch_tiny_io.f32"), "wb") as f:
        f.write(b"".join(blobs))


if __name__ == "__main__":
    main()
