#!/usr/bin/env bash
# Time a training epoch of edge-resnet and of PyTorch side by side (issue 10's
# "Time" check): the same net (CIFAR ResNet-20, option-A shortcuts), batch,
# optimizer (Adam, staircase decay), augmentation, seed and thread count, on the
# same cores, alternating R rounds in one run.
#
# Usage (from anywhere in the repository):
#   bench/train_epoch.sh IMAGES [--threads T] [--epochs E] [--batch B]
#                        [--val-split V] [--rounds R] [--pad P] [--no-flip]
#   IMAGES    IDX images file (.gz or not), 28x28 gray; labels beside it
#             (*-labels-idx1-ubyte*), e.g.
#             /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
#   defaults: --threads 1 --epochs 1 --batch 128 --val-split 2000 --rounds 1
#             --pad 2 with flip (the PyTorch reference trainer's augmentation:
#             random 28x28 crop of the 2-pixel zero-padded image, random
#             horizontal flip; edge-resnet train gets --pad 2 --flip to match)
#   env: PYTHON (default /usr/bin/python3, with torch)
#
# edge-resnet: go build ./cmd/edge-resnet, then
#   edge-resnet train --arch cifar-resnet20 --data IMAGES --val-split V --epochs E
#     --batch B --lr 1e-3 --decay-rate 0.5 --decay-steps 860 --seed 1 --threads T
#     --pad P [--flip] -o TMPDIR --json
# PyTorch: tools/train_fashion_mnist.py --time-epochs with the same settings.
# An epoch's seconds are each trainer's own clock: its training steps plus the
# end-of-epoch validation (edge-resnet: differences of the metrics' "seconds").
# Prints seconds per epoch of each (the mean over rounds and epochs, and the
# best round), edge-resnet / PyTorch, and the validation accuracies.
set -euo pipefail

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
[[ $# -ge 1 ]] || usage
IMAGES= THREADS=1 EPOCHS=1 BATCH=128 VAL=2000 ROUNDS=1 PAD=2 FLIP=1
while [[ $# -gt 0 ]]; do
	case $1 in
	--threads) THREADS=$2; shift 2 ;;
	--epochs) EPOCHS=$2; shift 2 ;;
	--batch) BATCH=$2; shift 2 ;;
	--val-split) VAL=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--pad) PAD=$2; shift 2 ;;
	--no-flip) FLIP=0; shift ;;
	-h|--help) usage 0 ;;
	-*) echo "train_epoch.sh: unknown flag $1" >&2; usage ;;
	*) IMAGES=$1; shift ;;
	esac
done
[[ -n $IMAGES && -f $IMAGES ]] || { echo "train_epoch.sh: no images file '$IMAGES'" >&2; exit 2; }
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/train_epoch.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

(cd "$ROOT" && go build -o "$TMP/edge-resnet" ./cmd/edge-resnet)
go_flags=(--pad "$PAD"); py_flags=(--pad "$PAD")
if [[ $FLIP == 1 ]]; then go_flags+=(--flip); else py_flags+=(--no-flip); fi
aug="pad $PAD (random crop of the zero-padded image)$([[ $FLIP == 1 ]] && echo ', random horizontal flip' || echo ', no flip')"
[[ $PAD == 0 ]] && aug="no crop$([[ $FLIP == 1 ]] && echo ', random horizontal flip' || echo ', no flip')"

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs online"
echo "torch: $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null), go: $(go env GOVERSION)"
echo "data: $IMAGES, val-split $VAL, epochs $EPOCHS, batch $BATCH, threads $THREADS, rounds $ROUNDS"
echo "both: cifar-resnet20, Adam lr 1e-3, decay 0.5 every 860 steps, seed 1, augmentation: $aug"

go_secs=() py_secs=() go_acc=() py_acc=()
for ((r = 1; r <= ROUNDS; r++)); do
	out=$TMP/run$r
	"$TMP/edge-resnet" train --arch cifar-resnet20 --data "$IMAGES" --val-split "$VAL" \
		--epochs "$EPOCHS" --batch "$BATCH" --lr 1e-3 --decay-rate 0.5 --decay-steps 860 \
		--seed 1 --threads "$THREADS" "${go_flags[@]}" -o "$out" --json >"$TMP/go$r.txt" 2>"$TMP/go$r.err" ||
		{ cat "$TMP/go$r.err" >&2; exit 1; }
	# seconds per epoch: differences of the cumulative "seconds" of the epoch-end validations
	read -r s a < <("$PYTHON" - "$TMP/go$r.txt" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ends = {}
for r in recs:
    ends[r["epoch"]] = r  # the last validation of each epoch is its end
prev, secs = 0.0, []
for e in sorted(ends):
    secs.append(ends[e]["seconds"] - prev); prev = ends[e]["seconds"]
print(" ".join(f"{x:.3f}" for x in secs).replace(" ", ","), ",".join(f"{ends[e]['val_acc']:.4f}" for e in sorted(ends)))
PY
	)
	go_secs+=("$s"); go_acc+=("$a")
	echo "round $r edge-resnet: s/epoch $s  val acc $a"

	"$PYTHON" "$ROOT/tools/train_fashion_mnist.py" --time-epochs --images "$IMAGES" --val "$VAL" \
		--epochs "$EPOCHS" --batch "$BATCH" --lr 1e-3 --decay-rate 0.5 --decay-steps 860 \
		--seed 1 --threads "$THREADS" "${py_flags[@]}" >"$TMP/py$r.txt" 2>"$TMP/py$r.err" ||
		{ cat "$TMP/py$r.err" >&2; exit 1; }
	read -r s a < <("$PYTHON" -c '
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(",".join(f"{x:.3f}" for x in d["seconds_per_epoch"]), ",".join(f"{x:.4f}" for x in d["val_acc"]))
' "$TMP/py$r.txt")
	py_secs+=("$s"); py_acc+=("$a")
	echo "round $r PyTorch:     s/epoch $s  val acc $a"
done

"$PYTHON" - "${go_secs[*]}" "${py_secs[*]}" "${go_acc[*]}" "${py_acc[*]}" <<'PY'
import sys
def rounds(s): return [[float(x) for x in r.split(",")] for r in s.split()]
g, p = rounds(sys.argv[1]), rounds(sys.argv[2])
gm = sum(map(sum, g)) / sum(map(len, g)); pm = sum(map(sum, p)) / sum(map(len, p))
gb = min(sum(r) / len(r) for r in g); pb = min(sum(r) / len(r) for r in p)
print(f"s/epoch, mean  edge-resnet {gm:.2f}  PyTorch {pm:.2f}  edge-resnet/PyTorch {gm / pm:.2f}")
print(f"s/epoch, best round  edge-resnet {gb:.2f}  PyTorch {pb:.2f}  edge-resnet/PyTorch {gb / pb:.2f}")
print(f"val acc (per round, per epoch)  edge-resnet {sys.argv[3]}  PyTorch {sys.argv[4]}")
PY
