"""End-to-end fixtures (see engines.py): one private podman and one private containerd per pytest-xdist
worker, session-scoped and torn down completely, pass or fail; `podman` and `ctr` bind them to one runtime
(pyoci, or runc as the reference) for one test and remove that test's containers afterwards."""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

from .engines import RUNTIMES, Containerd, Ctr, Podman, PodmanHost, need, rmtree, sh


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


@pytest.fixture(scope="session")
def oci_archive(tmp_path_factory, rootfs) -> Path:
    """The busybox root filesystem as a one-layer OCI image archive (umoci), tagged e2e."""
    need("umoci")
    d = tmp_path_factory.mktemp("oci")
    layout = d / "layout"
    sh(["umoci", "init", "--layout", str(layout)])
    sh(["umoci", "new", "--image", f"{layout}:e2e"])
    sh(["umoci", "insert", "--image", f"{layout}:e2e", str(rootfs), "/"])
    sh(["umoci", "config", "--image", f"{layout}:e2e", "--config.cmd", "sh"])
    sh(["tar", "-C", str(layout), "-cf", str(d / "busybox-oci.tar"), "."])
    shutil.rmtree(layout)
    return d / "busybox-oci.tar"


@pytest.fixture(scope="session")
def containerd(tmp_path_factory, oci_archive) -> Containerd:
    need("containerd", "ctr", "containerd-shim-runc-v2")
    base = tmp_path_factory.mktemp("ctd")
    own_base = len(str(base)) > 70  # a unix socket path must stay under 108 bytes
    if own_base:
        base = Path(tempfile.mkdtemp(prefix="pyoci-ctd-", dir="/tmp"))
    ctd = Containerd(base)
    try:
        ctd.start()
        ctd("images", "import", "--base-name", ctd.image.rsplit(":", 1)[0], str(oci_archive))
        yield ctd
    finally:
        leaks = ctd.stop()
        rmtree(base)
        if leaks:
            warnings.warn(f"containerd e2e teardown had to clean up: {leaks}")


@pytest.fixture
def ctr(containerd, runtime) -> Ctr:
    c = Ctr(containerd, runtime)
    yield c
    c.cleanup()
