#!/usr/bin/env bash
# Runs every fuzz target from its committed seed corpus (plus, for
# parse_frame, every frame of the rxe captures), under AddressSanitizer
# (cargo-fuzz's default). Fails on the first crash, timeout or leak,
# printing the reproducer (its bytes, its decoded form and the command that
# replays it). Prints executions and coverage per target.
#
# Deterministic in CI: each target runs a fixed number of inputs (-runs=)
# from a fixed libFuzzer seed (-seed=) and the committed corpus, so CI on
# the same code tries exactly the same inputs every time. A crash in CI then
# comes from the change under test (which changed what the inputs reach),
# never from a new random find that fails one run in ten; exploring is the
# long run's job (docs/fuzzing.md), and its finds come back as corpus
# entries with a regression test. Time is still bounded: -max_total_time caps each target
# (FUZZ_SECONDS); a slower machine then runs a prefix of the same inputs,
# which can only find what the full run would find. The runs are chosen to
# take about a minute per target on a 2-core CI machine.
#
#   bash .ci/fuzz.sh                         # fixed runs and seeds (CI)
#   bash .ci/fuzz.sh cm_sequences            # some targets only
#   FUZZ_SEED=0 FUZZ_RUNS=-1 FUZZ_SECONDS=1200 bash .ci/fuzz.sh ndk_api
#                                            # explore: random seed, time bound
#   FUZZ_KEEP=/tmp/corpora bash .ci/fuzz.sh  # keep the grown corpora there
#
# cargo-fuzz needs nightly flags; the stable toolchain unlocks them with
# RUSTC_BOOTSTRAP=1, as .ci/run's fuzz build does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
secs=${FUZZ_SECONDS:-150}
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
# Inputs per target (about a minute each on the CI machine; see
# docs/fuzzing.md for the measured rates) and the libFuzzer seed of each.
declare -A runs=(
  [parse_frame]=1500000
  [cm_sequences]=60000
  [rc_sequences]=55000
  [ndk_api]=55000
  [smbd_client]=360000
)
declare -A seed=(
  [parse_frame]=2001
  [cm_sequences]=2002
  [rc_sequences]=2003
  [ndk_api]=2004
  [smbd_client]=2005
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
  r=${FUZZ_RUNS:-${runs[$t]}}
  sd=${FUZZ_SEED:-${seed[$t]}}
  echo "=== fuzz $t: -runs=$r -seed=$sd (at most ${secs}s) ==="
  # What else a run depends on, measured as two runs of one seed ending
  # with different corpora, and switched off:
  #  -reload=0   libFuzzer re-reads the corpus directory every second, so
  #              the clock decides when (runs part ways after a second);
  #  -use_cmp=0  mutations built from the operands of the last comparisons
  #              include heap pointers, whose values differ from run to
  #              run (runs part ways after some 40,000 inputs). The
  #              long run (FUZZ_SEED=0) keeps them: it explores, CI checks.
  # (The targets' own hashed maps were made ordered for the same reason.)
  # -timeout is generous so a loaded machine does not turn a slow input
  # into a flake; a real hang still fails.
  det=(-reload=0 -use_cmp=0)
  [ "$sd" != 0 ] || det=()
  if ! "$bin" "$work/corpus/$t" "${seeds[@]}" \
      -runs="$r" -seed="$sd" "${det[@]}" -max_total_time="$secs" \
      -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
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
      echo "rerun this exact campaign: FUZZ_RUNS=$r FUZZ_SEED=$sd bash .ci/fuzz.sh $t" >&2
    done
    echo "fuzz: $t FAILED" >&2
    exit 1
  fi
  execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1)
  cov=$(grep -oE "cov: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  ft=$(grep -oE "ft: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  corp=$(grep -oE "corp: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  rate=$(grep -oE "exec/s: [0-9]+" <<<"$done_line" | grep -oE "[0-9]+" || echo "?")
  if [ "$r" != -1 ] && [ "$execs" != "?" ] && [ "$execs" -lt "$r" ]; then
    echo "fuzz: $t stopped at the ${secs}s cap after $execs of $r runs (a slow machine: a prefix of the same inputs)"
  fi
  if [ -n "${FUZZ_KEEP:-}" ]; then
    mkdir -p "$FUZZ_KEEP/$t"
    cp -r "$work/corpus/$t/." "$FUZZ_KEEP/$t/"
  fi
  summary+=("$(printf '%-13s %12s %7s %7s %8s %7s %6ss' "$t" "$execs" "$rate" "$cov" "$ft" "$corp" "$(( $(date +%s) - t0 ))")")
done
echo
printf '%-13s %12s %7s %7s %8s %7s %7s\n' target executions exec/s cov ft corpus time
printf '%s\n' "${summary[@]}"
echo "fuzz: ${#targets[@]} targets, 0 crashes, $(( $(date +%s) - start )) s"
