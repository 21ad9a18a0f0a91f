"""The executor's messages (csrc/shim.h's struct pyoci_msg, laid out as pyoci._protocol says): one decoded,
an ERROR made the user's error, and the reading on from READY until the execve, which is all `start` needs
of the protocol. Apart from pyoci.sync (which spawns the plan and answers the executor until READY), so that
start imports neither it nor pyoci.record nor `_socket` (a start: 14.2 → 13.0 M instructions)."""
from __future__ import annotations

import posix
import sys

from ._protocol import INT, MSG_FIELDS, MSG_HEADER, MSG_KINDS
from .errors import KernelError, PyociError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .cgroups import Cgroup
    from .log import Logger

MSG_NAME = {value: name for name, value in MSG_KINDS.items()}

# The longest detail until_exec reads whole. The executor's texts are a step's `what` and a path or two, far
# shorter; a longer one would come cut (a socket of messages keeps no rest of one to read later).
LONGEST_DETAIL = 65536


class Message:
    """One executor message: kind is PID, READY, ERROR, ... (enum pyoci_msg_type without PYOCI_MSG_), step
    the index of the plan step that sent it."""

    __slots__ = ("kind", "step", "err", "pid", "detail")

    def __init__(self, kind: str, step: int, err: int, pid: int, detail: str) -> None:
        self.kind, self.step, self.err, self.pid, self.detail = kind, step, err, pid, detail


def decode(data: bytes) -> Message:
    if len(data) < MSG_HEADER:
        raise PyociError(f"the executor sent a short message ({len(data)} bytes)")
    m = {name: int.from_bytes(data[at:at + INT], sys.byteorder, signed=True) for name, at in MSG_FIELDS.items()}
    detail = data[MSG_HEADER:MSG_HEADER + m["len"]].decode(errors="replace")
    return Message(MSG_NAME.get(m["type"], str(m["type"])), m["step"], m["err"], m["pid"], detail)


def raise_error(msg: Message | None, cgroup: Cgroup | None = None) -> None:
    """An ERROR message, or the executor's death without one (EOF: msg is None), as the user's error."""
    if msg is not None:
        raise (KernelError if msg.err else PyociError)(msg.detail, msg.err)
    if cgroup is not None:
        from .cgroups import is_v2_host
        from .cgroups.stats import oom_kills

        if oom_kills(cgroup, is_v2_host()):
            raise PyociError("the OOM killer took the container process before it was ready: "
                             "linux.resources.memory.limit is too small")
    raise PyociError("the container process exited before it was ready")


def warn(msg: Message, log: Logger) -> None:
    """A WARNING message, logged as the line an error with its text and errno prints."""
    log.warning(str(PyociError(msg.detail, msg.err)))


def until_exec(fd: int, log: Logger) -> None:
    """Reads the executor's socket fd until its execve closes it (success) or it reports an ERROR. A plain
    read takes one message; fds sent with one (none are, after READY) the kernel closes."""
    while True:
        data = posix.read(fd, MSG_HEADER + LONGEST_DETAIL)
        if not data:
            log.debug("executor: execve done (sync socket closed)")
            return
        msg = decode(data)
        if msg.kind == "ERROR":
            raise_error(msg)
        if msg.kind == "WARNING":
            warn(msg, log)
