"""runc's events: stats every interval and an "oom" event whenever the OOM killer strikes, until the
container stops."""
from __future__ import annotations

import time

from . import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

    from .state import State


def follow(st: State, interval: float) -> Iterator[dict[str, object]]:
    from .cgroups import Cgroup, is_v2_host
    from .cgroups.stats import oom_kills, stats

    cg, v2 = Cgroup.from_json(st.cgroup), is_v2_host()
    seen, due = oom_kills(cg, v2), 0.0
    while True:
        running = state.alive(st)
        if running and time.monotonic() >= due:
            yield {"type": "stats", "id": st.id, "data": stats(cg, v2)}
            due = time.monotonic() + interval
        kills = oom_kills(cg, v2)
        if kills > seen:
            yield {"type": "oom", "id": st.id}  # also when it was the init that the OOM killer took
            seen = kills
        if not running:
            return
        time.sleep(min(0.1, interval))
