#!/usr/bin/env bash
# Synthetic data of the shipped PA detector (docs/detector.md, models/README.md).
# Covers that carry a printed Parental Advisory label are left out (--exclude): training
# covers the previous detector scored >= 0.1 (printed-pa-train-auto.txt) and the held-out
# covers with a label confirmed by eye (printed-pa-holdout.txt).
#
#   models/detector-data/gen.sh COVERS_TRAIN COVERS_HOLDOUT TEMPLATE OUT
#
# COVERS_TRAIN / COVERS_HOLDOUT: covers5 split by sha256(file name)[..8] % 10 == 0 -> held out
# (see models/README.md); TEMPLATE: ../shared/data/pa-logo/parental_advisory.png.
# SLEEVE=path/to/sleeve overrides the binary; N_PA / N_SC change the training counts.
set -euo pipefail
[[ $# -eq 4 ]] || { sed -n 2,11p "$0" >&2; exit 2; }
TR=$1 HO=$2 TPL=$3 D=$4
HERE=$(cd "$(dirname "$0")" && pwd)
S=${SLEEVE:-target/debug/sleeve}
XT=$HERE/printed-pa-train-auto.txt XH=$HERE/printed-pa-holdout.txt
run() { echo "== synth $*"; "$S" synth "$@" --force; }
# training (seeds 101-105)
run pa --covers "$TR" --exclude "$XT" --template "$TPL" --count "${N_PA:-1500}" --seed 101 --out "$D/train_pa_tpl"
run pa --covers "$TR" --exclude "$XT" --count "${N_PA:-1500}" --seed 102 --out "$D/train_pa_drawn"
run scenes --covers "$TR" --exclude "$XT" --template "$TPL" --count "${N_SC:-400}" --seed 104 --pa-prob 0.5 --no-sleeve-prob 0 --out "$D/train_sc_tpl"
run scenes --covers "$TR" --exclude "$XT" --count "${N_SC:-400}" --seed 105 --pa-prob 0.5 --no-sleeve-prob 0 --out "$D/train_sc_drawn"
# validation (seeds 201-203, held-out covers)
run pa --covers "$HO" --exclude "$XH" --template "$TPL" --count 150 --seed 201 --out "$D/val_pa_tpl"
run pa --covers "$HO" --exclude "$XH" --count 150 --seed 202 --out "$D/val_pa_drawn"
run scenes --covers "$HO" --exclude "$XH" --template "$TPL" --count 100 --seed 203 --pa-prob 0.5 --no-sleeve-prob 0 --out "$D/val_sc"
# held-out test (seeds 301-306, never used in training or validation)
run pa --covers "$HO" --exclude "$XH" --template "$TPL" --count 400 --seed 301 --out "$D/test_pa_tpl"
run pa --covers "$HO" --exclude "$XH" --count 400 --seed 302 --out "$D/test_pa_drawn"
run scenes --covers "$HO" --exclude "$XH" --template "$TPL" --count 300 --seed 304 --pa-prob 0.5 --out "$D/test_sc_tpl"
run scenes --covers "$HO" --exclude "$XH" --count 300 --seed 305 --pa-prob 0.5 --out "$D/test_sc_drawn"
run pa --covers "$HO" --exclude "$XH" --label-prob 0 --count 300 --seed 306 --out "$D/test_clean_real"
echo "done: $D"
