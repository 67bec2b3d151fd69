#!/bin/bash
# Synthetic PA detector data, session 4: covers with printed labels left out
# (train: auto list at detector score >= 0.1; val/test: the 24 held-out covers checked by eye).
set -euo pipefail
S=${SLEEVE:-/work/runs/s4/sleeve}
D=/work/runs/s4/data
TPL=/work/shared/data/pa-logo/parental_advisory.png
TR=/work/runs/detector/data/covers_train; HO=/work/runs/detector/data/covers_holdout
XT=/work/runs/s4/exclude_train_auto.txt; XH=/work/runs/s4/exclude_holdout_verified.txt
run() { echo "== $*"; nice -n 5 $S synth "$@" --force; }
run pa --covers $TR --exclude $XT --template $TPL --count ${N_PA:-1500} --seed 101 --out $D/train_pa_tpl
run pa --covers $TR --exclude $XT --count ${N_PA:-1500} --seed 102 --out $D/train_pa_drawn
run scenes --covers $TR --exclude $XT --template $TPL --count ${N_SC:-400} --seed 104 --pa-prob 0.5 --no-sleeve-prob 0 --out $D/train_sc_tpl
run scenes --covers $TR --exclude $XT --count ${N_SC:-400} --seed 105 --pa-prob 0.5 --no-sleeve-prob 0 --out $D/train_sc_drawn
run pa --covers $HO --exclude $XH --template $TPL --count 150 --seed 201 --out $D/val_pa_tpl
run pa --covers $HO --exclude $XH --count 150 --seed 202 --out $D/val_pa_drawn
run scenes --covers $HO --exclude $XH --template $TPL --count 100 --seed 203 --pa-prob 0.5 --no-sleeve-prob 0 --out $D/val_sc
run pa --covers $HO --exclude $XH --template $TPL --count 400 --seed 301 --out $D/test_pa_tpl
run pa --covers $HO --exclude $XH --count 400 --seed 302 --out $D/test_pa_drawn
run scenes --covers $HO --exclude $XH --template $TPL --count 300 --seed 304 --pa-prob 0.5 --out $D/test_sc_tpl
run scenes --covers $HO --exclude $XH --count 300 --seed 305 --pa-prob 0.5 --out $D/test_sc_drawn
run pa --covers $HO --exclude $XH --label-prob 0 --count 300 --seed 306 --out $D/test_clean_real
echo done
