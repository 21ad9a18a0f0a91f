"""The pyoci command runs without the garbage collector (csrc/launcher.c); a wait that may last for days
turns it on for what the wait allocates, without a first collection of everything the call made before
(which cost a `run` ~5% of its CPU here). In a fresh interpreter: it changes the process's collector."""
from __future__ import annotations

import subprocess
import sys


def test_the_objects_made_before_are_frozen_and_the_collector_on():
    code = ("import gc\n"
            "gc.disable()\n"
            "from pyoci.foreground import collect_from_here\n"
            "made = [[i] for i in range(20000)]\n"
            "assert gc.get_count()[0] > 20000\n"
            "collect_from_here()\n"
            "print(gc.isenabled(), gc.get_count()[0], gc.get_freeze_count() > 20000)\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "0", "True"]
