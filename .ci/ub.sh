#!/usr/bin/env bash
# Undefined-behaviour checks of the unsafe layers (ndk::abi's dispatch
# thunks and the consumer harness): the dispatch-table, conversation and
# close-ordering tests (tests/ndk_*.rs) run
#   1. under Miri (rustup's nightly toolchain with its miri and rust-src
#      components; skipped with the reason when they cannot be installed),
#   2. under valgrind memcheck (Debian's package), --error-exitcode=1, no
#      suppressions,
#   3. built with AddressSanitizer (the runtime ships with rustc; nightly
#      flags unlocked with RUSTC_BOOTSTRAP=1, as the fuzz build does).
# Any error fails the script. Prints each step's time.
#   bash .ci/ub.sh [miri|valgrind|asan ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(miri valgrind asan)
tests=(ndk_errors ndk_conversation ndk_close_and_notify)
test_args=()
for t in "${tests[@]}"; do test_args+=(--test "$t"); done
host=x86_64-unknown-linux-gnu

timed() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  "$@"
  echo "ub: $name clean in $(( $(date +%s) - t0 )) s"
}

miri() {
  if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null 2>&1 || {
      echo "ub: Miri SKIPPED: rustup could not install nightly with miri and rust-src" >&2
      return 0
    }
  fi
  cargo +nightly miri setup >/dev/null 2>&1
  # Callbacks' context pointers make integer round trips by design
  # (NDKPI's PVOID contexts); Miri follows them with exposed provenance.
  # ndk_errors whole takes over 15 min under Miri on 2 cores: its
  # creation and address-length tests run here, all of it under valgrind
  # and ASan.
  export MIRIFLAGS="-Zmiri-permissive-provenance"
  cargo +nightly miri test --locked --test ndk_conversation --test ndk_close_and_notify
  cargo +nightly miri test --locked --test ndk_errors -- creation_errors a_one_byte_address
}

valgrind_run() {
  command -v valgrind >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
  }
  local bins
  bins=$(cargo test --locked --no-run --message-format=json "${test_args[@]}" 2>/dev/null |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
  for b in $bins; do
    echo "valgrind $(basename "$b")"
    valgrind --quiet --error-exitcode=1 --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite \
      "$b" --test-threads=1 -q
  done
}

asan() {
  # The tests' own target dir, so the normal build is not invalidated.
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
    ASAN_OPTIONS="detect_leaks=1" \
    cargo test --locked --target "$host" --target-dir target/asan "${test_args[@]}"
}

for s in "${steps[@]}"; do
  case $s in
    miri) timed miri miri ;;
    valgrind) timed valgrind valgrind_run ;;
    asan) timed asan asan ;;
    *) echo "unknown step $s" >&2; exit 2 ;;
  esac
done
