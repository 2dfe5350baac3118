#!/usr/bin/env bash
# Builds the guest of the microVM runtime from Debian packages installed on this machine (no
# other downloads): the kernel (linux-image-cloud-amd64, or any installed kernel), an initramfs
# (busybox-static, the virtio modules, the static guest agent, the two-phase guest init) and a
# read-only ext4 system image holding exactly the files of the packages sandboxes need (sh,
# coreutils, curl, python3, node, iproute2, … and their dependencies). Idempotent: a stamp of
# every input is kept, and nothing is rebuilt when it matches. Output (default
# /var/cache/opensandbox/guest, or $OSB_GUEST_DIR): vmlinuz, initramfs.cpio.gz, system.img,
# manifest.json. Needs root for nothing but writing the output dir; cargo builds the agent.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${OSB_GUEST_DIR:-/var/cache/opensandbox/guest}"
roots=(base-files bash coreutils dash debianutils diffutils findutils grep gzip hostname sed tar
  util-linux procps iproute2 curl python3 nodejs ca-certificates openssl libc-bin mawk)
modules=(virtio_mmio virtio_blk virtio_net virtio_console virtio_rng overlay)

die() { echo "build-guest: $*" >&2; exit 1; }
for tool in mke2fs cpio gzip modprobe dpkg-query ldconfig cargo python3 sha256sum; do
  command -v "$tool" >/dev/null || die "missing $tool (run scripts/install-deps.sh)"
done
busybox=/bin/busybox
is_static() { ! ldd "$1" 2>/dev/null | grep -q '=>'; }
[ -x "$busybox" ] && is_static "$busybox" || die "$busybox is missing or not static (install busybox-static)"

kernel="$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n1 || true)"
[ -n "$kernel" ] || kernel="$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)"
[ -n "$kernel" ] || die "no kernel in /boot (install linux-image-cloud-amd64)"
kver="${kernel#/boot/vmlinuz-}"
[ -d "/lib/modules/$kver" ] || die "no modules for $kver in /lib/modules"

echo "build-guest: building the guest agent (static)"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
  -p osb-guest-agent --target x86_64-unknown-linux-gnu
agent="$target_dir/x86_64-unknown-linux-gnu/release/osb-guest-agent"
is_static "$agent" || die "$agent is not static"

mapfile -t packages < <(python3 scripts/guest/package-closure.py "${roots[@]}")
stamp="$( {
  sha256sum "$0" scripts/guest/init scripts/guest/init2 scripts/guest/package-closure.py "$agent" "$busybox"
  stat -c '%n %s %Y' "$kernel"
  dpkg-query -W -f='${Package} ${Version}\n' "${packages[@]}"
} | sha256sum | cut -c1-16)"
if [ -f "$out/manifest.json" ] && grep -q "\"inputs\": \"$stamp\"" "$out/manifest.json"; then
  echo "build-guest: $out is up to date ($stamp)"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/osb-guest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS

echo "build-guest: initramfs for kernel $kver"
initramfs="$work/initramfs"
mkdir -p "$initramfs"/{bin,dev,proc,sys,mnt,osb,lib/modules}
cp "$busybox" "$initramfs/bin/busybox"
cp "$agent" "$initramfs/osb/agent"
install -m 0755 scripts/guest/init "$initramfs/init"
install -m 0644 scripts/guest/init2 "$initramfs/osb/init2"
for module in "${modules[@]}"; do
  modprobe -S "$kver" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r path; do
  name="$(basename "$path")"
  case "$name" in
    *.ko.xz) xz -dc "$path" > "$initramfs/lib/modules/${name%.xz}"; name="${name%.xz}" ;;
    *.ko.zst) zstd -qdc "$path" > "$initramfs/lib/modules/${name%.zst}"; name="${name%.zst}" ;;
    *) cp "$path" "$initramfs/lib/modules/$name" ;;
  esac
  echo "$name" >> "$initramfs/lib/modules/order"
done
(cd "$initramfs" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) \
  | gzip -6 > "$work/initramfs.cpio.gz"

echo "build-guest: system image from ${#packages[@]} packages"
root="$work/root"
mkdir -p "$root"
# Recreate the host's top-level /usr symlinks first so package paths land where they belong.
for link in bin sbin lib lib32 lib64 libx32; do
  [ -L "/$link" ] || continue
  ln -s "$(readlink "/$link")" "$root/$link"
  mkdir -p "$root/$(readlink -m "/$link" | sed 's|^/||')"
done
dpkg-query -L "${packages[@]}" 2>/dev/null | grep '^/' | LC_ALL=C sort -u | sed 's|^/||' > "$work/files"
tar -C / --no-recursion --ignore-failed-read -cf - -T "$work/files" 2>/dev/null \
  | tar -C "$root" --keep-directory-symlink -xpf -
# Links made by maintainer scripts (alternatives, /bin/sh): copy those whose target exists.
cp -a /etc/alternatives "$root/etc/" 2>/dev/null || true
for dir in usr/bin usr/sbin; do
  for link in /"$dir"/*; do
    [ -L "$link" ] && [ ! -e "$root$link" ] && [ ! -L "$root$link" ] || continue
    target="$(readlink "$link")"
    case "$target" in /*) resolved="$root$target" ;; *) resolved="$root/$dir/$target" ;; esac
    [ -e "$resolved" ] && ln -s "$target" "$root$link"
  done
done
[ -e "$root/usr/bin/sh" ] || ln -s dash "$root/usr/bin/sh"
mkdir -p "$root"/{proc,sys,dev,run,tmp,etc/ssl/certs,workspace,.osb}
chmod 0700 "$root/.osb"
ldconfig -r "$root"
size_mb=$(( $(du -sm "$root" | cut -f1) * 12 / 10 + 64 ))
mke2fs -q -t ext4 -O ^has_journal -L osb-system -E root_owner=0:0 -d "$root" \
  "$work/system.img" "${size_mb}M"

mkdir -p "$(dirname "$out")"
rm -rf "$out.new"
mkdir -p "$out.new"
cp "$kernel" "$out.new/vmlinuz"
mv "$work/initramfs.cpio.gz" "$work/system.img" "$out.new/"
cat > "$out.new/manifest.json" <<JSON
{
  "version": 1,
  "inputs": "$stamp",
  "kernel": "$kver",
  "agentProtocol": $(grep -o 'PROTOCOL_VERSION: u32 = [0-9]*' actors/vm/guest-agent/src/protocol.rs | grep -o '[0-9]*$'),
  "packages": ${#packages[@]},
  "systemImageMB": $size_mb
}
JSON
rm -rf "$out.old"
[ -d "$out" ] && mv "$out" "$out.old"
mv "$out.new" "$out"
rm -rf "$out.old"
echo "build-guest: built $out in $((SECONDS - started)) s (+ agent build); system image ${size_mb} MiB"
