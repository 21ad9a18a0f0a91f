"""Property: any config.json — a valid one mutated in types, ranges, paths, unicode and sizes, or cut short —
either goes through the loader, validator and plan builder (down to the C step array), or stops at a
PyociError that names where in the document it broke. Never any other exception."""
from __future__ import annotations

import copy
import json
import os
import tempfile

from fuzzing import SEEDS, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyoci import plan, spec
from pyoci.cgroups import Cgroup
from pyoci.errors import ConfigError, PyociError
from pyoci.linux import shim


def _through_the_pipeline(text: bytes) -> None:
    """What `create` does with a config before the first clone."""
    with tempfile.TemporaryDirectory() as bundle:
        with open(os.path.join(bundle, "config.json"), "wb") as f:
            f.write(text)
        cfg = spec.load(bundle)
        opts = plan.Options(rootfs=bundle, bundle=bundle, ns_fds={ns.type: 99 for ns in cfg.namespaces if ns.path})
        if cfg.seccomp and cfg.process:
            from pyoci.linux.seccomp import compile_filter

            opts.seccomp = compile_filter(cfg.seccomp)
        shim.encode(plan.build(cfg, opts, Cgroup()).steps)


def _check(text: bytes) -> None:
    try:
        _through_the_pipeline(text)
    except ConfigError as exc:
        message = str(exc)
        # the path into the document ("" for the document as a whole) and what is wrong there
        assert message.startswith("config.json: ") and message.isprintable() and exc.msg, message
    except PyociError as exc:
        message = str(exc)
        assert message.isprintable() and exc.msg, message
        assert any(message.startswith(p) for p in ("mounts[", "linux.", "process.", "hooks.", "root.")), message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(range(len(SEEDS))), rounds=st.integers(1, 3), data=st.data())
def test_mutated_configs_fail_cleanly_or_build_a_plan(seed, rounds, data):
    doc = copy.deepcopy(SEEDS[seed])
    for _ in range(rounds):
        doc = mutate(data, doc)
    _check(json.dumps(doc).encode())


@settings(max_examples=150, deadline=None)
@given(seed=st.sampled_from(range(len(SEEDS))), cut=st.floats(0, 1))
def test_truncated_configs_fail_cleanly(seed, cut):
    text = json.dumps(SEEDS[seed]).encode()
    _check(text[: int(len(text) * cut)])


@settings(max_examples=150, deadline=None)
@given(seed=st.sampled_from(range(len(SEEDS))), junk=st.binary(max_size=40), at=st.floats(0, 1))
def test_bytes_spliced_into_configs_fail_cleanly(seed, junk, at):
    text = json.dumps(SEEDS[seed]).encode()
    i = int(len(text) * at)
    _check(text[:i] + junk + text[i:])


def test_the_seeds_build_plans():
    for doc in SEEDS:
        _through_the_pipeline(json.dumps(doc).encode())
