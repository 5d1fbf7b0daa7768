#!/usr/bin/python3
"""Train the PyTorch reference of edge-resnet's built-in model: a CIFAR-style
ResNet-20 on Fashion-MNIST. (The built-in model itself is trained by
`edge-resnet train` with the same recipe: tools/make_default_model.sh; this
script is the reference it is compared with.)

What it makes (paths relative to the repository root):
  testdata/default/resnet20_fashion_mnist.onnx   eval export, opset 13, BN folded,
                                                 input "input" [1,1,28,28] float32 NCHW,
                                                 output "logits" [1,10]
  testdata/default/resnet20_fashion_mnist.json   accuracy, schedule, seed, versions ...
  testdata/default/labels.txt                    the 10 class names in index order
  testdata/default/check.input.npy               first 8 test images, preprocessed, [8,1,28,28] f32
  testdata/default/check.logits.npy              PyTorch logits for them, [8,10] f32
  testdata/default/reference.md                  what these files are, and the run's numbers
  testdata/samples/NNNN_<class>.png              first test image of each class, 28x28 gray
(testdata/samples/expected.json and testdata/default/README.md belong to the
built-in model: tools/make_default_model.sh and tools/ern_torch.py write the
first, by hand the second.)
The best checkpoint's state_dict is written to --pt (default
/tmp/resnet20_fashion_mnist.pt); it is deliberately kept out of the repository.

Model (He et al. 2015, "Deep Residual Learning", section 4.2, depth 6n+2 = 20, n = 3):
  conv3x3(1->16) -> BN -> ReLU
  3 stages x 3 basic blocks at 16, 32, 64 channels; the first block of stages
  2 and 3 has stride 2 (28x28 -> 14x14 -> 7x7)
  global average pool -> Linear(64 -> 10)
  Shortcuts: option A, the paper's parameter-free shortcut: identity, and where
  the shape changes x[:, :, ::2, ::2] followed by zero-padding the channel axis
  with planes//4 channels before and planes//4 after.
  No resizing: the 28x28 input is used as is.

Data: the gzip'd IDX files of the Debian package dataset-fashion-mnist in
/usr/share/datasets/fashion-mnist/ (parsed with numpy). 5,000 images of the
60,000-image training set (a seeded random choice) are held out for
validation; the model is trained on the other 55,000 and tested on the
10,000-image test set.
Preprocessing: x = u8/255, then (x - mean)/std with one mean/std for the single
channel. They are computed from all 60,000 training images, printed, and used
rounded to 4 digits (0.2860 / 0.3530).
Augmentation (training only): random 28x28 crop of the image zero-padded by 2
pixels on each side (zero = black background, padded before normalizing) and a
random horizontal flip.

Training, after the project's original TensorFlow tutorial: Adam, shuffled
mini-batches of 128, staircase exponentially decaying learning rate
lr = lr0 * rate ** floor(step / decay_steps) (decay_steps = decay_epochs epochs
of steps), validation after every epoch, and the checkpoint with the best
validation accuracy is kept (ties keep the earlier one) and then evaluated once
on the test set.

Install (Debian bookworm):
  apt-get install python3-torch python3-torchvision python3-onnx python3-pil \
                  dataset-fashion-mnist
Run (from the repository root, with Debian's python, not a pyenv/venv one):
  nohup /usr/bin/python3 tools/train_fashion_mnist.py > /tmp/train_fmnist.log 2>&1 &
  /usr/bin/python3 tools/train_fashion_mnist.py --probe    # time 40 steps, then exit
  /usr/bin/python3 tools/train_fashion_mnist.py --verify   # re-check the written files
  /usr/bin/python3 tools/train_fashion_mnist.py --reexport # ONNX again from --pt, then verify
Options: --epochs, --decay-epochs, --decay-rate, --lr, --batch, --seed, --threads.

Timing only (bench/train_epoch.sh, issue 10): --time-epochs trains --epochs
epochs on --images (an IDX images file, labels from --labels or the
*-labels-idx1-ubyte* file beside it; default the 60,000 training images),
holds out --val of them (seeded), validates at each epoch's end, writes
nothing and prints one JSON line: seconds per epoch (training plus the
end-of-epoch validation) and validation accuracy per epoch. Preprocessing is
the default model's fixed mean/std 0.2860/0.3530; --decay-steps overrides
--decay-epochs; --pad N (default 2, 0 = no crop) and --no-flip set the
augmentation (the default is unchanged: pad 2 and flip).
"""
import argparse
import copy
import datetime
import gzip
import json
import os
import platform
import struct
import sys
import time

# The machine is shared: with OpenMP's default (spinning) wait policy, torch's two
# threads burn their time slices spinning at barriers when other processes compete
# for the cores (an epoch once took 36 min instead of 2). Sleeping waits avoid that.
# This has to be set before torch loads libgomp; it does not change any result.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


# ---------------------------------------------------------------- data
def read_idx(path):
    """Read a gzip'd IDX file (unsigned-byte data only) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size {data.size} does not match dims {dims}")
    return data.reshape(dims)


def load_split(kind):
    prefix = "train" if kind == "train" else "t10k"
    x = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    assert x.shape[0] == y.shape[0] and x.shape[1:] == (28, 28)
    return x, y.astype(np.int64)


def preprocess(u8, mean, std):
    """uint8 [N,28,28] -> float32 NCHW [N,1,28,28], (u8/255 - mean)/std in float32."""
    x = u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return x[:, None, :, :].astype(np.float32)


def augment(u8, rng, pad=2, flip_ok=True):
    """Random crop from a zero-padded image plus random horizontal flip."""
    n, h, w = u8.shape
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=np.uint8)
    padded[:, pad:pad + h, pad:pad + w] = u8
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(u8)
    for i in range(n):
        crop = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, ::-1] if (flip_ok and flip[i]) else crop
    return out


# ---------------------------------------------------------------- model
class ShortcutA(nn.Module):
    """Parameter-free shortcut: subsample by 2, zero-pad planes//4 channels each side."""

    def __init__(self, planes):
        super().__init__()
        self.p = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.p, self.p))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or cin != planes:
            assert stride == 2 and planes == 2 * cin
            self.shortcut = ShortcutA(planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, depth=20, in_ch=1, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


# ---------------------------------------------------------------- train / eval
def evaluate(model, x, y, batch=250):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(torch.from_numpy(x[i:i + batch]))
            correct += int((logits.argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def lr_at(step, args, steps_per_epoch):
    decay_steps = args.decay_epochs * steps_per_epoch
    if getattr(args, "decay_steps", None):
        decay_steps = args.decay_steps
    return args.lr * args.decay_rate ** (step // decay_steps)


def torch_version():
    """Debian's python3-torch 1.13.1 reports torch.__version__ 1.13.0a0; give both."""
    import subprocess
    try:
        deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                             check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return torch.__version__
    return f"{torch.__version__} (Debian python3-torch {deb})"


def slug(name):
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--decay-rate", type=float, default=0.5)
    ap.add_argument("--decay-epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val", type=int, default=5000)
    ap.add_argument("--out", default=ROOT, help="repository root to write testdata/ under")
    ap.add_argument("--pt", default="/tmp/resnet20_fashion_mnist.pt")
    ap.add_argument("--probe", action="store_true", help="time 40 training steps and exit")
    ap.add_argument("--verify", action="store_true",
                    help="check the written files with tools/onnx_eval.py and exit")
    ap.add_argument("--reexport", action="store_true",
                    help="re-export the ONNX file from --pt, then --verify, and exit")
    ap.add_argument("--time-epochs", action="store_true",
                    help="only time --epochs epochs on --images (no test set, no files written) "
                         "and print one JSON line")
    ap.add_argument("--images", help="with --time-epochs: IDX images file (.gz or not)")
    ap.add_argument("--labels", help="with --time-epochs: IDX labels file (default: beside --images)")
    ap.add_argument("--decay-steps", type=int, default=0,
                    help="steps between decays (default: --decay-epochs epochs)")
    ap.add_argument("--pad", type=int, default=2, help="random-crop padding, 0 = none")
    ap.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
    args = ap.parse_args()
    if args.time_epochs:
        return time_epochs(args)
    if args.verify:
        return verify(args.out, args.pt)
    if args.reexport:
        torch.set_num_threads(args.threads)
        return reexport(args)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)

    xtr_all, ytr_all = load_split("train")
    xte, yte = load_split("test")
    m = float(xtr_all.astype(np.float64).mean() / 255.0)
    s = float((xtr_all.astype(np.float64) / 255.0).std())
    mean, std = round(m, 4), round(s, 4)
    print(f"train-set pixel mean {m:.6f} std {s:.6f} -> using mean {mean:.4f} std {std:.4f}",
          flush=True)

    perm = rng.permutation(len(xtr_all))
    val_idx, tr_idx = np.sort(perm[:args.val]), np.sort(perm[args.val:])
    xtr_u8, ytr = xtr_all[tr_idx], ytr_all[tr_idx]
    xval, yval = preprocess(xtr_all[val_idx], mean, std), ytr_all[val_idx]
    xtest = preprocess(xte, mean, std)
    print(f"train {len(xtr_u8)}  val {len(xval)}  test {len(xtest)}", flush=True)

    model = ResNetCifar(20, 1, 10)
    params = sum(p.numel() for p in model.parameters())
    print(f"ResNet-20 (option A), {params} parameters", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = (len(xtr_u8) + args.batch - 1) // args.batch

    best = {"val": -1.0, "epoch": 0, "state": None}
    history = []
    step = 0
    t_start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.time()
        order = rng.permutation(len(xtr_u8))
        loss_sum, seen, correct = 0.0, 0, 0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb = torch.from_numpy(preprocess(augment(xtr_u8[idx], rng, args.pad, not args.no_flip),
                                             mean, std))
            yb = torch.from_numpy(ytr[idx])
            lr = lr_at(step, args, steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss) * len(idx)
            seen += len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            if args.probe and b + 1 == 40:
                dt = time.time() - t0
                print(f"probe: 40 steps in {dt:.1f}s -> ~{dt / 40 * steps_per_epoch:.0f}s "
                      f"per epoch of {steps_per_epoch} steps (training only)", flush=True)
                t1 = time.time()
                evaluate(model, xval, yval)
                print(f"probe: validation pass {time.time() - t1:.1f}s", flush=True)
                return
        train_time = time.time() - t0
        val_acc = evaluate(model, xval, yval)
        rec = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / seen,
               "train_acc": correct / seen, "val_acc": val_acc,
               "seconds": round(time.time() - t0, 1)}
        history.append(rec)
        mark = ""
        if val_acc > best["val"]:
            best = {"val": val_acc, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            mark = "  *best"
        print(f"epoch {epoch:2d}/{args.epochs}  lr {lr:.2e}  train loss {rec['train_loss']:.4f}  "
              f"train acc {rec['train_acc']:.4f}  val acc {val_acc:.4f}  "
              f"time {train_time:.0f}s+{rec['seconds'] - train_time:.0f}s{mark}", flush=True)
    total_time = time.time() - t_start

    model.load_state_dict(best["state"])
    model.eval()
    torch.save(best["state"], args.pt)
    test_acc = evaluate(model, xtest, yte)
    print(f"best epoch {best['epoch']}: val acc {best['val']:.4f}, test acc {test_acc:.4f}; "
          f"training took {total_time / 60:.1f} min; state_dict -> {args.pt}", flush=True)

    write_outputs(args, model, params, mean, std, (m, s), xte, yte, test_acc, best,
                  history, total_time, steps_per_epoch)


def export_onnx(model, onnx_path):
    """Plain eval export (BN folded, constants folded), opset 13, batch 1.

    torch 1.13 cannot infer the batch size through the option-A Pad (its pads come
    from a small subgraph), so it names the output's first dimension symbolically
    ("Gemmlogits_dim_0"). The input is static [1,1,28,28], so that dimension is
    set to 1 here; nothing else in the exported file is changed.
    """
    import onnx
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), onnx_path, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          do_constant_folding=True,
                          training=torch.onnx.TrainingMode.EVAL)
    om = onnx.load(onnx_path)
    (out,) = om.graph.output
    dims = out.type.tensor_type.shape.dim
    assert len(dims) == 2 and dims[1].dim_value == 10
    if dims[0].dim_value != 1:
        dims[0].Clear()
        dims[0].dim_value = 1
        onnx.save(om, onnx_path)
    onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
    print("ONNX ops:", sorted({n.op_type for n in om.graph.node}), flush=True)


def reexport(args):
    """Re-export the ONNX file from the saved state_dict (--pt)."""
    model = ResNetCifar(20, 1, 10)
    model.load_state_dict(torch.load(args.pt, map_location="cpu"))
    ddir = os.path.join(args.out, "testdata", "default")
    export_onnx(model, os.path.join(ddir, "resnet20_fashion_mnist.onnx"))
    with open(os.path.join(ddir, "resnet20_fashion_mnist.json")) as f:
        write_default_readme(ddir, json.load(f))
    return verify(args.out, args.pt)


def write_outputs(args, model, params, mean, std, raw_stats, xte, yte, test_acc, best,
                  history, total_time, steps_per_epoch):
    import onnx
    from PIL import Image

    ddir = os.path.join(args.out, "testdata", "default")
    sdir = os.path.join(args.out, "testdata", "samples")
    os.makedirs(ddir, exist_ok=True)
    os.makedirs(sdir, exist_ok=True)

    export_onnx(model, os.path.join(ddir, "resnet20_fashion_mnist.onnx"))

    with open(os.path.join(ddir, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")

    # A few test images for a Go test: the first 8 of the test set.
    check_x = preprocess(xte[:8], mean, std)
    with torch.no_grad():
        check_logits = model(torch.from_numpy(check_x)).numpy().astype(np.float32)
    np.save(os.path.join(ddir, "check.input.npy"), check_x)
    np.save(os.path.join(ddir, "check.logits.npy"), check_logits)

    # Samples: the first test image of each class, as PNG, then read back.
    samples = []
    for c, name in enumerate(CLASSES):
        i = int(np.nonzero(yte == c)[0][0])
        fname = f"{i:04d}_{slug(name)}.png"
        Image.fromarray(xte[i], mode="L").save(os.path.join(sdir, fname), optimize=True)
        back = np.asarray(Image.open(os.path.join(sdir, fname)))
        assert back.dtype == np.uint8 and np.array_equal(back, xte[i])
        with torch.no_grad():
            p = torch.softmax(model(torch.from_numpy(preprocess(back[None], mean, std))), 1)[0]
        pred = int(p.argmax())
        samples.append({"file": fname, "test_index": i, "label": c, "label_name": name,
                        "predicted": pred, "predicted_name": CLASSES[pred],
                        "probability": round(float(p[pred]), 6)})
    samples.sort(key=lambda r: r["test_index"])
    for r in samples:
        print(f"  {r['file']:22s} PyTorch top-1 {r['predicted_name']} ({r['probability']:.4f})")

    meta = {
        "model": "ResNet-20 (He et al. 2015, sec. 4.2), option A shortcuts (subsample + zero-pad "
                 "planes//4 channels before and after), 1x28x28 input, 10 classes",
        "test_accuracy": round(test_acc, 4),
        "val_accuracy": round(best["val"], 4),
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "params": params,
        "mean": mean, "std": std,
        "mean_std_computed": [round(raw_stats[0], 6), round(raw_stats[1], 6)],
        "preprocess": "x = u8/255; (x - mean)/std; float32 NCHW",
        "optimizer": "Adam (betas 0.9/0.999, eps 1e-8, no weight decay)",
        "lr_schedule": {"type": "staircase exponential decay, per step",
                        "formula": "lr0 * decay_rate ** floor(step / decay_steps)",
                        "lr0": args.lr, "decay_rate": args.decay_rate,
                        "decay_epochs": args.decay_epochs,
                        "decay_steps": args.decay_epochs * steps_per_epoch},
        "batch_size": args.batch,
        "augmentation": "random 28x28 crop of 2-pixel zero-padded image, random horizontal flip",
        "split": {"train": 60000 - args.val, "val": args.val,
                  "val_selection": "first 5000 of a seeded permutation of the 60000 training images",
                  "test": 10000},
        "seed": args.seed,
        "threads": args.threads,
        "torch_version": torch_version(),
        "onnx_version": onnx.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "train_time_seconds": round(total_time, 1),
        "train_time_note": "wall time of all epochs incl. validation on 2 CPU cores shared "
                           "with other jobs; see the per-epoch seconds in history",
        "onnx": {"file": "resnet20_fashion_mnist.onnx", "opset": 13, "input": "input [1,1,28,28]",
                 "output": "logits [1,10]", "export": "eval mode, BN folded into Conv, "
                 "do_constant_folding=True"},
        "history": history,
    }
    with open(os.path.join(ddir, "resnet20_fashion_mnist.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    write_default_readme(ddir, meta)
    print("wrote", ddir, "and", sdir, flush=True)


def time_epochs(args):
    """Train --epochs epochs on --images, validate at each epoch's end, print one JSON line."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    if args.images:
        labels = args.labels or args.images.replace("images-idx3", "labels-idx1")
        x_all, y_all = read_idx(args.images), read_idx(labels).astype(np.int64)
        assert x_all.shape[0] == y_all.shape[0] and x_all.shape[1:] == (28, 28)
    else:
        x_all, y_all = load_split("train")
    mean, std = 0.2860, 0.3530  # the default model's (and edge-resnet train's for 28x28x1)
    perm = rng.permutation(len(x_all))
    val_idx, tr_idx = np.sort(perm[:args.val]), np.sort(perm[args.val:])
    xtr_u8, ytr = x_all[tr_idx], y_all[tr_idx]
    xval, yval = preprocess(x_all[val_idx], mean, std), y_all[val_idx]
    model = ResNetCifar(20, 1, 10)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = (len(xtr_u8) + args.batch - 1) // args.batch
    step, secs, train_secs, val_acc = 0, [], [], []
    for _ in range(args.epochs):
        model.train()
        t0 = time.time()
        order = rng.permutation(len(xtr_u8))
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb = torch.from_numpy(preprocess(augment(xtr_u8[idx], rng, args.pad, not args.no_flip),
                                             mean, std))
            yb = torch.from_numpy(ytr[idx])
            for g in opt.param_groups:
                g["lr"] = lr_at(step, args, steps_per_epoch)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        train_secs.append(round(time.time() - t0, 3))
        val_acc.append(round(evaluate(model, xval, yval), 4))
        secs.append(round(time.time() - t0, 3))
    print(json.dumps({"seconds_per_epoch": secs, "train_seconds_per_epoch": train_secs,
                      "val_acc": val_acc, "train": len(xtr_u8), "val": len(xval),
                      "steps_per_epoch": steps_per_epoch, "threads": args.threads,
                      "pad": args.pad, "flip": not args.no_flip,
                      "torch": torch_version()}), flush=True)
    return 0


def verify(root, pt=None):
    """Re-check the written outputs with the independent numpy ONNX evaluator."""
    import onnx
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import onnx_eval

    ddir = os.path.join(root, "testdata", "default")
    meta = json.load(open(os.path.join(ddir, "resnet20_fashion_mnist.json")))
    model = onnx.load(os.path.join(ddir, "resnet20_fashion_mnist.onnx"))
    onnx.checker.check_model(model, full_check=True)
    ins = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in model.graph.input]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    print("ONNX", ins, "->", outs, "opset", onnx_eval.opset_of(model))
    assert ins == [("input", [1, 1, 28, 28])] and outs == [("logits", [1, 10])]
    ok = True

    cx = np.load(os.path.join(ddir, "check.input.npy"))
    cl = np.load(os.path.join(ddir, "check.logits.npy"))
    got = np.concatenate([onnx_eval.run(model, {"input": cx[i:i + 1]})[0] for i in range(len(cx))])
    d = float(np.abs(got - cl).max())
    print(f"check.input.npy {cx.shape}: onnx_eval vs PyTorch logits max |diff| {d:.2e}")
    ok &= d < 1e-4

    if pt and os.path.exists(pt):
        # ONNX (numpy) vs PyTorch on the first 1000 test images.
        net = ResNetCifar(20, 1, 10)
        net.load_state_dict(torch.load(pt, map_location="cpu"))
        net.eval()
        xte, yte = load_split("test")
        x = preprocess(xte[:1000], meta["mean"], meta["std"])
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        got = np.concatenate([onnx_eval.run(model, {"input": x[i:i + 100]})[0]
                              for i in range(0, len(x), 100)])
        d = float(np.abs(got - ref).max())
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        acc = float((got.argmax(1) == yte[:1000]).mean())
        print(f"first 1000 test images: ONNX vs {pt} max |diff| {d:.2e}, top-1 agreement "
              f"{agree:.4f}, ONNX accuracy {acc:.4f}")
        ok &= d < 1e-3 and agree == 1.0
    print("verify:", "OK" if ok else "FAILED")
    return 0 if ok else 1


def write_default_readme(ddir, meta):
    sched = meta["lr_schedule"]
    lines = [
        "# The PyTorch reference: ResNet-20 on Fashion-MNIST",
        "",
        "Trained and exported by `tools/train_fashion_mnist.py` (see its header for every",
        "detail); `resnet20_fashion_mnist.json` holds the numbers and the per-epoch history.",
        "",
        "| file | contents |",
        "|---|---|",
        "| `resnet20_fashion_mnist.onnx` | ResNet-20 (He et al. 2015, sec. 4.2), option-A "
        "shortcuts (x[:, :, ::2, ::2], then planes//4 zero channels before and after), "
        "1x28x28 input, 10 classes. Plain eval export, opset 13, BatchNorm folded into Conv, "
        "input `input` [1,1,28,28] float32 NCHW, output `logits` [1,10] (no softmax). "
        "The output's batch dimension, which torch 1.13 leaves symbolic, is set to 1. |",
        "| `resnet20_fashion_mnist.json` | accuracy, params, mean/std, schedule, seed, "
        "versions, date, training time, per-epoch history |",
        "| `labels.txt` | the 10 class names, line i = class i |",
        "| `check.input.npy` | the first 8 test-set images, preprocessed, float32 [8,1,28,28] |",
        "| `check.logits.npy` | PyTorch's logits for them, float32 [8,10] (run them through the "
        "[1,1,28,28] model one at a time) |",
        "",
        f"Preprocessing: x = u8/255, then (x - {meta['mean']})/{meta['std']}, in float32 "
        "(mean/std of the 60,000 training images, rounded to 4 digits).",
        "",
        f"Training: {meta['split']['train']} training images, {meta['split']['val']} held out "
        f"for validation; Adam, batch {meta['batch_size']}, staircase exponential decay "
        f"lr = {sched['lr0']} * {sched['decay_rate']}^floor(step / {sched['decay_steps']}) "
        f"(every {sched['decay_epochs']} epochs), {meta['epochs']} epochs, augmentation: "
        f"{meta['augmentation']}; seed {meta['seed']}, torch {meta['torch_version']}, "
        f"{meta['train_time_seconds'] / 60:.0f} min wall time on 2 CPU cores shared with other "
        "jobs (an epoch took 2-7 min depending on the load).",
        f"The checkpoint with the best validation accuracy (epoch {meta['best_epoch']}, "
        f"{100 * meta['val_accuracy']:.2f} %) was kept; its accuracy on the 10,000 test "
        f"images is **{100 * meta['test_accuracy']:.2f} %**.",
        "",
        "Data: Fashion-MNIST from the Debian package dataset-fashion-mnist "
        "(`/usr/share/datasets/fashion-mnist/`), MIT license, Copyright (c) 2017 Zalando SE.",
        "The PyTorch state_dict is not kept in the repository.",
    ]
    with open(os.path.join(ddir, "reference.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
