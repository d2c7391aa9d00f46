#!/usr/bin/env bash
# Train LeNet on scikit-learn's bundled 8x8 digits (offline), then check that OpenCV's Caffe
# importer predicts what caffeconf predicts from the saved deploy prototxt and .caffemodel.
# Run it as `bash scripts/dev.sh train-demo`, which sets up .venv first; outputs go to build/digits.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAFFECONF_VENV:-.venv}
OUT=build/digits

mkdir -p "$OUT"
rm -f "$OUT"/lenet_digits_iter_*
"$VENV/bin/python" -m caffeconf.train.digits "$OUT"
SECONDS=0
"$VENV/bin/python" -c 'import caffeconf, sys; sys.exit(caffeconf.train("configs/lenet_digits.yaml"))'
echo "trained in ${SECONDS}s"
"$VENV/bin/python" -c 'import caffeconf, sys; caffeconf.load("configs/lenet_digits.yaml", stage="deploy").save(sys.argv[1])' "$OUT/lenet_digits_deploy.prototxt"
"$VENV/bin/python" - "$OUT/lenet_digits_deploy.prototxt" "$OUT/lenet_digits_iter_1500.caffemodel" <<'PY'
import sys

import cv2
import numpy as np
import torch

import caffeconf
from caffeconf.train.digits import digits_split

deploy, weights = sys.argv[1:]
_, (images, labels) = digits_split()
batch = images.astype(np.float32) / 256
model = caffeconf.Model(caffeconf.load(deploy, phase="TEST"), weights, device="cpu")
with torch.no_grad():
    ours = model({"data": batch})["prob"].numpy()
net = cv2.dnn.readNetFromCaffe(deploy, weights)
net.setInput(batch)
theirs = net.forward("prob").reshape(ours.shape)
agree = (ours.argmax(1) == theirs.argmax(1)).mean()
print(f"test accuracy {(ours.argmax(1) == labels).mean():.2%} on {len(labels)} digits; "
      f"OpenCV agrees on {agree:.2%} of predictions (max |prob difference| {np.abs(ours - theirs).max():.2g})")
sys.exit(0 if agree == 1 else 1)
PY
echo "model: $OUT/lenet_digits_iter_1500.caffemodel, deploy net: $OUT/lenet_digits_deploy.prototxt"
echo "log: $OUT/lenet_digits_log.csv, plot: $OUT/lenet_digits_plot.png"
