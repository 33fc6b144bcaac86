#!/usr/bin/env bash
# The RoCE engine's own cost, in instructions per KiB of payload, beside the
# floor (one memcpy + one CRC32 of the same bytes), counted by callgrind.
# Each figure is the difference of two runs (N1 and N2 messages of 64 KiB)
# divided by the extra payload, so setup cancels out. Two builds:
#   portable: crc32fast's table-driven CRC, what the no_std kernel build
#             uses today (no runtime CPU detection without std);
#   clmul:    the same code built with PCLMULQDQ and SSE4.1 enabled, so
#             crc32fast folds with carry-less multiplies (what the Linux
#             host shell gets from crc32fast's runtime detection).
# The floor is built the same way as the engine in each row.
#   bash crates/roce/examples/engine_cost.sh [mtu] [--json]
# Needs valgrind (Debian package).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
mtu=${1:-4096}
json=${2:-}
command -v valgrind >/dev/null || { echo "engine_cost: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
n1=20 n2=120
count() { # binary mode messages [mtu] -> instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_kib() { # binary mode [mtu]
  local bin=$1 mode=$2 a b
  a=$(count "$bin" "$mode" $n1 ${3:-}); b=$(count "$bin" "$mode" $n2 ${3:-})
  echo $(( (b - a) / ((n2 - n1) * 64) ))
}
rows=()
for crc in portable clmul; do
  case $crc in
    portable) cargo build --release --locked -q -p roce --example engine_cost
              bin=target/release/examples/engine_cost ;;
    clmul)    RUSTFLAGS="-C target-feature=+pclmulqdq,+sse4.1" \
                cargo build --release --locked -q -p roce --example engine_cost --target-dir target/clmul
              bin=target/clmul/release/examples/engine_cost ;;
  esac
  engine=$(per_kib "$bin" engine "$mtu")
  floor=$(per_kib "$bin" floor)
  ratio=$(awk -v e="$engine" -v f="$floor" 'BEGIN { printf "%.2f", e / f }')
  rows+=("$crc $engine $floor $ratio")
done
if [ "$json" = --json ]; then
  printf '{"mtu":%s,"target_ratio":1.5,"rows":[' "$mtu"
  sep=
  for r in "${rows[@]}"; do
    set -- $r
    printf '%s{"crc":"%s","engine_instructions_per_kib":%s,"floor_instructions_per_kib":%s,"ratio":%s}' "$sep" "$1" "$2" "$3" "$4"
    sep=,
  done
  printf ']}\n'
else
  echo "engine: WRITE 64 KiB between two in-process devices, MTU $mtu (send, receive, ICRC both ways, placement)"
  echo "floor:  one memcpy + one CRC32 of the same bytes"
  printf '%-9s %14s %14s %8s\n' crc "engine instr/KiB" "floor instr/KiB" ratio
  for r in "${rows[@]}"; do
    set -- $r
    printf '%-9s %14s %14s %8s\n' "$1" "$2" "$3" "$4"
  done
  echo "(target: engine <= 1.5 x floor)"
fi
