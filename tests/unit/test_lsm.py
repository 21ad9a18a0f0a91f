"""AppArmor/SELinux label decisions (pure logic: which attr file gets what, and refusals when the LSM is off).
The kernel side is in tests/integration/test_escapes.py (this machine has neither LSM)."""
from __future__ import annotations

import pytest

from pyoci.errors import ConfigError
from pyoci.linux import lsm


@pytest.fixture
def lsms_on(monkeypatch):
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: True)
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: True)
    monkeypatch.setattr(lsm, "exec_attr", lambda name: f"/proc/thread-self/attr/{name}/exec")


def test_labels_are_written_for_the_next_execve(lsms_on):
    assert lsm.exec_labels("docker-default", "system_u:system_r:container_t:s0") == [
        ("process.apparmorProfile", "/proc/thread-self/attr/apparmor/exec", "exec docker-default"),
        ("process.selinuxLabel", "/proc/thread-self/attr/selinux/exec", "system_u:system_r:container_t:s0")]
    assert lsm.exec_labels("", "") == []


def test_mount_label_goes_into_the_data_of_labelled_types(lsms_on):
    label = "system_u:object_r:container_file_t:s0"
    assert lsm.mount_data("tmpfs", "mode=755", label) == f'mode=755,context="{label}"'
    assert lsm.mount_data("mqueue", None, label) == f'context="{label}"'
    assert lsm.mount_data("proc", None, label) is None
    assert lsm.mount_data("tmpfs", "mode=755", "") == "mode=755"


@pytest.mark.parametrize("profile, label, path", [("p", "", "process.apparmorProfile"),
                                                  ("", "l", "process.selinuxLabel")])
def test_refused_when_the_lsm_is_off(monkeypatch, profile, label, path):
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: False)
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: False)
    with pytest.raises(ConfigError) as info:
        lsm.exec_labels(profile, label)
    assert info.value.path == path and "is not enabled on this host" in str(info.value)
    with pytest.raises(ConfigError) as info:
        lsm.mount_data("tmpfs", None, "x")
    assert info.value.path == "linux.mountLabel"
