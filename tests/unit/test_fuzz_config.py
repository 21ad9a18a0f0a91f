"""Property: any config.json — a valid one mutated in types, ranges, paths, unicode and sizes, or cut short —
either goes through the loader, validator and plan builder (down to the C step array), or stops at a
PyociError that names where in the document it broke. Never any other exception."""
from __future__ import annotations

import copy
import json
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyoci import plan, spec
from pyoci.cgroups import Cgroup
from pyoci.defaults import default_config
from pyoci.errors import ConfigError, PyociError
from pyoci.linux import shim


def _rich() -> dict:
    """The default config plus the parts it leaves out, so mutations reach them too."""
    cfg = copy.deepcopy(default_config())
    cfg["process"].update(terminal=False, consoleSize={"height": 24, "width": 80}, oomScoreAdj=5,
                          user={"uid": 1, "gid": 1, "umask": 18, "additionalGids": [5]},
                          rlimits=[{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                                   {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 0}])
    cfg["process"]["capabilities"]["ambient"] = ["CAP_KILL"]
    cfg["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 3}],
                    "createContainer": [{"path": "/bin/true"}]}
    cfg["annotations"] = {"a": "b"}
    cfg["domainname"] = "d"
    linux = cfg["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "time"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["timeOffsets"] = {"monotonic": {"secs": 1, "nanosecs": 2}}
    linux["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    linux["rootfsPropagation"] = "rslave"
    linux["personality"] = {"domain": "LINUX"}
    linux["cgroupsPath"] = "/pyoci/x"
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "rro", "shared"]})
    return cfg


SEEDS = [default_config(), default_config(rootless=True), _rich()]

# Values that break assumptions: wrong types, edges of every integer width, odd strings.
EDGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**40]
ODD_STRINGS = ["", "/", ".", "..", "../../etc", "/proc/self/fd/3", "a" * 5000, "\u00e9\u4e2d\U0001f600", "\x00",
               "\ud800", "rw", "bind", "=", "a=b=c", "\n", "-1", "1.5", "/dev/../../..", "SCMP_ACT_ALLOW"]
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(EDGE_INTS), st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(ODD_STRINGS), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


def _mutate(data: st.DataObject, doc: object, depth: int = 0) -> object:
    """Walks to a random place in doc (mostly deep: the top level is one object) and replaces, deletes or
    adds something there."""
    if not isinstance(doc, (dict, list)) or not doc or (depth > 0 and data.draw(st.integers(0, 4)) == 0):
        if data.draw(st.booleans()):  # same type, odd value: gets past the schema to the later checks
            if isinstance(doc, int) and not isinstance(doc, bool):
                return data.draw(st.one_of(st.sampled_from(EDGE_INTS), st.integers()))
            if isinstance(doc, str):
                return data.draw(st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=30), st.just(doc + doc)))
        return data.draw(values)
    action = data.draw(st.sampled_from(["descend"] * 6 + ["delete", "add"]))
    if isinstance(doc, dict):
        key = data.draw(st.sampled_from(sorted(doc)))
        if action == "delete":
            del doc[key]
        elif action == "add":
            doc[data.draw(st.one_of(st.text(max_size=12), st.sampled_from(list(doc))))] = data.draw(values)
        else:
            doc[key] = _mutate(data, doc[key], depth + 1)
        return doc
    i = data.draw(st.integers(0, len(doc) - 1))
    if action == "delete":
        del doc[i]
    elif action == "add":
        doc.append(copy.deepcopy(doc[i]))
    else:
        doc[i] = _mutate(data, doc[i], depth + 1)
    return doc


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
        shim.encode(plan.build(cfg, opts, Cgroup()))


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
        doc = _mutate(data, doc)
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
