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
  and for every model in FAMILY (the ResNet family as people export it: ResNeXt, Wide,
  SE, ResNet-D, pre-activation v2, depthwise, ReLU6, hard-swish, NHWC input, batch 4) the
  plain export NAME.onnx only, with NAME.input.npy in the model's own input layout and
  batch ([4,C,H,W] for the batch-4 model, [1,H,W,C] for the NHWC one) and NAME.logits.npy
  [batch,classes];
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
  every file; every export evaluated with tools/onnx_eval.py (an independent numpy ONNX
  evaluator written for this project; this script adds the operators of FAMILY that it
  lacks, from the ONNX specs: grouped Conv, Sigmoid, HardSigmoid, HardSwish, Clip, Expand,
  ReduceMean) and compared with PyTorch's output; the folded export must have no
  BatchNormalization except those torch cannot fold (ResNet v2's pre-activation BNs,
  kept_bn), and the _bn export one per BatchNorm2d. If
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

# The ResNet family as people export it (issue 9). These are exported once, as NAME.onnx
# (eval mode, do_constant_folding=True; BatchNorm folded where torch can fold it), to keep
# the files small. Options beyond the ones above:
#   groups, base_width  bottleneck 3x3 width = int(planes * base_width / 64) * groups, the
#                       torchvision rule (ResNeXt: groups > 1; Wide ResNet: base_width 128)
#   se                  squeeze-and-excitation before the residual add: dict(r=reduction,
#                       fc="linear" (GAP -> view -> Linear -> ReLU -> Linear -> gate -> view,
#                       x * s.expand_as(x) if expand) or "conv" (mean keepdim -> 1x1 convs),
#                       gate="sigmoid" or "hardsigmoid")
#   stem="deep"         three 3x3 convs (stride 2, width/2, width/2, width), each with BN and
#                       ReLU, instead of the 7x7 (ResNet-C/D)
#   shortcut="D"        AvgPool2d(2, s, ceil_mode=True, count_include_pad=False) (only when
#                       s = 2) then 1x1 conv + BN (ResNet-D)
#   preact              pre-activation blocks (BN -> ReLU -> conv; the projection shortcut
#                       reads the pre-activated input) and a final BN + ReLU (ResNet v2)
#   act                 "relu" (default), "relu6" (Clip(0, 6)) or "hardswish"
#   head_op             "flatten" (torch.flatten), "reshape" (x.reshape(x.shape[0], -1)) or
#                       "mean" (x.mean((2, 3)), ReduceMean, instead of the pooling and flatten)
#   input_layout="NHWC" the model takes [N,H,W,C] and permutes it to NCHW first (Keras style)
#   batch               a fixed batch N in the input and output (default 1)
#   bn_eps              BatchNorm epsilon (default 1e-5)
#   kind="depthwise"    DepthwiseNet below instead of ResNet
FAMILY = [
    dict(name="resnext_b", layout="imagenet", block="bottleneck", layers=(2, 1, 1, 1), width=4,
         groups=4, base_width=32, shortcut="B", bias=False, in_shape=(3, 32, 40), classes=10,
         opset=13,
         covers="ResNeXt: bottleneck blocks [2,1,1,1], planes 4/8/16/32, 3x3 convs grouped "
                "(groups 4, base width 32: torchvision width int(planes*32/64)*4 = 8/16/32/64, "
                "2 to 16 channels per group), stride on the 3x3, shortcut B, 32x40 input, "
                "opset 13"),
    dict(name="wide_b", layout="imagenet", block="bottleneck", layers=(1, 1, 1, 1), width=2,
         base_width=128, shortcut="B", bias=False, in_shape=(3, 35, 29), classes=10, opset=13,
         covers="Wide ResNet: bottleneck blocks [1,1,1,1], planes 2/4/8/16, width_per_group "
                "128 (3x3 width 2*planes = 4/8/16/32, as wide_resnet50_2), shortcut B, odd "
                "35x29 input, opset 13"),
    dict(name="se_basic_b", layout="imagenet", block="basic", layers=(1, 1, 1, 1), width=4,
         shortcut="B", bias=False, in_shape=(3, 33, 41), classes=10, opset=13,
         se=dict(r=4, fc="linear", gate="sigmoid", expand=True),
         covers="SE-ResNet: basic blocks [1,1,1,1] width 4, squeeze-and-excitation in every "
                "block (GAP -> view(b, c) -> Linear c/4 -> ReLU -> Linear -> Sigmoid -> "
                "view(b, c, 1, 1) -> x * s.expand_as(x), the classic SENet code; Shape -> "
                "Expand -> Mul), shortcut B, odd 33x41 input, opset 13"),
    dict(name="resnet_d", layout="imagenet", block="bottleneck", layers=(1, 1, 1, 1), width=4,
         stem="deep", shortcut="D", bias=False, in_shape=(3, 37, 45), classes=10, opset=13,
         covers="ResNet-D: deep stem (3x3/2 2ch, 3x3 2ch, 3x3 4ch, each BN+ReLU), bottleneck "
                "blocks [1,1,1,1] width 4, shortcut D (AvgPool2d(2, 2, ceil_mode=True, "
                "count_include_pad=False) -> 1x1 conv + BN; 1x1 conv + BN on the stride-1 "
                "stage), odd 37x45 input so that the ceil-mode pools have partial windows "
                "(5x6 -> 3x3), opset 13"),
    dict(name="preact_v2", layout="cifar", n=2, widths=(4, 8, 16), preact=True, shortcut="B",
         bias=False, in_shape=(3, 24, 28), classes=10, opset=13,
         covers="Pre-activation ResNet v2: CIFAR layout depth 14 (n=2) widths 4/8/16, blocks "
                "BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv3x3, projection shortcut (1x1 conv, "
                "no BN) on the pre-activated input, final BN + ReLU; the BNs that follow an add "
                "(or the stem conv, which the identity shortcut also reads) stay "
                "BatchNormalization nodes in the folded export; 24x28 input, opset 13"),
    dict(name="depthwise_res", kind="depthwise", in_shape=(3, 32, 32), classes=10, opset=13,
         act="relu6",
         covers="Depthwise residual net: stem 3x3/2 conv, then blocks of depthwise 3x3 "
                "(groups = channels; the 8->16 block is a depthwise conv with channel "
                "multiplier 2, groups 8) + BN + ReLU6 -> pointwise 1x1 + BN, with residual "
                "adds (identity, or 1x1 conv + BN when the shape changes) -> ReLU6; ReLU6 is "
                "Clip(0, 6) with min/max inputs (opset 13); 32x32 input"),
    dict(name="relu6_b_opset10", layout="cifar", n=1, widths=(4, 8, 16), shortcut="B",
         bias=False, in_shape=(3, 20, 24), classes=10, opset=10, act="relu6",
         covers="ReLU6 variant: CIFAR layout depth 8 widths 4/8/16, shortcut B, every ReLU a "
                "ReLU6, exported at opset 10: Clip(0, 6) with min/max attributes; 20x24 input"),
    dict(name="hardswish_se", layout="cifar", n=1, widths=(8, 16, 24), shortcut="B",
         bias=False, in_shape=(3, 20, 20), classes=10, opset=14, act="hardswish",
         se=dict(r=4, fc="conv", gate="hardsigmoid", expand=False),
         covers="Hard-swish variant (MobileNetV3 style): CIFAR layout depth 8 widths 8/16/24, "
                "every ReLU a hardswish (HardSwish, opset 14), squeeze-and-excitation with "
                "x.mean((2, 3), keepdim=True) (ReduceMean) -> 1x1 conv -> ReLU -> 1x1 conv -> "
                "Hardsigmoid (HardSigmoid alpha 1/6) -> x * s; 20x20 input"),
    dict(name="keras_nhwc", layout="imagenet", block="basic", layers=(1, 1, 1, 1), width=4,
         shortcut="B", bias=False, in_shape=(3, 36, 44), classes=10, opset=13,
         input_layout="NHWC", head_op="mean", bn_eps=1.001e-5,
         covers="Keras-style NHWC input: the model takes [1,36,44,3] and starts with "
                "x.permute(0, 3, 1, 2) (Transpose perm [0,3,1,2]), then an ImageNet-layout "
                "basic ResNet [1,1,1,1] width 4, shortcut B, BN eps 1.001e-5 (Keras), head "
                "x.mean((2, 3)) (ReduceMean keepdims 0) -> fc; the .input.npy is NHWC; opset 13"),
    dict(name="batch4_se", layout="cifar", n=1, widths=(4, 8, 16), shortcut="B", bias=False,
         in_shape=(3, 16, 20), classes=10, opset=13, batch=4, head_op="reshape",
         se=dict(r=2, fc="linear", gate="sigmoid", expand=False),
         covers="Batch 4: CIFAR layout depth 8 widths 4/8/16, shortcut B, squeeze-and-"
                "excitation (Linear, x * s.view(b, c, 1, 1)), head x.reshape(x.shape[0], -1) "
                "-> fc; exported with a fixed batch of 4 (input [4,3,16,20], logits [4,10]); "
                "16x20 input, opset 13"),
]


# ------------------------------------------------------------------ the network
ACTS = {"relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish}


def act(x, cfg):
    """The model's activation: ReLU, or ReLU6 / hard-swish for those variants."""
    return ACTS[cfg.get("act", "relu")](x)


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
    if cfg["shortcut"] == "D":
        pool = ([nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)]
                if stride > 1 else [])
        return nn.Sequential(*pool, nn.Conv2d(cin, cout, 1, 1, 0, bias=cfg["bias"]),
                             nn.BatchNorm2d(cout))
    return ShortcutA(cin, cout, stride, cfg["apad"])


class SE(nn.Module):
    """Squeeze-and-excitation: x * gate(fc2(relu(fc1(mean of x over H, W))))."""

    def __init__(self, c, se):
        super().__init__()
        hidden = max(1, c // se["r"])
        self.linear, self.expand = se["fc"] == "linear", se.get("expand", False)
        if self.linear:
            self.fc1, self.fc2 = nn.Linear(c, hidden), nn.Linear(hidden, c)
        else:
            self.fc1, self.fc2 = nn.Conv2d(c, hidden, 1), nn.Conv2d(hidden, c, 1)
        self.gate = torch.sigmoid if se["gate"] == "sigmoid" else F.hardsigmoid

    def forward(self, x):
        if not self.linear:  # timm / MobileNetV3 style
            return x * self.gate(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        b, c, _, _ = x.size()  # the SENet code
        s = F.adaptive_avg_pool2d(x, 1).view(b, c)
        s = self.gate(self.fc2(F.relu(self.fc1(s)))).view(b, c, 1, 1)
        return x * (s.expand_as(x) if self.expand else s)


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
        self.se = SE(planes, cfg["se"]) if cfg.get("se") else None
        self.cfg = cfg

    def forward(self, x):
        y = act(self.bn1(self.conv1(x)), self.cfg)
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        return act(y + self.shortcut(x), self.cfg)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, cfg):
        super().__init__()
        b = cfg["bias"]
        s1, s3 = (stride, 1) if cfg.get("stride_on", "3x3") == "1x1" else (1, stride)
        out = planes * self.expansion
        groups = cfg.get("groups", 1)
        width = int(planes * (cfg.get("base_width", 64) / 64.0)) * groups  # torchvision's rule
        self.conv1 = nn.Conv2d(cin, width, 1, s1, 0, bias=b)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, s3, 1, groups=groups, bias=b)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, 1, 0, bias=b)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = make_shortcut(cin, out, stride, cfg)
        self.se = SE(out, cfg["se"]) if cfg.get("se") else None
        self.cfg = cfg

    def forward(self, x):
        y = act(self.bn1(self.conv1(x)), self.cfg)
        y = act(self.bn2(self.conv2(y)), self.cfg)
        y = self.bn3(self.conv3(y))
        if self.se is not None:
            y = self.se(y)
        return act(y + self.shortcut(x), self.cfg)


class PreActBasic(nn.Module):
    """ResNet v2 block: BN -> act -> conv3x3 -> BN -> act -> conv3x3, plus the shortcut
    (identity, or a 1x1 conv of the pre-activated input)."""
    expansion = 1

    def __init__(self, cin, planes, stride, cfg):
        super().__init__()
        b = cfg["bias"]
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=b)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=b)
        self.shortcut = (nn.Conv2d(cin, planes, 1, stride, 0, bias=b)
                         if stride != 1 or cin != planes else None)
        self.cfg = cfg

    def forward(self, x):
        out = act(self.bn1(x), self.cfg)
        sc = x if self.shortcut is None else self.shortcut(out)
        return self.conv2(act(self.bn2(self.conv1(out)), self.cfg)) + sc


def deep_stem(cin, w, b):
    """ResNet-C/D stem: three 3x3 convs (the first with stride 2); the last BN is bn1."""
    h = w // 2
    return nn.Sequential(nn.Conv2d(cin, h, 3, 2, 1, bias=b), nn.BatchNorm2d(h), nn.ReLU(),
                         nn.Conv2d(h, h, 3, 1, 1, bias=b), nn.BatchNorm2d(h), nn.ReLU(),
                         nn.Conv2d(h, w, 3, 1, 1, bias=b))


class ResNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        cin, b = cfg["in_shape"][0], cfg["bias"]
        block = Bottleneck if cfg.get("block", "basic") == "bottleneck" else Basic
        if cfg.get("preact"):
            block = PreActBasic
        if cfg["layout"] == "imagenet":
            w = cfg["width"]
            self.conv1 = (deep_stem(cin, w, b) if cfg.get("stem") == "deep"
                          else nn.Conv2d(cin, w, 7, 2, 3, bias=b))
            self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=cfg.get("pool_ceil", False))
            planes = [w, 2 * w, 4 * w, 8 * w]
            counts, strides, c = cfg["layers"], (1, 2, 2, 2), w
        else:
            w = cfg["widths"][0]
            self.conv1 = nn.Conv2d(cin, w, 3, 1, 1, bias=b)
            self.maxpool = None
            planes = list(cfg["widths"])
            counts, strides, c = (cfg["n"],) * 3, (1, 2, 2), w
        # ResNet v2 has no BN after the stem but one (with the activation) after the stages.
        self.bn1 = None if cfg.get("preact") else nn.BatchNorm2d(w)
        stages = []
        for p, n, s in zip(planes, counts, strides):
            blocks = []
            for j in range(n):
                blocks.append(block(c, p, s if j == 0 else 1, cfg))
                c = p * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.bn_final = nn.BatchNorm2d(c) if cfg.get("preact") else None
        # BatchNorms torch cannot fold into a conv: v2's first BN of each block and the final one.
        self.kept_bn = sum(counts) + 1 if cfg.get("preact") else 0
        h = cfg.get("head")
        self.pool = (nn.AvgPool2d(h["k"], h["s"], h["p"], count_include_pad=h["cip"])
                     if h else None)
        with torch.no_grad():
            feat = self.features(torch.zeros(1, *cfg["in_shape"]))
        self.feature_shape = tuple(feat.shape[1:])
        self.fc = nn.Linear(feat[0].numel(), cfg["classes"])

    def features(self, x):
        x = self.conv1(x)
        if self.bn1 is not None:
            x = act(self.bn1(x), self.cfg)
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.stages(x)
        if self.bn_final is not None:
            x = act(self.bn_final(x), self.cfg)
        if self.cfg.get("head_op") == "mean":
            return x.mean((2, 3))
        if self.pool is None:
            return F.adaptive_avg_pool2d(x, 1)
        return self.pool(x)

    def forward(self, x):
        x = self.features(x)
        op = self.cfg.get("head_op", "flatten")
        if op == "flatten":
            x = torch.flatten(x, 1)
        elif op == "reshape":
            x = x.reshape(x.shape[0], -1)
        x = self.fc(x)
        if self.cfg.get("softmax"):
            x = torch.softmax(x, dim=1)
        return x


class DWBlock(nn.Module):
    """Depthwise 3x3 (channel multiplier mult) + BN + act -> pointwise 1x1 + BN, plus the
    shortcut (identity, or 1x1 conv + BN), -> act."""

    def __init__(self, cin, cout, stride, mult, cfg):
        super().__init__()
        mid = cin * mult
        self.dw = nn.Conv2d(cin, mid, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.pw = nn.Conv2d(mid, cout, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = make_shortcut(cin, cout, stride, dict(cfg, shortcut="B", bias=False))
        self.cfg = cfg

    def forward(self, x):
        y = act(self.bn1(self.dw(x)), self.cfg)
        y = self.bn2(self.pw(y))
        return act(y + self.shortcut(x), self.cfg)


class DepthwiseNet(nn.Module):
    """Stem conv3x3/2 + BN + act, depthwise residual blocks, global average pool, fc."""
    BLOCKS = ((8, 8, 1, 1), (8, 16, 2, 2), (16, 16, 1, 1), (16, 32, 2, 1), (32, 32, 1, 1))
    kept_bn = 0

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv2d(cfg["in_shape"][0], 8, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.blocks = nn.Sequential(*[DWBlock(i, o, s, m, cfg) for i, o, s, m in self.BLOCKS])
        self.feature_shape = (self.BLOCKS[-1][1], 1, 1)
        self.fc = nn.Linear(self.BLOCKS[-1][1], cfg["classes"])

    def forward(self, x):
        x = self.blocks(act(self.bn1(self.conv1(x)), self.cfg))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class NHWCInput(nn.Module):
    """A Keras-style model: it takes [N,H,W,C] and permutes it to NCHW first."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.feature_shape, self.kept_bn = net.feature_shape, net.kept_bn

    def forward(self, x):
        return self.net(x.permute(0, 3, 1, 2))


def make_model(cfg):
    net = DepthwiseNet(cfg) if cfg.get("kind") == "depthwise" else ResNet(cfg)
    if cfg.get("input_layout") == "NHWC":
        net = NHWCInput(net)
    return net


def input_dims(cfg):
    """The input shape without the batch: (C,H,W), or (H,W,C) for an NHWC model."""
    c, h, w = cfg["in_shape"]
    return (h, w, c) if cfg.get("input_layout") == "NHWC" else (c, h, w)


def randomize(model, bn_eps=None):
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
                if bn_eps is not None:
                    m.eps = bn_eps


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


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def family_op(node, ins, opset):
    """The operators of the ResNet family that tools/onnx_eval.py does not evaluate (grouped
    Conv, Sigmoid, HardSigmoid, HardSwish, Clip, ReduceMean, Expand), from the ONNX specs,
    in float64; None for the others."""
    t, a = node.op_type, attrs(node)
    f64 = ins[0].astype(np.float64) if ins and ins[0] is not None else None
    if t == "Conv" and a.get("group", 1) != 1:
        g, x, w = a["group"], ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        cg, mg = x.shape[1] // g, w.shape[0] // g
        one = {k: v for k, v in a.items() if k != "group"}
        return [np.concatenate([onnx_eval.conv2d(x[:, i * cg:(i + 1) * cg], w[i * mg:(i + 1) * mg],
                                                 None if b is None else b[i * mg:(i + 1) * mg], one)
                                for i in range(g)], axis=1)]
    if t == "Sigmoid":
        return [(1 / (1 + np.exp(-f64))).astype(np.float32)]
    if t == "HardSigmoid":
        return [np.clip(a.get("alpha", 0.2) * f64 + a.get("beta", 0.5), 0, 1).astype(np.float32)]
    if t == "HardSwish":
        return [(f64 * np.clip(f64 / 6 + 0.5, 0, 1)).astype(np.float32)]
    if t == "Clip":
        if opset < 11:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
        return [np.clip(ins[0], lo, hi).astype(ins[0].dtype)]
    if t == "Expand":
        shape = np.broadcast_shapes(ins[0].shape, tuple(int(d) for d in ins[1]))
        return [np.broadcast_to(ins[0], shape).copy()]
    if t == "ReduceMean" and opset < 18:
        axes = tuple(int(v) for v in a["axes"])
        return [f64.mean(axis=axes, keepdims=bool(a.get("keepdims", 1))).astype(np.float32)]
    return None


def run_node(node, ins, opset, _base=onnx_eval.run_node):
    out = family_op(node, ins, opset)
    return out if out is not None else _base(node, ins, opset)


# onnx_eval.run looks run_node up at call time: evaluate the family's operators too.
onnx_eval.run_node = run_node


def check_export(name, suffix, m, want_bn, x, y, shared, failures):
    """Checks one export (onnx.checker, BatchNormalization count, onnx_eval against torch)
    and returns the line to print."""
    onnx.checker.check_model(m, full_check=True)
    ops = op_counts(m)
    if ops.get("BatchNormalization", 0) != want_bn:
        failures.append(f"{name}{suffix}: {ops.get('BatchNormalization', 0)} "
                        f"BatchNormalization nodes, want {want_bn}")
    (got,) = onnx_eval.run(m, {"input": x.numpy()})
    diff = float(np.abs(got - y.numpy()).max()) if got.shape == y.shape else float("inf")
    scale = float(np.abs(y.numpy()).max())
    if not diff <= 1e-4 * max(1.0, scale):
        failures.append(f"{name}{suffix}: onnx_eval differs from torch by {diff} "
                        f"(shape {got.shape}, torch {tuple(y.shape)})")
    extra = ""
    if shared is not None:
        try:
            (got2,) = shared.run(m, {"input": x.numpy()})
            extra = f"  shared onnx_numpy |diff| {float(np.abs(got2 - y.numpy()).max()):.1e}"
        except Exception as e:  # noqa: BLE001 (optional cross-check only)
            extra = f"  shared onnx_numpy: not applicable ({type(e).__name__}: {e})"[:110]
    return f"nodes {sum(ops.values()):3d}  onnx_eval |diff| {diff:.1e}{extra}"


def make_fixture(idx, cfg, out, shared, failures, bn_export):
    """Builds, exports (with the _bn export if bn_export), checks and writes one model;
    returns its README row."""
    name = cfg["name"]
    torch.manual_seed(SEED + idx)
    model = make_model(cfg)
    randomize(model, cfg.get("bn_eps"))
    model.eval()
    gen = torch.Generator().manual_seed(10_000 + SEED + idx)
    x = torch.randn(cfg.get("batch", 1), *input_dims(cfg), generator=gen, dtype=torch.float32)
    with torch.no_grad():
        y = model(x).float()
    out_name = "probs" if cfg.get("softmax") else "logits"
    params = sum(p.numel() for p in model.parameters())
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())

    files = {}
    variants = (("", False), ("_bn", True)) if bn_export else (("", False),)
    for suffix, preserve in variants:
        blob = export(model, x, cfg["opset"], out_name, preserve)
        m = onnx.load_from_string(blob)
        line = check_export(name, suffix, m, n_bn if preserve else model.kept_bn, x, y, shared,
                            failures)
        fname = f"{name}{suffix}.onnx"
        with open(os.path.join(out, fname), "wb") as f:
            f.write(blob)
        files[fname] = dict(ops=op_counts(m), opset=onnx_eval.opset_of(m), ir=m.ir_version,
                            out_shape=declared_shape(m.graph.output[0]),
                            in_shape=declared_shape(m.graph.input[0]))
        print(f"{fname:34s} opset {cfg['opset']:2d}  {line}", flush=True)

    np.save(os.path.join(out, f"{name}.input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{name}.logits.npy"), y.numpy().astype(np.float32))
    print(f"{'':34s} params {params}  feature map {model.feature_shape}  "
          f"output {out_name} {tuple(y.shape)} range [{float(y.min()):.3f}, "
          f"{float(y.max()):.3f}]  argmax {int(y[0].argmax())}", flush=True)
    return dict(cfg=cfg, files=files, params=params, out_name=out_name,
                feature_shape=model.feature_shape, y=y.numpy())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "testdata", "models"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    shared = load_shared_numpy_interpreter()
    failures = []
    rows = [make_fixture(idx, cfg, args.out, shared, failures, bn_export=idx < len(MODELS))
            for idx, cfg in enumerate(MODELS + FAMILY)]

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


def readme_intro():
    """The README up to the tables: what the fixtures are and how they were made."""
    return [
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
        "- Models are in eval mode. Each of the first seven is exported twice with input name",
        "  `input` and a static batch of 1:",
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
        "- `NAME.input.npy`: float32 NCHW [1,C,H,W], standard normal (seeded), but see",
        "  the family models below. `NAME.logits.npy`: PyTorch's float32 output for it,",
        "  [1,classes]. For",
        "  `in_basic_a_1ch` the graph ends in Softmax, so the output (named `probs`) holds",
        "  probabilities; every other graph's output is named `logits`.",
        "- Every export of every model passes `onnx.checker.check_model(full_check=True)` and",
        "  was evaluated with `tools/onnx_eval.py` (a numpy ONNX evaluator written for this",
        "  project), matching PyTorch to about 1e-6.",
        "- Shortcut A \"symmetric\" puts (out-in)//2 zero channels before the identity channels",
        "  and the rest after, which is planes//4 before and after when channels double (the",
        "  common CIFAR code). \"after\" (TF style) puts all zero channels after. With stride 2",
        "  the input is first subsampled as `x[:, :, ::2, ::2]` (rows/columns 0, 2, 4, ...).",
        "- The ResNet family as people export it (from `resnext_b` on; `FAMILY` in the script)",
        "  adds to these classes grouped 3x3 convs with torchvision's width rule",
        "  int(planes*base_width/64)*groups (ResNeXt, Wide ResNet), squeeze-and-excitation",
        "  (`SE`), the deep stem and average-pool shortcut of ResNet-D, pre-activation blocks",
        "  (`PreActBasic`, ResNet v2), a depthwise residual net (`DepthwiseNet`, `DWBlock`),",
        "  ReLU6 and hard-swish activations, an NHWC-input wrapper (`NHWCInput`: the model",
        "  permutes its [N,H,W,C] input to NCHW first, as Keras models converted by tf2onnx",
        "  start) and a fixed batch of 4. They are exported once, as `NAME.onnx` (eval mode,",
        "  `do_constant_folding=True`); only ResNet v2 keeps BatchNormalization nodes (those",
        "  after an add, and the first block's, whose input the identity shortcut also reads).",
        "  Their `.input.npy` is in the model's own input layout and batch: NHWC [1,H,W,C] for",
        "  `keras_nhwc`, [4,C,H,W] for `batch4_se` (whose logits are [4,classes]). The SE",
        "  and 1x1-conv layers get the same He-normal init (Linear layers PyTorch's default).",
        "  tools/onnx_eval.py has no grouped Conv, Sigmoid, HardSigmoid, HardSwish, Clip, Expand",
        "  or ReduceMean: the script evaluates those from the ONNX specs itself.",
        "",
    ]


def write_readme(out, rows):
    L = readme_intro() + [
        "## Models",
        "",
        "| model | covers | input | classes | params | opset | feature map before head |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["cfg"]
        fs = "x".join(str(v) for v in r["feature_shape"])
        fs += " (C)" if len(r["feature_shape"]) == 1 else " (CxHxW)"
        in_shape = r["files"][f"{c['name']}.onnx"]["in_shape"]
        L.append(f"| `{c['name']}` | {c['covers']} | {in_shape} "
                 f"| {c['classes']} | {r['params']} | {c['opset']} | {fs} |")
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
        for k, y in enumerate(r["y"]):
            name = r["cfg"]["name"] + (f" [{k}]" if len(r["y"]) > 1 else "")
            vals = ", ".join(f"{v:.4f}" for v in y)
            L.append(f"| `{name}` | `{r['out_name']}` | {int(y.argmax())} | {vals} |")
    L += ["", "## Files (bytes, sha256)", "", "| file | bytes | sha256 |", "|---|---|---|"]
    names = sorted(f for f in os.listdir(out) if f != "README.md")
    for f in names:
        p = os.path.join(out, f)
        L.append(f"| `{f}` | {os.path.getsize(p)} | `{sha256(p)}` |")
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
