"""One training step of CIFAR ResNet-20 (option-A shortcuts, He et al.
section 4.2) in PyTorch, batch 128, Adam, at 1 and 2 threads, on 1x28x28
(Fashion-MNIST) and 3x32x32 (CIFAR) inputs, contiguous and channels-last:
the reference of edge-resnet's BenchmarkTrainStep (issue 10).

    python3 bench/train_step_torch.py [--steps 10] [--threads 1,2]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = 0
        if stride != 1 or cin != planes:
            self.pad = planes // 4

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x
        if self.pad:
            s = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(y + s)


class ResNet20(nn.Module):
    def __init__(self, cin, classes=10, n=3):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, ch = [], 16
        for s, planes in enumerate([16, 32, 64]):
            for i in range(n):
                blocks.append(Block(ch, planes, 2 if s > 0 and i == 0 else 1))
                ch = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        y = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def bench(cin, size, threads, channels_last, steps, batch=128):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = ResNet20(cin)
    x = torch.randn(batch, cin, size, size)
    labels = torch.randint(0, 10, (batch,))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    print(f"torch {torch.__version__}")
    for name, cin, size in [("fmnist-1x28x28", 1, 28), ("cifar-3x32x32", 3, 32)]:
        for t in [int(v) for v in args.threads.split(",")]:
            for cl in (False, True):
                s = bench(cin, size, t, cl, args.steps)
                layout = "channels-last" if cl else "contiguous"
                print(f"{name} threads={t} {layout:13s} {s * 1e3:8.1f} ms/step {128 / s:7.0f} images/s")


if __name__ == "__main__":
    main()
