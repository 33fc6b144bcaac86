#!/usr/bin/env bash
# Line coverage of crates/miniport (the Windows shell's kernel code) by the
# user-mode NDIS host's scenarios (its integration tests, tests/*.rs),
# measured with rustc's source-based coverage (-C instrument-coverage) and
# cargo-llvm-cov. miniport's own unit tests are not counted: the figure is
# what the executed scenarios reach. Prints each file and the total; fails
# below MIN_LINES percent (default 85, issue 15's aim).
#
# The profile format is LLVM's, so llvm-profdata and llvm-cov must be of the
# major version rustc was built with (`rustc -vV`: LLVM 22 today). rustup's
# llvm-tools component is not needed: Debian ships llvm-<N>
# (bookworm-security has llvm-22), and LLVM_COV / LLVM_PROFDATA point
# cargo-llvm-cov at it.
#
# Needs: apt-get install llvm-22; cargo install cargo-llvm-cov --locked
# (installed here when missing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
min=${MIN_LINES:-85}
say() { printf 'coverage: %s\n' "$*"; }
die() { printf 'coverage: FAIL: %s\n' "$*" >&2; exit 1; }

major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[ -n "$major" ] || die "rustc -vV names no LLVM version"
LLVM_COV=$(command -v "llvm-cov-$major" || true)
LLVM_PROFDATA=$(command -v "llvm-profdata-$major" || true)
[ -n "$LLVM_COV" ] && [ -n "$LLVM_PROFDATA" ] ||
  die "llvm-cov-$major / llvm-profdata-$major not found (rustc uses LLVM $major: apt-get install llvm-$major)"
export LLVM_COV LLVM_PROFDATA
command -v cargo-llvm-cov >/dev/null 2>&1 || cargo install cargo-llvm-cov --locked --quiet

cd "$root"
t0=$(date +%s)
cargo llvm-cov clean >/dev/null 2>&1 || true
# Only the scenario binaries: the library's and the helper binary's own
# test harnesses would add copies of the host's functions built with
# cfg(test), which llvm-cov reports as mismatched data.
cargo llvm-cov --no-report --locked -p ndis-host --test '*' >/dev/null
# The report of both packages; keep miniport's rows. Columns: file,
# regions, missed, cover, functions, missed, executed, lines, missed lines.
table=$(cargo llvm-cov report -p ndis-host -p miniport --summary-only)
rows=$(awk '$1 ~ /^miniport\/src\// {print $1, $8, $9}' <<<"$table")
[ -n "$rows" ] || die "no crates/miniport file in the report"
printf '%s\n' "$rows" | awk '{printf "coverage:   %-34s %5.1f%% of %4d lines\n", $1, 100*($2-$3)/$2, $2}'
read -r lines missed < <(awk '{l+=$2; m+=$3} END {print l, m}' <<<"$rows")
pct=$(awk -v l="$lines" -v m="$missed" 'BEGIN {printf "%.1f", 100*(l-m)/l}')
say "crates/miniport: $((lines - missed)) of $lines lines ($pct%) executed by the NDIS host tests, in $(( $(date +%s) - t0 )) s (LLVM $major)"
awk -v p="$pct" -v m="$min" 'BEGIN {exit !(p >= m)}' || die "$pct% is below $min%"
say "OK (>= $min%)"
