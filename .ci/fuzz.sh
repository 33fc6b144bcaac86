#!/usr/bin/env bash
# Runs every fuzz target for a bounded time from its committed seed corpus
# (plus, for parse_frame, every frame of the rxe captures), under
# AddressSanitizer (cargo-fuzz's default). Fails on the first crash,
# timeout or leak, printing the reproducer (its bytes, its decoded form and
# the command that replays it). Prints executions and coverage per target.
#
#   bash .ci/fuzz.sh                  # FUZZ_SECONDS=75 per target (5 targets)
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh # a longer run
#   bash .ci/fuzz.sh cm_sequences     # some targets only
#
# cargo-fuzz needs nightly flags; the stable toolchain unlocks them with
# RUSTC_BOOTSTRAP=1, as .ci/run's fuzz build does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
secs=${FUZZ_SECONDS:-75}
export RUSTC_BOOTSTRAP=1
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet

# target -> the fuzz crate that holds it
declare -A crate=(
  [parse_frame]=crates/roce/fuzz
  [cm_sequences]=crates/roce/fuzz
  [rc_sequences]=crates/roce/fuzz
  [ndk_api]=fuzz
  [smbd_client]=fuzz
)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse_frame cm_sequences rc_sequences ndk_api smbd_client)

work=$(mktemp -d "${TMPDIR:-/tmp}/ndkrs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
summary=()
start=$(date +%s)
for t in "${targets[@]}"; do
  dir=${crate[$t]:?unknown target $t}
  t0=$(date +%s)
  (cd "$dir" && cargo fuzz build -O "$t" >/dev/null 2>"$work/build-$t.log") || {
    cat "$work/build-$t.log" >&2
    echo "fuzz: building $t failed" >&2
    exit 1
  }
  # A scratch corpus: the committed seeds stay as committed.
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  cp -r "$dir/corpus-seed/$t/." "$work/corpus/$t/"
  seeds=()
  if [ "$t" = parse_frame ]; then
    (cd "$dir" && cargo run -q --release --bin seed_corpus >/dev/null)
    seeds=("$dir/seeds")
  fi
  bin="$dir/target/x86_64-unknown-linux-gnu/release/$t"
  log="$work/$t.log"
  echo "=== fuzz $t for ${secs}s ==="
  if ! "$bin" "$work/corpus/$t" "${seeds[@]}" \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1; then
    grep -E "panicked|ERROR|SUMMARY|assertion|left:|right:" "$log" | head -20 >&2 || true
    for a in "$work"/artifacts/"$t"/*; do
      [ -f "$a" ] || continue
      keep="$root/$dir/artifacts/$t"
      mkdir -p "$keep"
      cp "$a" "$keep/"
      echo "--- reproducer $(basename "$a") ($(stat -c %s "$a") bytes), kept in $keep:" >&2
      od -An -tx1 -v "$a" | head -32 >&2
      (cd "$dir" && cargo fuzz fmt -O "$t" "artifacts/$t/$(basename "$a")" 2>/dev/null | tail -60) >&2 || true
      echo "replay: (cd $dir && RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t artifacts/$t/$(basename "$a"))" >&2
    done
    echo "fuzz: $t FAILED" >&2
    exit 1
  fi
  execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1)
  cov=$(grep -oE "cov: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  ft=$(grep -oE "ft: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  corp=$(grep -oE "corp: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  summary+=("$(printf '%-13s %12s %7s %8s %7s %6ss' "$t" "$execs" "$cov" "$ft" "$corp" "$(( $(date +%s) - t0 ))")")
done
echo
printf '%-13s %12s %7s %8s %7s %7s\n' target executions cov ft corpus time
printf '%s\n' "${summary[@]}"
echo "fuzz: ${#targets[@]} targets, 0 crashes, $(( $(date +%s) - start )) s"
