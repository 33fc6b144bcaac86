#!/usr/bin/env bash
# The RoCE engine's own cost, in instructions per KiB of payload, beside the
# floor (one memcpy + one CRC32 of the same bytes), counted by callgrind.
# Each figure is the difference of two runs (N1 and N2 messages of 64 KiB)
# divided by the extra payload, so setup cancels out.
#   bash crates/roce/examples/engine_cost.sh [mtu] [--json]
# Needs valgrind (Debian package). Prints one line per figure and the ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
mtu=${1:-4096}
json=${2:-}
command -v valgrind >/dev/null || { echo "engine_cost: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --locked -q -p roce --example engine_cost
bin=target/release/examples/engine_cost
n1=20 n2=120
count() { # mode messages -> instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_kib() { # mode [mtu]
  local a b
  a=$(count "$1" $n1 ${2:-}); b=$(count "$1" $n2 ${2:-})
  echo $(( (b - a) / ((n2 - n1) * 64) ))
}
engine=$(per_kib engine "$mtu")
floor=$(per_kib floor)
ratio=$(awk -v e="$engine" -v f="$floor" 'BEGIN { printf "%.2f", e / f }')
if [ "$json" = --json ]; then
  printf '{"mtu":%s,"engine_instructions_per_kib":%s,"floor_instructions_per_kib":%s,"ratio":%s,"target_ratio":1.5}\n' \
    "$mtu" "$engine" "$floor" "$ratio"
else
  echo "engine (WRITE 64 KiB, MTU $mtu, send + receive + ICRC both ways + placement): $engine instructions/KiB"
  echo "floor  (one memcpy + one CRC32 of the same bytes):                          $floor instructions/KiB"
  echo "engine / floor: $ratio (target <= 1.5)"
fi
