"""End-to-end fixtures (see engines.py, cri.py): one private podman, one private containerd and one private
containerd serving CRI per pytest-xdist worker, session-scoped and torn down completely, pass or fail; `podman`,
`ctr` and `cri` bind them to one runtime (pyoci, or runc as the reference) for one test and remove that test's
containers afterwards."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from .cri import Cri, CriHost, cri_missing
from .engines import (RUNTIMES, Containerd, Ctr, Podman, PodmanHost, build_oci_archive, need, podman_serving,
                      serving)


@pytest.fixture(params=["pyoci", "runc"])
def runtime(request) -> str:
    """The runtime a test drives its engine with: pyoci, and runc as the reference."""
    if not RUNTIMES[request.param]:
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture(scope="session")
def podman_host(tmp_path_factory, rootfs) -> PodmanHost:
    need("podman", "conmon")
    with podman_serving(tmp_path_factory.mktemp("podman"), rootfs) as host:
        yield host


@pytest.fixture
def podman(podman_host, runtime) -> Podman:
    p = Podman(podman_host, runtime)
    yield p
    p.cleanup()


@pytest.fixture(scope="session")
def oci_archive(tmp_path_factory, rootfs) -> Path:
    need("umoci")
    return build_oci_archive(tmp_path_factory.mktemp("oci"), rootfs)


def daemon_base(tmp_path_factory, name: str) -> Path:
    """A daemon's own directory; a short one under /tmp if the tmp path is too long for its sockets (a unix
    socket path must stay under 108 bytes)."""
    base = tmp_path_factory.mktemp(name)
    if len(str(base)) > 70:
        base = Path(tempfile.mkdtemp(prefix=f"pyoci-{name}-", dir="/tmp"))
    return base


@pytest.fixture(scope="session")
def containerd(tmp_path_factory, oci_archive) -> Containerd:
    need("containerd", "ctr", "containerd-shim-runc-v2")
    with serving(Containerd(daemon_base(tmp_path_factory, "ctd")), oci_archive) as ctd:
        yield ctd


@pytest.fixture(scope="session")
def cri_host(tmp_path_factory, oci_archive) -> CriHost:
    reason = cri_missing()
    if reason:
        pytest.skip(reason)
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
