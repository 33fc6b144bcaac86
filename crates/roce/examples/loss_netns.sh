#!/usr/bin/env bash
# Goodput under random loss on real sockets: `ndkperf write_bw` (64 KiB
# WRITEs) between two network namespaces joined by a veth pair at MTU 1500,
# with netem dropping the given percentage of frames on both ends, beside
# TCP (what SMB over TCP would run on) on the same path: ndkperf's own TCP
# baseline (one stream to the server's sink, measured in the same run) and
# iperf3. Each row gives goodput and CPU seconds per GB moved: ndkperf's
# are the client process's getrusage (user + sys), iperf3's its sender's
# CPU utilisation times the seconds, per GB received. A script, not a
# test: wall-clock figures on a shared machine vary run to run.
#   sudo bash crates/roce/examples/loss_netns.sh [loss% ...]   (default: 0 0.1 1)
# Needs root, iproute2 and a way to drop frames at random: tc's netem
# qdisc, or where the kernel has no netem (sch_netem), an nftables ingress
# rule on each veth (`numgen random mod 10000 < N drop`, the nftables
# package); iperf3 (Debian package) for the TCP figure. Says what it skips
# otherwise (and fails where NDKRS_REQUIRE_NETNS=1). jq reads the JSON.
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
command -v jq >/dev/null || skip "jq is missing (apt-get install jq)"
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
ip netns exec $s "$bin" --server --idle-timeout $((secs * 12 + 30)) >/dev/null 2>&1 &
pids+=($!)
if [ $have_iperf = 1 ]; then
  ip netns exec $s iperf3 -s >/dev/null 2>&1 &
  pids+=($!)
fi
sleep 1
printf '%6s  %-32s  %-32s  %s\n' loss "ndkperf write_bw: rate, CPU/GB" "ndkperf TCP baseline: rate, CPU/GB" "iperf3 TCP: rate, sender CPU/GB"
for loss in "${losses[@]}"; do
  set_loss "$loss"
  # The UDP baselines run too (the TCP one comes after them); -D applies
  # to each figure.
  json=$(ip netns exec $c "$bin" write_bw $sip -s 65536 -D "$secs" --json --quiet 2>/dev/null || true)
  if jq -e '.modes[0]' >/dev/null 2>&1 <<<"$json"; then
    rdma=$(jq -r '.modes[0] | "\(.bytes_per_sec / 1e9 * 1000 | floor / 1000) GB/s, \(.cpu.cpu_s_per_gb // "-" | tostring | .[0:5]) s/GB"' <<<"$json")
    tcpb=$(jq -r '.baselines.tcp_goodput | if . == null then "-" elif .error then "failed" else "\(.bytes_per_sec / 1e9 * 1000 | floor / 1000) GB/s, \(.cpu_s_per_gb | tostring | .[0:5]) s/GB" end' <<<"$json")
  else
    rdma="write_bw failed: $(jq -r '.error.message // .modes[0].error.message // "no JSON"' <<<"$json" 2>/dev/null | head -c 60)"
    tcpb="-"
  fi
  tcp="-"
  if [ $have_iperf = 1 ]; then
    out=$(ip netns exec $c iperf3 -c $sip -t "$secs" -J 2>/dev/null || true)
    tcp=$(jq -r '.end | "\(.sum_received.bits_per_second / 8e9 * 1000 | floor / 1000) GB/s, \(.cpu_utilization_percent.host_total / 100 * .sum_received.seconds / (.sum_received.bytes / 1e9) * 1000 | floor / 1000) s/GB"' <<<"$out" 2>/dev/null || echo "iperf3 failed")
  fi
  printf '%5s%%  %-32s  %-32s  %s\n' "$loss" "$rdma" "$tcpb" "$tcp"
done
