#!/usr/bin/env bash
# Windows kernel-image check (recipe: .ci/kernel-image/check.sh).
#
# 1. Builds every portable kernel-bound crate for x86_64-pc-windows-msvc with
#    Debian's rustc-web/cargo-web/rust-web-src and -Zbuild-std=core,alloc:
#    they must be no_std, and their compile-time ABI layout assertions are
#    evaluated for the Windows target.
# 2. Links them, through the CI-only entry point in src/lib.rs, into a
#    native-subsystem kernel driver image with lld-link-19 against import
#    libraries made from def/*.def (no CRT, no default libraries).
# 3. Inspects the image with llvm-readobj-19 and fails unless it is an AMD64
#    NATIVE-subsystem image whose entry point is DriverEntry, with a checksum,
#    FORCE_INTEGRITY/NX_COMPAT/DYNAMIC_BASE, no writable+executable section,
#    and imports only from kernel modules.
#
# Needs: apt-get install rustc-web cargo-web rust-web-src lld-19 llvm-19
# (.ci/run installs them). Exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
target=x86_64-pc-windows-msvc
out="$root/target/kernel-image"
# The crates linked into the kernel driver.
crates=(ndkpi roce ndk ndis-sys miniport)
allowed_modules="ntoskrnl.exe ndis.sys netio.sys hal.dll cng.sys"

say() { printf 'kernel-image: %s\n' "$*"; }
die() { printf 'kernel-image: FAIL: %s\n' "$*" >&2; exit 1; }

for tool in /usr/bin/cargo /usr/bin/rustc lld-link-19 llvm-dlltool-19 llvm-readobj-19; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool not found (apt-get install rustc-web cargo-web rust-web-src lld-19 llvm-19)"
done
[ -d /usr/lib/rustlib/src/rust/library ] || die "rust-web-src missing: -Zbuild-std needs the library sources"

# Debian's toolchain, never the rustup one first in PATH; RUSTFLAGS would
# replace the per-target flags, so it is unset.
dcargo() {
  env -u RUSTFLAGS RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@" \
    --release --target "$target" \
    -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem
}

say "toolchain: $(/usr/bin/rustc --version), $(lld-link-19 --version | head -n1)"

# 1. Each portable crate on its own for the Windows target.
pkg_args=()
for c in "${crates[@]}"; do pkg_args+=(-p "$c"); done
(cd "$root" && dcargo build "${pkg_args[@]}" --target-dir "$out/crates")
say "built for $target (no_std, build-std core+alloc): ${crates[*]}"

# 2. The CI entry point, as a static library, then the link. The import
# libraries are the ones rustc says the crates link against (ndis-sys's
# #[link] attributes, the same the WDK build links: ndis.lib, netio.lib,
# ntoskrnl.lib), each made from def/<name>.def; nothing else is passed.
# rustc prints the list only when it links the crate: force that one step.
touch "$here/src/lib.rs"
(cd "$here" && env -u RUSTFLAGS RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo rustc \
  --release --target "$target" -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
  --target-dir "$out/image" -- --print native-static-libs) \
  2>"$out/image.log" || { cat "$out/image.log" >&2; die "image crate build failed"; }
lib="$out/image/$target/release/ndkrs_kernel_image.lib"
[ -f "$lib" ] || die "static library $lib not produced"
native=$(sed -n 's/.*native-static-libs: //p' "$out/image.log" | tail -n1)
[ -n "$native" ] || die "rustc printed no native-static-libs"
printf '%s\n' "$native" >"$out/native-static-libs.txt"

implibs=()
for name in $native; do
  # /defaultlib:libcmt is the msvc target's CRT default; the kernel image
  # links no CRT (/NODEFAULTLIB below).
  case "$name" in /defaultlib:*) continue ;; esac
  name=${name%.lib}
  def="$here/def/$name.def"
  [ -f "$def" ] || die "the crates link $name.lib but def/$name.def does not exist"
  llvm-dlltool-19 -m i386:x86-64 -d "$def" -l "$out/$name.lib"
  implibs+=("$out/$name.lib")
done
say "import libraries from rustc's native-static-libs: $native"

sys="$out/ndkrs-ci.sys"
lld-link-19 /nologo /DRIVER /SUBSYSTEM:NATIVE /KERNEL /ENTRY:DriverEntry \
  /NODEFAULTLIB /MACHINE:X64 /NXCOMPAT /DYNAMICBASE /INTEGRITYCHECK /RELEASE \
  /OPT:REF,ICF /MANIFEST:NO /TSAWARE:NO /MAP:"$out/ndkrs-ci.map" \
  /OUT:"$sys" "$lib" "${implibs[@]}"
say "linked $(basename "$sys") ($(stat -c %s "$sys") bytes) with lld-link-19, no CRT, no default libraries"

# 3. Inspect.
headers=$(llvm-readobj-19 --file-headers --sections "$sys")
imports=$(llvm-readobj-19 --coff-imports "$sys")

grep -q 'Machine: IMAGE_FILE_MACHINE_AMD64' <<<"$headers" || die "machine is not AMD64"
grep -q 'Subsystem: IMAGE_SUBSYSTEM_NATIVE ' <<<"$headers" || die "subsystem is not NATIVE"
for flag in IMAGE_DLL_CHARACTERISTICS_FORCE_INTEGRITY IMAGE_DLL_CHARACTERISTICS_NX_COMPAT \
            IMAGE_DLL_CHARACTERISTICS_DYNAMIC_BASE; do
  grep -q "$flag" <<<"$headers" || die "missing $flag"
done
checksum=$(awk '/CheckSum:/ {print $2; exit}' <<<"$headers")
[ -n "$checksum" ] && [ "$checksum" != "0x0" ] || die "PE checksum is zero (drivers need one)"
entry=$(awk '/AddressOfEntryPoint:/ {print $2; exit}' <<<"$headers")
base=$(awk '/ImageBase:/ {print $2; exit}' <<<"$headers")
# The map lists each symbol's absolute address (Rva+Base column).
driver_entry=$(awk '$2 == "DriverEntry" {print $3; exit}' "$out/ndkrs-ci.map")
[ -n "$driver_entry" ] || die "DriverEntry not in the link map"
[ $((16#$driver_entry)) -eq $((base + entry)) ] ||
  die "entry point $entry is not DriverEntry (0x$driver_entry - $base)"
say "PE: AMD64, subsystem NATIVE, entry DriverEntry ($entry), checksum $checksum, FORCE_INTEGRITY NX_COMPAT DYNAMIC_BASE"

# No section may be both writable and executable (HVCI).
wx=$(awk '
  /Name:/ {name=$2}
  /IMAGE_SCN_MEM_EXECUTE/ {x[name]=1}
  /IMAGE_SCN_MEM_WRITE/ {w[name]=1}
  END {for (n in x) if (w[n]) print n}' <<<"$headers")
[ -z "$wx" ] || die "writable and executable section(s): $wx"
sections=$(awk '/Name:/ {printf "%s ", $2}' <<<"$headers")
say "sections: $sections(none both writable and executable)"

modules=$(awk '/Name:/ && /\.(exe|sys|dll)/ {print $2}' <<<"$imports" | sort -u)
[ -n "$modules" ] || die "no import table found"
for m in $modules; do
  case " $allowed_modules " in
    *" $m "*) ;;
    *) die "import from non-kernel module $m" ;;
  esac
done
count=$(grep -c 'Symbol:' <<<"$imports" || true)
say "imports: $count functions, all from kernel modules: $(echo $modules)"
awk '/Name:/ && /\.(exe|sys|dll)/ {m=$2} /Symbol:/ {printf "kernel-image:   %s!%s\n", m, $2}' <<<"$imports"
say "OK"
