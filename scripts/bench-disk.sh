#!/usr/bin/env bash
# What the per-sandbox disk quota (ADR 0207) adds to a netns create and destroy, measured with
# the very commands the runtime runs, RUNS times each (default 30), p50 and p90 in ms:
#   format per sandbox   mkfs.ext4 of a fresh sparse image (the alternative not chosen)
#   template copy        cp --reflink=auto --sparse=always of the worker's template (chosen)
#   mount                mount -t ext4 -o loop,discard,nosuid,nodev,noinit_itable + mkdir upper work
#   unmount              umount + wait until the auto-clearing loop device is gone + rm image
# Root only. Usage: scripts/bench-disk.sh [DATA_DIR] [SIZE_MB...]; DATA_DIR (default /var/tmp)
# must be on the file system a worker's data dir would be on. Leaves nothing behind.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "bench-disk: run as root (loop devices, mount)" >&2; exit 1; }
base="${1:-/var/tmp}"; shift || true
sizes=("${@:-64 4096}")
runs="${RUNS:-30}"
work="$(mktemp -d "$base/osb-bench-disk.XXXXXX")"
cleanup() { umount -l "$work/m" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir "$work/m"

now() { date +%s%N; }
stats() { sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; p90=a[int(NR*0.9+0.5)]; printf "%.1f %.1f\n", p50/1e6, p90/1e6}'; }
format() { rm -f "$1"; truncate -s "${2}M" "$1"; mkfs.ext4 -q -F -m 0 -L osb-disk -E lazy_itable_init=1,lazy_journal_init=1 "$1"; }

printf '%-8s %-20s %10s %10s\n' "size" "step" "p50 ms" "p90 ms"
for size in ${sizes[*]}; do
  format "$work/template.img" "$size"
  : > "$work/mkfs"; : > "$work/copy"; : > "$work/mount"; : > "$work/umount"
  for _ in $(seq "$runs"); do
    t0=$(now); format "$work/fresh.img" "$size"; t1=$(now); echo $((t1 - t0)) >> "$work/mkfs"
    rm -f "$work/fresh.img"
    t0=$(now); cp --reflink=auto --sparse=always "$work/template.img" "$work/disk.img"; t1=$(now)
    mount -t ext4 -o loop,discard,nosuid,nodev,noinit_itable "$work/disk.img" "$work/m"
    mkdir "$work/m/upper" "$work/m/work"; t2=$(now)
    device="$(findmnt -n -o SOURCE "$work/m")"
    umount "$work/m"
    while [ -e "/sys/block/${device#/dev/}/loop/backing_file" ]; do sleep 0.001; done
    rm -f "$work/disk.img"; t3=$(now)
    echo $((t1 - t0)) >> "$work/copy"; echo $((t2 - t1)) >> "$work/mount"; echo $((t3 - t2)) >> "$work/umount"
  done
  for step in mkfs copy mount umount; do
    case $step in mkfs) label="format per sandbox";; copy) label="template copy";; mount) label="mount";; umount) label="unmount";; esac
    read -r p50 p90 < <(stats < "$work/$step")
    printf '%-8s %-20s %10s %10s\n' "${size}M" "$label" "$p50" "$p90"
  done
done
echo "runs per step: $runs; data dir file system: $(findmnt -n -o FSTYPE --target "$base")"
