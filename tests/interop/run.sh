#!/usr/bin/env bash
# The interop step: ndkrs against Linux rdma_rxe in a qemu VM (crates/interop).
#   tests/interop/run.sh      set up (idempotent), then run every scenario
# Skips (exit 0, with the reason) where it cannot run: not root, no qemu or network
# namespaces, no packages. NDKRS_INTEROP_ONLY=name,name runs only those scenarios.
#   tests/interop/run.sh --require   CI: a failed setup or a skipped test is a failure
#                                    (CI provides root and the packages, so either means
#                                    a broken harness)
#   tests/interop/run.sh --ksmbd     also the SMB Direct scenario against Linux ksmbd
#                                    (setup-ksmbd.sh, then tests/ksmbd.rs); CI passes it
# Last, the emulated Windows host (crates/ndis-host: the real shell under the NDIS host,
# its NIC's wire a TAP device) against the same VM: rping both ways, and with --ksmbd the
# SMB Direct client against ksmbd (crates/ndis-host/tests/tap_interop.rs).
#   tests/interop/run.sh --fresh     build the VM images in a new empty directory (removed
#                                    afterwards) instead of reusing $NDKRS_INTEROP_DIR, so a
#                                    package missing from setup.sh cannot hide behind an
#                                    image built where it happened to be installed; CI passes it
# Every requested step runs and reports PASS or FAIL, whatever an earlier one did; the
# script exits non-zero at the end if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
require=0
ksmbd=0
fresh=0
for a in "$@"; do
  case "$a" in
    --require) require=1 ;;
    --ksmbd) ksmbd=1 ;;
    --fresh) fresh=1 ;;
    *) echo "usage: $0 [--require] [--ksmbd] [--fresh]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  if [ "$require" = 1 ]; then
    echo "interop: FAIL: not root (namespaces, taps and raw sockets need it)" >&2
    exit 1
  fi
  echo "interop: SKIP: not root (namespaces, taps and raw sockets need it)"
  exit 0
fi
if [ "$fresh" = 1 ]; then
  NDKRS_INTEROP_DIR=$(mktemp -d /var/tmp/ndkrs-interop-fresh.XXXXXX)
  export NDKRS_INTEROP_DIR
  trap 'rm -rf "$NDKRS_INTEROP_DIR"' EXIT
  echo "interop: building the images from nothing in $NDKRS_INTEROP_DIR"
fi
if [ "$require" = 1 ]; then export NDKRS_INTEROP_REQUIRE=1; fi

results=()
failed=0
# step NAME COMMAND...: runs one step, records PASS/FAIL with its time.
step() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  echo "interop: step $name: $*"
  "$@"
  rc=$?
  if [ "$rc" = 0 ]; then
    results+=("PASS $name ($(( $(date +%s) - t0 )) s)")
  else
    results+=("FAIL $name (exit $rc after $(( $(date +%s) - t0 )) s)")
    failed=1
  fi
  return "$rc"
}

if ! step setup bash tests/interop/setup.sh; then
  if [ "$require" = 0 ]; then
    echo "interop: SKIP: tests/interop/setup.sh failed (packages or kernel unavailable)"
    exit 0
  fi
else
  # The test itself skips with a message if qemu, namespaces or the image are missing
  # (and fails instead under --require).
  NDKRS_INTEROP=1 step rxe timeout 720 cargo test --locked -p interop --test rxe -- --nocapture
  if [ "$ksmbd" = 1 ]; then
    if step ksmbd-setup bash tests/interop/setup-ksmbd.sh; then
      NDKRS_INTEROP=1 NDKRS_INTEROP_KSMBD=1 step ksmbd \
        timeout 900 cargo test --locked -p interop --test ksmbd -- --nocapture
    fi
  fi
  # The emulated Windows host: its binary and test built first (outside the
  # scenario's time bound), then run; with --ksmbd on the ksmbd image.
  if step tap-build cargo test --locked --no-run -p ndis-host --test tap_interop; then
    tap_ksmbd=0
    if [ "$ksmbd" = 1 ] && [ -f "${NDKRS_INTEROP_DIR:-/var/tmp/ndkrs-interop}/ksmbd.env" ]; then
      tap_ksmbd=1
    elif [ "$ksmbd" = 1 ]; then
      echo "interop: the ksmbd image is missing (ksmbd-setup failed above): tap runs rping only"
    fi
    NDKRS_INTEROP=1 NDKRS_INTEROP_KSMBD=$tap_ksmbd step tap \
      timeout 600 cargo test --locked -p ndis-host --test tap_interop -- --nocapture
    # Nothing may outlive the step: its namespace (with the taps), the VM and
    # the emulated hosts in it (each host also dies with its test,
    # PR_SET_PDEATHSIG). A step killed by its timeout leaves them: they are
    # ended here by their process ids in that namespace, and the step fails.
    if ip netns list 2>/dev/null | grep -qw ndkrs-tap; then
      left=$(ip netns pids ndkrs-tap 2>/dev/null | tr '\n' ' ')
      if [ -n "$left" ]; then
        # shellcheck disable=SC2086
        kill -9 $left 2>/dev/null
      fi
      ip netns del ndkrs-tap
      results+=("FAIL tap-teardown (namespace ndkrs-tap left behind, processes ${left:-none}; ended and removed)")
      failed=1
    fi
    stray=$(grep -lx ndis-host-tap /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3 | tr '\n' ' ')
    if [ -n "$stray" ]; then
      results+=("FAIL tap-teardown (ndis-host-tap process(es) outlived their test: $stray)")
      failed=1
    fi
  fi
fi

echo "interop: summary"
for r in "${results[@]}"; do echo "  $r"; done
if [ "$failed" = 1 ]; then
  echo "interop: FAIL: a step failed (above)" >&2
  exit 1
fi
echo "interop: all requested steps passed"
