#!/usr/bin/env python3
"""What engines feel: `podman run --rm IMG true`, `ctr run --rm IMG ID true` and a Kubernetes pod from start to
removal through containerd's CRI plugin, each on pyoci and on runc in alternating pairs.

Run as root with the python the tests use (it has pytest, grpc and the CRI API):
    sudo /opt/pyoci/venv/bin/python3 bench/engines.py [--pairs 15] [--engines podman,ctr,cri] [--json FILE]

The engines are the e2e tests' own (tests/e2e/engines.py, cri.py): the same private daemons, configs and busybox
images, under one temp dir, each engine torn down after its rows with the tests' leftover checks; whatever they
had to clean up is listed and makes the exit status 1. The runtimes are the ones the tests drive: the `pyoci`
on PATH and runc. Times are wall clock around the engine's client (the CLI, or the CRI calls), as a user or
kubelet waits for them; a pair runs pyoci and runc back to back, the order swapping every pair, after one
untimed pair (first use of the image, the first shim). The table gives median (min) and pyoci/runc of the
medians and of the means.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import busybox_rootfs  # noqa: E402
from e2e.cri import Cri, CriHost, cri_missing  # noqa: E402
from e2e.engines import (RUNTIMES, Containerd, Ctr, Podman, build_oci_archive, missing, podman_serving,  # noqa: E402
                         rmtree, serving)

RUNTIME_ORDER = ("pyoci", "runc")
POD_STEPS = ("RunPodSandbox", "CreateContainer", "StartContainer", "wait for exit", "StopPodSandbox",
             "RemovePodSandbox")
POD = "CRI pod start to removal"


@dataclass
class Rows:
    """Samples in seconds, row -> runtime -> one per pair (the k-th of pyoci and of runc are one pair), and
    the 1-minute load average at every pair."""
    pairs: int
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)

    def alternate(self, once: Callable[[str], dict[str, float]]) -> None:
        """once(runtime) -> {row: seconds}, run in pairs; pair 0 is the untimed warm-up."""
        for i in range(self.pairs + 1):
            for runtime in RUNTIME_ORDER if i % 2 else RUNTIME_ORDER[::-1]:
                times = once(runtime)
                if i:
                    for row, seconds in times.items():
                        self.samples.setdefault(row, {}).setdefault(runtime, []).append(seconds)
            self.load.append(os.getloadavg()[0])


def timed(call: Callable[..., object], *args: object) -> float:
    t0 = time.perf_counter()
    call(*args)
    return time.perf_counter() - t0


def bench_podman(rows: Rows, base: Path, rootfs: Path) -> None:
    base.mkdir()
    with podman_serving(base, rootfs) as host:
        podmans = {rt: Podman(host, rt) for rt in RUNTIME_ORDER}
        try:
            rows.alternate(lambda rt: {"podman run --rm IMG true": timed(podmans[rt].run, host.image, "true")})
        finally:
            for p in podmans.values():
                p.cleanup()


def bench_ctr(rows: Rows, base: Path, archive: Path) -> None:
    base.mkdir()
    with serving(Containerd(base), archive) as ctd:
        ctrs = {rt: Ctr(ctd, rt) for rt in RUNTIME_ORDER}
        try:
            rows.alternate(lambda rt: {"ctr run --rm IMG ID true": timed(ctrs[rt].run, ctrs[rt].new_id(), "true")})
        finally:
            for c in ctrs.values():
                c.cleanup()


def pod_start_to_removal(cri: Cri) -> dict[str, float]:
    """A run-to-completion pod as kubelet drives it: the sandbox, the container of `true` created and started,
    its exit seen (ContainerStatus polled every 20 ms, as wait_exited does), the sandbox stopped and removed.
    Each step's time and the whole."""
    marks = [time.perf_counter()]
    pod = cri.pod()
    marks.append(time.perf_counter())
    cid = cri.container(pod, "true", start=False)
    marks.append(time.perf_counter())
    cri.start(cid)
    marks.append(time.perf_counter())
    cri.wait_exited(cid)
    marks.append(time.perf_counter())
    cri.stop_pod(pod)
    marks.append(time.perf_counter())
    cri.remove_pod(pod)
    marks.append(time.perf_counter())
    return {POD: marks[-1] - marks[0], **{f"  {step}": b - a for step, a, b in zip(POD_STEPS, marks, marks[1:])}}


def bench_cri(rows: Rows, base: Path, archive: Path) -> list[str]:
    base.mkdir()
    leaks = []
    with serving(CriHost(base), archive) as host:
        cris = {rt: Cri(host, rt, base / f"logs-{rt}") for rt in RUNTIME_ORDER}
        try:
            rows.alternate(lambda rt: pod_start_to_removal(cris[rt]))
        finally:
            for c in cris.values():
                leaks += c.cleanup()
    return leaks


def version(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def table(rows: Rows) -> list[str]:
    """median (min) in ms of each runtime, and pyoci/runc of the medians and of the means. Engines poll (podman
    and ctr here in 50 ms steps), so a median moves by whole steps; the means show how often a runtime's calls
    make an engine wait one step more."""
    lines = [["", "pyoci ms", "runc ms", "pyoci/runc med", "mean"]]
    for row, per in rows.samples.items():
        p, r = per.get("pyoci"), per.get("runc")
        if not p or not r:
            continue  # a pair cut short
        lines.append([row, f"{statistics.median(p) * 1e3:.1f} ({min(p) * 1e3:.1f})",
                      f"{statistics.median(r) * 1e3:.1f} ({min(r) * 1e3:.1f})",
                      f"{statistics.median(p) / statistics.median(r):.2f}",
                      f"{statistics.mean(p) / statistics.mean(r):.2f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            for line in lines]


def _on_term(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=15, help="timed pyoci/runc pairs per engine (default 15)")
    ap.add_argument("--engines", default="podman,ctr,cri", help="comma-separated (default podman,ctr,cri)")
    ap.add_argument("--json", metavar="FILE", help="also write the samples as JSON")
    args = ap.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if os.geteuid() != 0:
        print("engines.py: must run as root", file=sys.stderr)
        return 2
    if args.pairs < 1 or not set(engines) <= {"podman", "ctr", "cri"}:
        print("engines.py: --pairs must be >= 1, --engines of podman, ctr, cri", file=sys.stderr)
        return 2
    absent = [rt for rt in RUNTIME_ORDER if not RUNTIMES[rt]]
    if absent:
        print(f"engines.py: not installed: {', '.join(absent)}", file=sys.stderr)
        return 2
    needs = {"podman": missing("podman", "conmon"),
             "ctr": missing("containerd", "ctr", "containerd-shim-runc-v2", "umoci"),
             "cri": cri_missing() or missing("umoci")}
    signal.signal(signal.SIGTERM, _on_term)
    rows = Rows(args.pairs)
    notes, leftovers, error = [], [], ""
    t_start = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:  # the harness's teardowns report by warning
        warnings.simplefilter("always")
        base = Path(tempfile.mkdtemp(prefix="pyoci-bench-engines-", dir="/tmp"))
        try:
            rootfs = busybox_rootfs(base / "busybox")
            archive: Path | None = None  # the OCI image archive containerd imports, made once
            for engine in engines:
                if needs[engine]:
                    notes.append(f"{engine} skipped: {needs[engine]}")
                    continue
                print(f"{engine}: {args.pairs} pairs", file=sys.stderr)
                if engine == "podman":
                    bench_podman(rows, base / "podman", rootfs)
                    continue
                archive = archive or build_oci_archive(base, rootfs)
                if engine == "ctr":
                    bench_ctr(rows, base / "ctd", archive)
                else:
                    leftovers += bench_cri(rows, base / "cri", archive)
        except KeyboardInterrupt:
            error = "interrupted"
        except (AssertionError, subprocess.SubprocessError, OSError) as exc:  # an engine call failed: its words
            error = str(exc)
        finally:
            rmtree(base)
    leftovers += [str(w.message) for w in caught]
    if error:
        print(f"engines.py: {error}", file=sys.stderr)
    load = f"median {statistics.median(rows.load):.1f}, max {max(rows.load):.1f}" if rows.load else "-"
    print(f"pairs={args.pairs}  cores={os.cpu_count()}  elapsed={time.monotonic() - t_start:.0f}s  "
          f"load average (1 min) at each pair: {load}")
    print(f"  pyoci: {RUNTIMES['pyoci']} ({version(RUNTIMES['pyoci'], '--version')}), "
          f"runc: {version(RUNTIMES['runc'], '--version')}")
    print(f"  {version('podman', '--version')}; {version('containerd', '--version')}")
    for note in notes:
        print(f"  NOTE: {note}")
    print()
    print("\n".join(table(rows)))
    print("\nleftovers: " + ("none" if not leftovers else ""))
    for x in leftovers:
        print(f"  - {x}")
    if error:
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pairs": args.pairs, "load": rows.load, "notes": notes, "leftovers": leftovers,
                       "samples": rows.samples}, f, indent=2)
            f.write("\n")
    return 1 if leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
