#!/usr/bin/env bash
# ndkrs interop harness: install what the Linux rdma_rxe peer VM needs and build its
# initramfs. Idempotent: a second run with nothing changed takes well under a second.
#
#   tests/interop/setup.sh            install missing Debian packages, build $NDKRS_INTEROP_DIR
#   NDKRS_INTEROP_DIR=/path ...       where the kernel/initramfs description goes
#                                     (default /var/tmp/ndkrs-interop)
#
# Result: $NDKRS_INTEROP_DIR/vm.env with KERNEL=... and INITRD=..., read by
# crates/interop (tests/rxe.rs). The VM is one generic image: its address, MTU and the
# host's MAC come from the kernel command line (see vm-init), and it serves commands on
# TCP port 7000 (see vm-ctl), so one boot runs every scenario.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${NDKRS_INTEROP_DIR:-/var/tmp/ndkrs-interop}

# Every package exists in Debian 12 (bookworm). socat is only for poking a VM's qemu
# monitor by hand; the harness talks to the monitor itself.
# ibverbs-utils: ibv_devinfo and ibv_devices (the pmtu scenarios read the port's active MTU).
PKGS="qemu-system-x86 linux-image-amd64 rdma-core ibverbs-providers ibverbs-utils rdmacm-utils
      perftest busybox-static cpio tshark tcpdump iproute2 kmod librdmacm-dev libibverbs-dev gcc
      libc6-dev socat"

if [ "$(id -u)" != 0 ]; then
  echo "interop setup: not root; skipping (the interop test needs root and will skip too)"
  exit 0
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null; then
    echo "interop setup: missing packages:$missing and no apt-get; the interop test will skip"
    exit 0
  fi
  echo "interop setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

KV=$(ls /lib/modules | grep -- '-amd64$' | sort -V | tail -n1)
KERNEL=/boot/vmlinuz-$KV
[ -r "$KERNEL" ] || { echo "interop setup: no kernel image $KERNEL" >&2; exit 1; }

# Rebuild only when an input changed: this script, the VM's init and control scripts,
# the peer program, the kernel, the rdma-core tools.
stamp=$( { cat "$HERE/setup.sh" "$HERE/vm-init" "$HERE/vm-ctl" "$HERE/rxepeer.c"; echo "$KV";
          dpkg-query -W -f='${Package} ${Version}\n' rdma-core rdmacm-utils perftest ibverbs-providers ibverbs-utils busybox-static; } \
        | sha256sum | cut -c1-16)
if [ -r "$OUT/vm.env" ] && [ -r "$OUT/initrd.gz" ] && grep -q "^STAMP=$stamp$" "$OUT/vm.env"; then
  echo "interop setup: up to date ($OUT, kernel $KV)"
  exit 0
fi

echo "interop setup: building the VM image in $OUT (kernel $KV)"
mkdir -p "$OUT"
R=$OUT/root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules,etc/libibverbs.d,usr/lib/x86_64-linux-gnu/libibverbs}

# busybox and the applets the init and control scripts use
cp /bin/busybox "$R/bin/"
for a in sh ash ip insmod cat echo sleep mount ls ps kill seq poweroff timeout grep ping dmesg \
         date pidof usleep nc arp sed tr cut head tail wc true false test env uname sync; do
  ln -sf busybox "$R/bin/$a"
done

# Kernel modules in dependency order. crc32_generic: rxe computes its ICRC with the
# kernel's crc32 and fails to create a device without it.
deps() {
  local f d
  f=$(modinfo -k "$KV" -n "$1" 2>/dev/null) || return 0
  case "$f" in /*) ;; *) return 0 ;; esac   # built in
  for d in $(modinfo -k "$KV" -F depends "$1" | tr ',' ' '); do deps "$d"; done
  echo "$f"
}
for m in crc32_generic virtio_pci virtio_net rdma_rxe ib_uverbs rdma_ucm rdma_cm; do deps "$m"; done \
  | awk '!seen[$0]++' > "$OUT/modules.txt"
: > "$R/modlist"
while read -r f; do
  b=$(basename "$f")
  case "$f" in
    *.ko.xz) xz -dc "$f" > "$R/lib/modules/${b%.xz}"; b=${b%.xz} ;;
    *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/${b%.zst}"; b=${b%.zst} ;;
    *) cp "$f" "$R/lib/modules/" ;;
  esac
  echo "$b" >> "$R/modlist"
done < "$OUT/modules.txt"

# rdma-core: the tools, the rxe verbs provider, and their libraries
TOOLS="rping ucmatose udaddy rdma_server rdma_client ib_send_bw ib_write_bw ib_read_bw ib_send_lat
       ib_write_lat ib_read_lat rdma ibv_devices ibv_devinfo"
# Every tool must be there: a scenario that finds its tool missing in the VM fails
# there, far from the package that was not installed here.
bins=""
for t in $TOOLS; do
  p=$(command -v "$t") || { echo "interop setup: $t not found on the host (a package is missing from PKGS)" >&2; exit 1; }
  bins="$bins $p"
done
cp $bins "$R/bin/"
provs=$(ls /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so)
cp $provs "$R/usr/lib/x86_64-linux-gnu/libibverbs/"
cp /etc/libibverbs.d/rxe.driver "$R/etc/libibverbs.d/"

# The project's own librdmacm peer (rxepeer.c beside this script)
gcc -O2 -Wall -o "$R/bin/rxepeer" "$HERE/rxepeer.c" -lrdmacm -libverbs

for f in $bins $provs "$R/bin/rxepeer" /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do
  echo "$f"; ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true
done | sort -u | while read -r l; do
  case "$l" in "$R"/*) continue ;; esac
  [ -e "$l" ] || continue
  mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"
done

install -m 0755 "$HERE/vm-init" "$R/init"
install -m 0755 "$HERE/vm-ctl" "$R/bin/vm-ctl"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 > "$OUT/initrd.gz.new")
mv "$OUT/initrd.gz.new" "$OUT/initrd.gz"
cat > "$OUT/vm.env" <<EOV
KERNEL=$KERNEL
INITRD=$OUT/initrd.gz
KV=$KV
STAMP=$stamp
EOV
echo "interop setup: done: $(du -h "$OUT/initrd.gz" | cut -f1) initramfs, kernel $KERNEL"
