#!/bin/sh
# Makes the model image that the edge-resnet binary and library embed
# (models/resnet20_fashion_mnist.ern) with edge-resnet's own trainer, then
# has PyTorch check it: the recipe of the built-in model, as a command.
#
# The model: a CIFAR-style ResNet-20 (He et al. 2015, sec. 4.2, option-A
# shortcuts) on Fashion-MNIST's 28x28 grayscale images, 55,000 training
# images (5,000 held out for validation, seeded), 12 epochs of Adam at
# batch 128, staircase decay 0.001 x 0.5^floor(step/860) (every 2 epochs),
# a random crop of the 2-pixel zero-padded image and a random horizontal
# flip: tools/train_fashion_mnist.py's recipe, the PyTorch reference the
# result is compared with (testdata/default/resnet20_fashion_mnist.json:
# 92.11% test top-1). The best validation checkpoint is kept. Labels from
# testdata/default/labels.txt; preprocessing x/255, mean 0.2860, std 0.3530
# (what train gives 28x28 grayscale data).
#
# The same seed and thread count give the same model bit for bit on the
# same kernel path (`edge-resnet cpu`); another CPU may round differently.
#
# Then, with Debian's python3-torch (tools/ern_torch.py evaluates the image
# in PyTorch, independently of Go), it writes what the tests compare the
# embedded model with:
#   testdata/default/embedded.logits.npy     logits of check.input.npy
#   testdata/default/embedded.accuracy.json  test-set top-1 (10,000 images)
#   testdata/samples/expected.json           top-1 and probability per sample
#
# Run from the repository root (about 35 min on one core of a 2-core Xeon):
#   tools/make_default_model.sh [RUN_DIR]
set -eu
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
RUN=${1:-/tmp/default-model-run}
PYTHON=${PYTHON:-/usr/bin/python3}
go run ./cmd/edge-resnet train --arch cifar-resnet20 \
  --data "$DATA/train-images-idx3-ubyte.gz" --val-split 5000 \
  --epochs 12 --batch 128 --lr 1e-3 --decay-rate 0.5 --decay-steps 860 \
  --pad 2 --flip --seed 3 --threads 1 \
  --labels testdata/default/labels.txt --name resnet20-fashion-mnist -o "$RUN"
cp "$RUN/best.ern" models/resnet20_fashion_mnist.ern
cp "$RUN/metrics.jsonl" testdata/default/embedded.metrics.jsonl
"$PYTHON" tools/ern_torch.py models/resnet20_fashion_mnist.ern \
  --npy testdata/default/check.input.npy --out testdata/default/embedded.logits.npy
"$PYTHON" tools/ern_torch.py models/resnet20_fashion_mnist.ern --samples testdata/samples
"$PYTHON" tools/ern_torch.py models/resnet20_fashion_mnist.ern \
  --idx "$DATA/t10k-images-idx3-ubyte.gz" > testdata/default/embedded.accuracy.json
cat testdata/default/embedded.accuracy.json
