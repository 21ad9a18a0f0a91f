#!/usr/bin/env bash
# Runs the cgroup v2 test set on a real cgroup v2 kernel: boots Debian's stock kernel (cgroup v1 switched off)
# under QEMU software emulation through virtme-ng, with this host's root shared read-only and a scratch
# directory writable, against the pyoci installed here. Exit status: the guest's pytest's (or command's).
# Usage: run-v2.sh [PYTEST ARGS...]   (default: the v2 set in guest.sh)
#        run-v2.sh --run COMMAND [ARGS...]   (instead of pytest, with absolute paths: the guest starts in /tmp;
#        say --run python3 "$PWD/bench/compare.py" --runtimes pyoci,runc,crun)
# Env: PYOCI_VM  the directory prepare.sh filled (default /opt/pyoci/vm)
#      GUEST_TIMEOUT  seconds before the guest prints where its processes wait and fails (default 600)
#      PYTHON    a python with pyoci and pytest installed (default /opt/pyoci/venv/bin/python3)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
vm=${PYOCI_VM:-/opt/pyoci/vm}
python=${PYTHON:-/opt/pyoci/venv/bin/python3}
scratch=$(mktemp -d /tmp/pyoci-v2.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# Drivers udev would load for QEMU's default PC devices: none is needed, and loading them costs seconds.
skip=kvm,kvm_amd,kvm_intel,ahci,libahci,libata,sr_mod,cdrom,iTCO_wdt,iTCO_vendor_support,i2c_i801,lpc_ich
skip+=,pcspkr,aesni_intel,ghash_clmulni_intel,crc32_pclmul,psmouse,i6300esb,powernow_k8,button,evdev,sg
skip+=,serio_raw,joydev,drm,bochs,intel_rapl_msr,intel_rapl_common
kernel_args="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 tsc=reliable clocksource=tsc mitigations=off"
# Under QEMU's software emulation the guest's TSC ticks at the host's rate, but the guest measures that rate
# against an emulated timer at boot, which a busy host skews (766 MHz against 2596 once: a clock 3.4 times
# too fast, 60 s test timeouts firing in 18 s). With tsc=reliable nothing corrects it later, so the host
# says what the rate is.
khz=$(awk -F': ' '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
[ -z "$khz" ] || kernel_args+=" tsc_early_khz=$khz"
# The busybox root filesystem is made here: in the guest that alone takes a minute.
PATH="$(dirname "$python"):$PATH" "$repo/scripts/busybox-bundle" "$scratch/bundle" >/dev/null
guest=$(printf '%q ' env "PATH=$PATH" "PYOCI_TEST_ROOTFS=$scratch/bundle/rootfs" "GUEST_TIMEOUT=${GUEST_TIMEOUT:-600}" bash "$repo/tests/vm/guest.sh" \
    "$repo" "$python" "$@")
cd "$scratch"
# vng wants pipes, not files, for its output; --force-9p: no virtiofsd here; --verbose: the guest kernel's
# console (an oops, a BUG, an RCU stall) shows in the output, where a stalled guest says nothing else
PATH="$vm/vng/bin:$PATH" vng --run "$vm/kernel/boot/vmlinux" --verbose --force-9p --disable-kvm --cpus 2 --memory 1G \
    --qemu-opts="-cpu qemu64" \
    --rwdir="$scratch" --cwd "$scratch" --append "$kernel_args modprobe.blacklist=$skip" --exec "$guest" \
    </dev/null 2>&1 | cat
exit "${PIPESTATUS[0]}"
