#!/usr/bin/env bash
# Goodput under random loss on real sockets: `ndkperf write_bw` (64 KiB
# WRITEs) between two network namespaces joined by a veth pair at MTU 1500,
# with netem dropping the given percentage of frames on both ends, beside
# iperf3 (TCP, what SMB over TCP would run on) on the same path. A script,
# not a test: wall-clock figures on a shared machine vary run to run.
#   sudo bash crates/roce/examples/loss_netns.sh [loss% ...]   (default: 0 0.1 1)
# Needs root, iproute2 and a way to drop frames at random: tc's netem
# qdisc, or where the kernel has no netem (sch_netem), an nftables ingress
# rule on each veth (`numgen random mod 10000 < N drop`, the nftables
# package); iperf3 (Debian package) for the TCP figure. Says what it skips
# otherwise (and fails where NDKRS_REQUIRE_NETNS=1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
skip() {
  echo "loss_netns: skipped: $*" >&2
  [ "${NDKRS_REQUIRE_NETNS:-}" = 1 ] && exit 1
  exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and netem)"
command -v ip >/dev/null || skip "iproute2's ip is missing"
command -v tc >/dev/null || skip "iproute2's tc is missing"
have_iperf=1
command -v iperf3 >/dev/null || { have_iperf=0; echo "loss_netns: iperf3 is missing (apt-get install iperf3): no TCP figure" >&2; }
losses=("$@")
[ ${#losses[@]} -gt 0 ] || losses=(0 0.1 1)
secs=${SECS:-5}
[ -n "${NDKPERF:-}" ] || cargo build --release -q -p host --bin ndkperf
bin=${NDKPERF:-$PWD/target/release/ndkperf}
s=ndkrs-loss-s c=ndkrs-loss-c sip=10.77.18.1 cip=10.77.18.2
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del $s 2>/dev/null || true
  ip netns del $c 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add $s || skip "cannot create a network namespace"
ip netns add $c
ip link add vs netns $s type veth peer name vc netns $c
ip -n $s addr add $sip/24 dev vs
ip -n $c addr add $cip/24 dev vc
for pair in "$s vs" "$c vc"; do
  set -- $pair
  ip -n "$1" link set "$2" mtu 1500 up
  ip -n "$1" link set lo up
done
dropper=
if tc -n $s qdisc add dev vs root netem loss 0% 2>/dev/null; then
  tc -n $c qdisc add dev vc root netem loss 0%
  dropper=netem
elif command -v nft >/dev/null; then
  for pair in "$s vs" "$c vc"; do
    set -- $pair
    ip netns exec "$1" nft add table netdev loss ||
      skip "neither tc netem (kernel module sch_netem) nor nftables' netdev table works here"
    ip netns exec "$1" nft add chain netdev loss in "{ type filter hook ingress device $2 priority 0; }"
  done
  dropper=nft
else
  skip "tc netem is not available (kernel module sch_netem) and nft (nftables) is missing"
fi
set_loss() { # percent
  local per10k
  per10k=$(awk -v p="$1" 'BEGIN { printf "%d", p * 100 + 0.5 }')
  if [ $dropper = netem ]; then
    tc -n $s qdisc change dev vs root netem loss "$1%"
    tc -n $c qdisc change dev vc root netem loss "$1%"
  else
    for n in $s $c; do
      ip netns exec $n nft flush chain netdev loss in
      [ "$per10k" = 0 ] || ip netns exec $n nft add rule netdev loss in numgen random mod 10000 "<" "$per10k" drop
    done
  fi
}
echo "loss_netns: frames dropped by $dropper on both ends; ${secs}s per figure" >&2
ip netns exec $s "$bin" --server --idle-timeout $((secs * 8 + 30)) >/dev/null 2>&1 &
pids+=($!)
if [ $have_iperf = 1 ]; then
  ip netns exec $s iperf3 -s >/dev/null 2>&1 &
  pids+=($!)
fi
sleep 1
printf '%6s  %-66s %s\n' loss "ndkperf write_bw: mode size messages rate Mpps" "iperf3 TCP receiver"
for loss in "${losses[@]}"; do
  set_loss "$loss"
  out=$(ip netns exec $c "$bin" write_bw $sip -s 65536 -D "$secs" --no-baseline 2>&1 || true)
  rdma=$(grep -E '^ +write_bw +65536' <<<"$out" | head -n1 | sed 's/^ *//')
  [ -n "$rdma" ] || rdma="write_bw failed: $(tail -n1 <<<"$out")"
  tcp="-"
  if [ $have_iperf = 1 ]; then
    out=$(ip netns exec $c iperf3 -c $sip -t "$secs" -f m 2>&1 || true)
    tcp=$(grep receiver <<<"$out" | head -n1 | awk '{print $7, $8}')
    [ -n "$tcp" ] || tcp="iperf3 failed: $(tail -n1 <<<"$out")"
  fi
  printf '%5s%%  %-66s %s\n' "$loss" "$rdma" "$tcp"
done
