#!/usr/bin/env bash
# The interop step: ndkrs against Linux rdma_rxe in a qemu VM (crates/interop).
#   tests/interop/run.sh      set up (idempotent), then run every scenario
# Skips (exit 0, with the reason) where it cannot run: not root, no qemu or network
# namespaces, no packages. NDKRS_INTEROP_ONLY=name,name runs only those scenarios.
#   tests/interop/run.sh --require   CI: a failed setup is a failure, not a skip
# (CI provides root and the packages, so a setup failure there is a broken harness).
#   tests/interop/run.sh --ksmbd     also the SMB Direct scenario against Linux ksmbd
#                                    (setup-ksmbd.sh, then tests/ksmbd.rs); CI passes it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
require=0
ksmbd=0
for a in "$@"; do
  case "$a" in
    --require) require=1 ;;
    --ksmbd) ksmbd=1 ;;
    *) echo "usage: $0 [--require] [--ksmbd]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "interop: SKIP: not root (namespaces, taps and raw sockets need it)"
  exit 0
fi
if ! bash tests/interop/setup.sh; then
  if [ "$require" = 1 ]; then
    echo "interop: FAIL: tests/interop/setup.sh failed" >&2
    exit 1
  fi
  echo "interop: SKIP: tests/interop/setup.sh failed (packages or kernel unavailable)"
  exit 0
fi
# The test itself skips with a message if qemu, namespaces or the image are missing.
NDKRS_INTEROP=1 timeout 720 cargo test --locked -p interop --test rxe -- --nocapture
if [ "$ksmbd" = 1 ]; then
  bash tests/interop/setup-ksmbd.sh
  NDKRS_INTEROP=1 NDKRS_INTEROP_KSMBD=1 timeout 900 cargo test --locked -p interop --test ksmbd -- --nocapture
fi
