#!/usr/bin/env bash
# GPU figures in one command (at most ~8 minutes): training chars/s, time to 2.80 and 1.25 nats/char,
# and generation speed, for the default and the largest preset, on Nietzsche.
#
#   bash bench/gpu.sh                      # on a GPU machine (torch with CUDA installed)
#   bash bench/gpu.sh --device cpu         # the same script, shortened, to check it runs here
#
# The corpus: $CORPUS, else ../shared/data/nietzsche.txt, else .data/nietzsche.txt (copy it there,
# git-ignored, when the machine gets only the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda
[ "${1:-}" = "--device" ] && device="${2:-cuda}"
corpus="${CORPUS:-}"
for candidate in ../shared/data/nietzsche.txt .data/nietzsche.txt; do
  [ -z "$corpus" ] && [ -f "$candidate" ] && corpus="$candidate"
done
[ -n "$corpus" ] || { echo "no Nietzsche corpus found; set CORPUS=path" >&2; exit 2; }
if [ "$device" = "cpu" ]; then
  minutes="${MINUTES:-0.2}"; gen_length=300; repeats=1
else
  minutes="${MINUTES:-2.5}"; gen_length=2000; repeats=3
  python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.cuda.get_device_name())"
fi
mkdir -p runs
python3 bench/run.py --corpus "$corpus" --device "$device" --gen-device "$device" --minutes "$minutes" \
  --presets "cpu-fast,gpu-large" --gen-length "$gen_length" --gen-repeats "$repeats" --json "runs/gpu-$device.json"
