"""Reference for train/net_torch_test.go's TestOneStepMatchesPyTorch: one
training step of a ResNet in PyTorch, on the weights and batch the Go test
writes (JSON on the path in argv[1]); prints the results as JSON. The net
is either CIFAR-style (basic blocks, 3x3 stem, option-A shortcut
F.pad(x[:, :, ::2, ::2]) or a 1x1 conv + BN projection when the state has
downsample tensors) or, with "imagenet", torchvision's layout with a free
base width: 7x7 stride-2 stem, 3x3 stride-2 max pool, torchvision's own
BasicBlock or Bottleneck (groups, width per group) and projections.

Input: {"blocks": [n1, ...], "width": w, "in_channels": c, "classes": k,
        "state": {torchvision name: flat values, PyTorch layout},
        "shapes": {name: shape}, "x": NHWC flat, "n": batch, "h": H, "w": W,
        "labels": [...], "lr": lr, "momentum": m, "weight_decay": wd,
        optional "imagenet": bool, "bottleneck": bool, "groups": g,
        "width_per_group": wg, "optimizer": "sgd" (default) or "adam",
        "eps": Adam's eps}
Output: {"loss": loss, "logits": [n*k], "grads": {param: flat},
         "state": {name: flat}} -- the state after the step (SGD with
momentum, or Adam with PyTorch's betas; L2 weight decay on conv and fc
weights only) and the BN running statistics the training-mode forward left.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck


class Block(nn.Module):
    def __init__(self, cin, planes, stride, projection):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5, momentum=0.1)
        self.stride, self.cin, self.planes = stride, cin, planes
        self.downsample = None
        if projection and (stride != 1 or cin != planes):
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes, eps=1e-5, momentum=0.1))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.downsample is not None:
            short = self.downsample(x)
        elif self.stride != 1 or self.cin != self.planes:
            extra = self.planes - self.cin
            short = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))
        return F.relu(out + short)


class CifarResNet(nn.Module):
    def __init__(self, blocks, width, in_channels, classes, projection):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5, momentum=0.1)
        cin = width
        for s, nb in enumerate(blocks):
            planes = width << s
            layer = []
            for i in range(nb):
                layer.append(Block(cin, planes, 2 if s > 0 and i == 0 else 1, projection))
                cin = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layer))
        self.nstages = len(blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for s in range(self.nstages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ImageNetResNet(nn.Module):
    def __init__(self, blocks, width, in_channels, classes, bottleneck, groups, width_per_group):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5, momentum=0.1)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        block = Bottleneck if bottleneck else BasicBlock
        cin = width
        for s, nb in enumerate(blocks):
            planes = width << s
            cout = planes * block.expansion
            layer = []
            for i in range(nb):
                stride = 2 if s > 0 and i == 0 else 1
                down = None
                if stride != 1 or cin != cout:
                    down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))
                if bottleneck:
                    layer.append(Bottleneck(cin, planes, stride, down, groups, width_per_group))
                else:
                    layer.append(BasicBlock(cin, planes, stride, down))
                cin = cout
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layer))
        self.nstages = len(blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for s in range(self.nstages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_model(p):
    if p.get("imagenet"):
        return ImageNetResNet(p["blocks"], p["width"], p["in_channels"], p["classes"], p.get("bottleneck", False),
                              p.get("groups", 1), p.get("width_per_group", 64))
    projection = any(".downsample." in k for k in p["state"])
    return CifarResNet(p["blocks"], p["width"], p["in_channels"], p["classes"], projection)


def make_optimizer(p, groups):
    if p.get("optimizer", "sgd") == "adam":  # single-tensor kernels, as torch_optim.py
        return torch.optim.Adam(groups, lr=p["lr"], betas=(0.9, 0.999), eps=p["eps"], foreach=False)
    return torch.optim.SGD(groups, lr=p["lr"], momentum=p["momentum"], dampening=0, nesterov=False)


def flat(t):
    return [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]


def main():
    with open(sys.argv[1]) as f:
        p = json.load(f)
    torch.manual_seed(0)
    model = make_model(p)
    state = {k: torch.tensor(v, dtype=torch.float32).reshape(p["shapes"][k]) for k, v in p["state"].items()}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
    model.load_state_dict(state, strict=True)
    model.train()
    x = torch.tensor(p["x"], dtype=torch.float32).reshape(p["n"], p["h"], p["w"], p["in_channels"])
    x = x.permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(p["labels"], dtype=torch.long)
    named = list(model.named_parameters())
    decay = [t for k, t in named if k.endswith(".weight") and t.dim() > 1]
    plain = [t for k, t in named if not (k.endswith(".weight") and t.dim() > 1)]
    opt = make_optimizer(p, [{"params": decay, "weight_decay": p["weight_decay"]},
                             {"params": plain, "weight_decay": 0.0}])
    opt.zero_grad()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = {k: flat(t.grad) for k, t in named}
    opt.step()
    out = {"loss": loss.item(), "logits": flat(logits), "grads": grads,
           "state": {k: flat(v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}}
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


main()
