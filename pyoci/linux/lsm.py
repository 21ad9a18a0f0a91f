"""AppArmor and SELinux: the labels a config asks for, applied on the container's execve.

Where the host has the LSM, the executor writes the profile or label to /proc/thread-self/attr (the kernel
applies it at the next execve, as libapparmor's aa_change_onexec and setexeccon do). Where it has not, a
config that names one is refused, as runc does (measured with runc 1.1.5 on a host with neither: it fails
with "apparmor failed to apply profile" or "selinux label is specified in config, but selinux is disabled"),
rather than run a container without the confinement it was promised.
"""
from __future__ import annotations


from ..errors import ConfigError
from .files import read_text
from .fs import exists, isdir


def apparmor_enabled() -> bool:
    try:
        return (isdir("/sys/kernel/security/apparmor")
                and read_text("/sys/module/apparmor/parameters/enabled")[:1] == "Y")
    except OSError:
        return False


def selinux_enabled() -> bool:
    return exists("/sys/fs/selinux/enforce")


def exec_attr(lsm: str) -> str:
    """The per-LSM attr file where the kernel has one, the shared legacy one otherwise."""
    if exists(f"/proc/self/attr/{lsm}/exec"):
        return f"/proc/thread-self/attr/{lsm}/exec"
    return "/proc/thread-self/attr/exec"


def exec_labels(apparmor_profile: str, selinux_label: str) -> list[tuple[str, str, str]]:
    """(config path, attr file, value) for each label to apply on execve; an error if the LSM is off."""
    labels = []
    if apparmor_profile:
        if not apparmor_enabled():
            raise ConfigError("AppArmor is not enabled on this host", path="process.apparmorProfile")
        labels.append(("process.apparmorProfile", exec_attr("apparmor"), f"exec {apparmor_profile}"))
    if selinux_label:
        if not selinux_enabled():
            raise ConfigError("SELinux is not enabled on this host", path="process.selinuxLabel")
        labels.append(("process.selinuxLabel", exec_attr("selinux"), selinux_label))
    return labels


# The mounts that take an SELinux context= option (runc labels these; bind mounts keep their files' labels).
LABELED_TYPES = ("tmpfs", "devpts", "mqueue")


def mount_data(fstype: str, data: str | None, mount_label: str) -> str | None:
    """A mount's data with linux.mountLabel as its SELinux context, where the type takes one."""
    if not mount_label or fstype not in LABELED_TYPES:
        return data
    if not selinux_enabled():
        raise ConfigError("SELinux is not enabled on this host", path="linux.mountLabel")
    context = f'context="{mount_label}"'
    return f"{data},{context}" if data else context
