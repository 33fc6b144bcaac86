#!/usr/bin/env bash
# The RoCE engine's own cost, in instructions per KiB of payload, beside the
# floor (one memcpy + one CRC32 of the same bytes), counted by callgrind.
# Each figure is the difference of two runs (N1 and N2 messages of 64 KiB)
# divided by the extra payload, so setup cancels out. Two builds:
#   table:  the `portable-crc` feature: crc32fast's table-driven CRC only;
#   clmul:  the default build: roce's carry-less multiply fold, chosen at
#           run time by CPUID (what the kernel and the host both run).
# Two floors, each built like the engine of its row: the whole 64 KiB as
# one copy and one CRC, and the same bytes in MTU-sized pieces (a copy and
# a CRC per piece, as the engine does per packet). The engine figure covers
# both engines (the sender's CRC and copy, the receiver's CRC and copy):
# "per side" sets half of it against the MTU-piece floor. The 64 KiB floor
# is inflated by glibc's `rep movsb` copy, which callgrind counts per byte.
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
per_kib() { # binary mode messages-arg...
  local bin=$1 mode=$2 a b
  a=$(count "$bin" "$mode" $n1 ${3:-}); b=$(count "$bin" "$mode" $n2 ${3:-})
  echo $(( (b - a) / ((n2 - n1) * 64) ))
}
ratio() { awk -v e="$1" -v f="$2" -v d="${3:-1}" 'BEGIN { printf "%.2f", e / d / f }'; }
rows=()
for crc in table clmul; do
  case $crc in
    table) cargo build --release --locked -q -p roce --example engine_cost \
             --features portable-crc --target-dir target/portable-crc
           bin=target/portable-crc/release/examples/engine_cost ;;
    clmul) cargo build --release --locked -q -p roce --example engine_cost
           bin=target/release/examples/engine_cost ;;
  esac
  engine=$(per_kib "$bin" engine "$mtu")
  floor=$(per_kib "$bin" floor)
  pieces=$(per_kib "$bin" floor "$mtu")
  rows+=("$crc $engine $floor $(ratio "$engine" "$floor") $pieces $(ratio "$engine" "$pieces") $(ratio "$engine" "$pieces" 2)")
done
if [ "$json" = --json ]; then
  printf '{"mtu":%s,"target_ratio":1.5,"rows":[' "$mtu"
  sep=
  for r in "${rows[@]}"; do
    set -- $r
    printf '%s{"crc":"%s","engine_instructions_per_kib":%s,"floor_instructions_per_kib":%s,"ratio":%s,"floor_mtu_pieces_instructions_per_kib":%s,"ratio_mtu_pieces":%s,"ratio_per_side_mtu_pieces":%s}' \
      "$sep" "$1" "$2" "$3" "$4" "$5" "$6" "$7"
    sep=,
  done
  printf ']}\n'
else
  echo "engine: WRITE 64 KiB between two in-process devices, MTU $mtu (send, receive, ICRC both ways, placement)"
  echo "floor:  one memcpy + one CRC32 of the same bytes; pieces: the same per $mtu-byte piece"
  printf '%-6s %12s %12s %6s %12s %6s %9s\n' crc "engine/KiB" "floor/KiB" ratio "pieces/KiB" ratio "per side"
  for r in "${rows[@]}"; do
    set -- $r
    printf '%-6s %12s %12s %6s %12s %6s %9s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7"
  done
  echo "(instructions per KiB of payload; target: engine <= 1.5 x floor)"
fi
