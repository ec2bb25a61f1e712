#!/usr/bin/env bash
# Writes the CamVid list files in splits/camvid/ from the SegNet release's train.txt and val.txt
# (reproducible: the output depends only on those two files; see splits/camvid/README.md).
#   cross-drive-val.txt    every image of drive 0006R0 (101): a drive no other split holds
#   cross-drive-train.txt  train + val without 0006R0 (367: drives 0001TP and 0016E5)
#   trainval.txt           train + val (468), for the final model
# Usage: bash scripts/camvid-splits.sh [CAMVID_ROOT]   (default ../shared/data/camvid)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-../shared/data/camvid}
for list in train val; do
    [ -f "$root/$list.txt" ] || { echo "no $root/$list.txt: pass the CamVid root" >&2; exit 1; }
done
held_out=0006R0
out=splits/camvid
mkdir -p "$out"
cat "$root/train.txt" "$root/val.txt" > "$out/trainval.txt"
grep -F "/${held_out}_" "$out/trainval.txt" > "$out/cross-drive-val.txt"
grep -vF "/${held_out}_" "$out/trainval.txt" > "$out/cross-drive-train.txt"
wc -l "$out"/*.txt
