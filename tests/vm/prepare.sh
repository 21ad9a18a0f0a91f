#!/usr/bin/env bash
# Prepares the cgroup v2 guest that tests/vm/run-v2.sh boots (this host is hybrid and cannot switch):
# QEMU, virtme-ng (from PyPI, in its own venv) and Debian's stock kernel, extracted — not installed — with its
# modules, plus the uncompressed vmlinux that boots faster than the vmlinuz.
# Usage: prepare.sh [DIR]   (default /opt/pyoci/vm; run as root; a second run reuses what is there)
set -euo pipefail
dir=${1:-/opt/pyoci/vm}
export DEBIAN_FRONTEND=noninteractive
# kmod and udev: virtme-ng's init loads the 9p/virtio modules and needs udev for its console ports
apt-get install -y -q --no-install-recommends qemu-system-x86 kmod udev xz-utils >/dev/null
mkdir -p "$dir"
[ -x "$dir/vng/bin/vng" ] || /usr/bin/python3 -m venv "$dir/vng"
"$dir/vng/bin/pip" install -q --disable-pip-version-check virtme-ng
# linux-image-amd64 is a metapackage: the kernel is the package it depends on
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
release=${pkg#linux-image-}
if [ ! -f "$dir/kernel/boot/vmlinux-$release" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1)
    rm -rf "$dir/kernel"
    dpkg -x "$work"/"$pkg"_*.deb "$dir/kernel"
    /usr/bin/python3 - "$dir/kernel/boot/vmlinuz-$release" "$dir/kernel/boot/vmlinux-$release" <<'PY'
"""The vmlinuz is a boot stub plus a compressed ELF kernel: find the payload and decompress it."""
import gzip, lzma, sys, zlib

data = open(sys.argv[1], "rb").read()
for magic, unpack in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
                      (b"\x1f\x8b\x08", lambda b: zlib.decompressobj(31).decompress(b))):
    at = data.find(magic)
    while at >= 0:
        try:
            elf = unpack(data[at:])
        except (lzma.LZMAError, zlib.error, EOFError):
            elf = b""
        if elf[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(elf)
            sys.exit(0)
        at = data.find(magic, at + 1)
sys.exit(f"no xz or gzip ELF payload in {sys.argv[1]}")
PY
    depmod -b "$dir/kernel" "$release"  # vng would otherwise make modules.dep on every boot
fi
ln -sfn "vmlinux-$release" "$dir/kernel/boot/vmlinux"
echo "cgroup v2 guest: $dir/kernel/boot/vmlinux-$release, $("$dir/vng/bin/vng" --version)"
