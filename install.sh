#!/usr/bin/env bash
# Installs pyoci on Debian 12 as root, then runs a real container from a busybox bundle built here.
# What it installs: Debian's build tools, busybox-static, runc/crun (to compare against), podman, conmon,
# containerd, umoci, the CNI plugins and iptables (for the end-to-end tests: the CRI ones give pods a bridge
# network, whose masquerading rules the bridge plugin writes with iptables), uidmap (the rootless tests'
# subordinate ranges), Debian's docker-registry with htpasswd (apache2-utils) and openssl (a real registry for
# the store's pull/push tests), QEMU with Debian's kernel and virtme-ng (the cgroup v2 guest, tests/vm); pyoci
# itself into /opt/pyoci/venv, linked as /usr/local/bin/pyoci.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-dev gcc libc6-dev musl-tools libseccomp-dev pkg-config \
    busybox-static procps runc crun podman conmon containerd umoci skopeo iproute2 strace uidmap \
    docker-registry apache2-utils openssl containernetworking-plugins iptables >/dev/null
# A venv made by another python (say a pyenv one) cannot be upgraded in place: make it anew.
/opt/pyoci/venv/bin/python3 -c 'import subprocess, sys; assert sys.base_prefix == "/usr"' 2>/dev/null ||
    rm -rf /opt/pyoci/venv
/usr/bin/python3 -m venv /opt/pyoci/venv
rm -rf build  # a stale cffi build would hide changes to csrc/
/opt/pyoci/venv/bin/pip install -q --disable-pip-version-check ".[test]"
# The pyoci command (CPython embedded, the package frozen in: csrc/launcher.c) on PATH
ln -sfn /opt/pyoci/venv/bin/pyoci /usr/local/bin/pyoci
# QEMU, virtme-ng and Debian's kernel for the cgroup v2 guest the tests boot (tests/vm)
bash tests/vm/prepare.sh /opt/pyoci/vm

demo=$(mktemp -d /tmp/pyoci-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
scripts/busybox-bundle "$demo" sh -c 'echo "hello from pyoci: $(hostname), pid $$, $(id)"'
cd "$demo"
pyoci --root "$demo/state" run "demo-$$"
