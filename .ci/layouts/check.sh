#!/usr/bin/env bash
# Layout check against an independent source: mingw-w64's Windows headers.
#
# `cargo run -p ndis-sys --example layouts` prints every size, offset and
# value of ndis-sys and ndkpi that mingw-w64's headers also define. Each line
# becomes a C11 static assertion, compiled with x86_64-w64-mingw32-gcc for
# the Windows x64 ABI (LLP64: ULONG and enums 4 bytes, pointers 8). A number
# that differs from the header fails the compile, naming the item.
#
# What mingw lacks (NET_BUFFER_LIST, the NDIS 6 driver characteristics and
# miniport/filter structures, ndkpi.h's dispatch tables) is asserted at
# compile time in the crates, each assertion naming its PDB source.
#
# Needs: apt-get install gcc-mingw-w64-x86-64 mingw-w64-x86-64-dev
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/target/layouts"
cc=x86_64-w64-mingw32-gcc
inc=/usr/x86_64-w64-mingw32/include

say() { printf 'layouts: %s\n' "$*"; }
die() { printf 'layouts: FAIL: %s\n' "$*" >&2; exit 1; }

command -v "$cc" >/dev/null || die "$cc not found (apt-get install gcc-mingw-w64-x86-64 mingw-w64-x86-64-dev)"
[ -f "$inc/ntddndis.h" ] && [ -f "$inc/ddk/ntddk.h" ] || die "mingw-w64 headers missing under $inc"
mkdir -p "$out"

(cd "$root" && cargo run -q -p ndis-sys --example layouts) >"$out/rust.txt"
total=$(wc -l <"$out/rust.txt")
[ "$total" -gt 200 ] || die "only $total layout facts printed"

# One translation unit per header family (mingw's user-mode and kernel
# headers do not mix).
prelude_user='#define UM_NDIS630 1
#define _WIN32_WINNT 0x0602
#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>
#include <netioapi.h>
#include <ntddndis.h>
#include <ndkinfo.h>
#include <bcrypt.h>
#include <netevent.h>
#include <stddef.h>'
prelude_kernel='#include <ntddk.h>
#include <stddef.h>'
# mingw's ddk/ndis.h does not compile with its own NDIS 6 ntddndis.h, so its
# NDIS_STATUS and NDIS_INTERFACE_TYPE definitions are taken out verbatim and
# compiled on top of ntstatus.h.
{
  echo '#include <ntddk.h>'
  echo 'typedef int NDIS_STATUS;'
  grep -E '^#define NDIS_STATUS_[A-Z0-9_]+[[:space:]]+\(\(NDIS_STATUS\)' "$inc/ddk/ndis.h"
  awk '/typedef enum _NDIS_INTERFACE_TYPE/,/NDIS_INTERFACE_TYPE, \*PNDIS_INTERFACE_TYPE;/' "$inc/ddk/ndis.h"
} >"$out/status_defs.h"
grep -q 'NdisInterfaceInternal' "$out/status_defs.h" || die "NDIS_INTERFACE_TYPE not found in ddk/ndis.h"
prelude_status="#include \"$out/status_defs.h\""

for unit in user kernel status; do
  c="$out/$unit.c"
  var="prelude_$unit"
  printf '%s\n' "${!var}" >"$c"
  awk -v unit="$unit" '
    $1 != unit { next }
    $2 == "size"   { printf "_Static_assert(sizeof(%s) == %s, \"size of %s: rust %s\");\n", $3, $4, $3, $4 }
    $2 == "offset" { printf "_Static_assert(offsetof(%s, %s) == %s, \"offset of %s.%s: rust %s\");\n", $3, $4, $5, $3, $4, $5 }
    $2 == "value"  { printf "_Static_assert((long long)(%s) == %sLL, \"value of %s: rust %s\");\n", $3, $4, $3, $4 }
  ' "$out/rust.txt" >>"$c"
  n=$(grep -c '^_Static_assert' "$c" || true)
  extra=()
  [ "$unit" = user ] || extra=(-I"$inc/ddk")
  if ! "$cc" -std=c11 -fsyntax-only -Werror "${extra[@]}" "$c" 2>"$out/$unit.err"; then
    grep -E 'error' "$out/$unit.err" | head -n 40 >&2
    die "$unit: Rust layout differs from mingw-w64's headers (full log: $out/$unit.err)"
  fi
  say "$unit: $n assertions hold ($("$cc" -dumpversion), mingw-w64 headers)"
done
say "OK: $total facts of ndis-sys and ndkpi equal mingw-w64's headers"
