"""End-to-end fixtures (see engines.py, cri.py): one private podman, one private containerd and one private
containerd serving CRI per pytest-xdist worker, session-scoped and torn down completely, pass or fail; `podman`,
`ctr` and `cri` bind them to one runtime (pyoci, or runc as the reference) for one test and remove that test's
containers afterwards."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from .cri import CNI_BIN, CNI_PLUGINS, Cri, CriHost
from .engines import HOST_PATH, RUNTIMES, Containerd, Ctr, Podman, PodmanHost, need, rmtree, sh


@pytest.fixture(params=["pyoci", "runc"])
def runtime(request) -> str:
    """The runtime a test drives its engine with: pyoci, and runc as the reference."""
    if not RUNTIMES[request.param]:
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture(scope="session")
def podman_host(tmp_path_factory, rootfs) -> PodmanHost:
    need("podman", "conmon")
    host = PodmanHost(tmp_path_factory.mktemp("podman"))
    try:
        host.write_config()
        tarball = host.tmp / "rootfs.tar"
        sh(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
        host("import", "-q", str(tarball), host.image)
        tarball.unlink()
        yield host
    finally:
        leaks = host.teardown()
        if leaks:
            warnings.warn(f"podman e2e teardown had to clean up: {leaks}")


@pytest.fixture
def podman(podman_host, runtime) -> Podman:
    p = Podman(podman_host, runtime)
    yield p
    p.cleanup()


# The pause image: PID 1 of a pod until it is killed (reaping what the pod's containers orphan, when they share
# its pid namespace); TERM and INT end it as they end Kubernetes' pause.
PAUSE = "trap 'exit 0' TERM INT; while :; do sleep 2147483647 & wait; done"


@pytest.fixture(scope="session")
def oci_archive(tmp_path_factory, rootfs) -> Path:
    """The busybox root filesystem as a one-layer OCI image archive (umoci), tagged e2e, and the same layer
    with the pause command as its entrypoint, tagged pause."""
    need("umoci")
    d = tmp_path_factory.mktemp("oci")
    layout = d / "layout"
    sh(["umoci", "init", "--layout", str(layout)])
    sh(["umoci", "new", "--image", f"{layout}:e2e"])
    sh(["umoci", "insert", "--image", f"{layout}:e2e", str(rootfs), "/"])
    sh(["umoci", "config", "--image", f"{layout}:e2e", "--config.cmd", "sh", "--config.env", f"PATH={HOST_PATH}"])
    sh(["umoci", "config", "--image", f"{layout}:e2e", "--tag", "pause", "--clear", "config.cmd",
        "--config.entrypoint", "sh", "--config.entrypoint", "-c", "--config.entrypoint", PAUSE])
    sh(["tar", "-C", str(layout), "-cf", str(d / "busybox-oci.tar"), "."])
    shutil.rmtree(layout)
    return d / "busybox-oci.tar"


def daemon_base(tmp_path_factory, name: str) -> Path:
    """A daemon's own directory; a short one under /tmp if the tmp path is too long for its sockets (a unix
    socket path must stay under 108 bytes)."""
    base = tmp_path_factory.mktemp(name)
    if len(str(base)) > 70:
        base = Path(tempfile.mkdtemp(prefix=f"pyoci-{name}-", dir="/tmp"))
    return base


@contextmanager
def serving(ctd: Containerd, archive: Path) -> Iterator[Containerd]:
    """ctd started with the archive's images; stopped and cleaned up after, pass or fail."""
    try:
        ctd.start()
        ctd.import_images(archive)
        yield ctd
    finally:
        leaks = ctd.stop()
        rmtree(ctd.base)
        if leaks:
            warnings.warn(f"{type(ctd).__name__} e2e teardown had to clean up: {leaks}")


@pytest.fixture(scope="session")
def containerd(tmp_path_factory, oci_archive) -> Containerd:
    need("containerd", "ctr", "containerd-shim-runc-v2")
    with serving(Containerd(daemon_base(tmp_path_factory, "ctd")), oci_archive) as ctd:
        yield ctd


@pytest.fixture(scope="session")
def cri_host(tmp_path_factory, oci_archive) -> CriHost:
    need("containerd", "ctr", "containerd-shim-runc-v2", "iptables", "ip")
    absent = [p for p in CNI_PLUGINS if not os.path.exists(f"{CNI_BIN}/{p}")]
    if absent:
        pytest.skip(f"CNI plugins not installed in {CNI_BIN}: {', '.join(absent)}")
    with serving(CriHost(daemon_base(tmp_path_factory, "cri")), oci_archive) as host:
        yield host


@pytest.fixture
def cri(cri_host, runtime, tmp_path) -> Cri:
    """The CRI API with RuntimeClass handler `runtime`; after the test its pods are removed, and anything of
    theirs left on the host fails it."""
    c = Cri(cri_host, runtime, tmp_path / "logs")
    try:
        yield c
    finally:
        leaks = c.cleanup()
    assert not leaks, f"left after the test: {leaks}"


@pytest.fixture
def ctr(containerd, runtime) -> Ctr:
    c = Ctr(containerd, runtime)
    yield c
    c.cleanup()
