#!/bin/sh
# Converts the trained Fashion-MNIST ResNet-20 (made by
# tools/train_fashion_mnist.py) into the model image that the edge-resnet
# binary embeds (models/resnet20_fashion_mnist.ern), with its labels and
# preprocessing: 28x28 grayscale, no resize for 28x28 input (shorter side to
# 28, center crop 28 for anything else), x/255, mean 0.2860, std 0.3530.
# Run from the repository root after training.
set -eu
go run ./cmd/edge-resnet convert testdata/default/resnet20_fashion_mnist.onnx \
  -o models/resnet20_fashion_mnist.ern \
  --name resnet20-fashion-mnist \
  --labels testdata/default/labels.txt \
  --resize 28 --mean 0.2860 --std 0.3530
