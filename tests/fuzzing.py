"""What the config fuzzers share: seed configs and a hypothesis mutator that walks into a document and
replaces, deletes or adds something there (types, ranges, paths, unicode, huge values)."""
from __future__ import annotations

import copy

from hypothesis import strategies as st

from pyoci.defaults import default_config


def rich() -> dict:
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


SEEDS = [default_config(), default_config(rootless=True), rich()]

# Values that break assumptions: wrong types, edges of every integer width, odd strings.
EDGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**40]
ODD_STRINGS = ["", "/", ".", "..", "../../etc", "/proc/self/fd/3", "a" * 5000, "\u00e9\u4e2d\U0001f600", "\x00",
               "\ud800", "rw", "bind", "=", "a=b=c", "\n", "-1", "1.5", "/dev/../../..", "SCMP_ACT_ALLOW"]
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(EDGE_INTS), st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(ODD_STRINGS), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


def mutate(data: st.DataObject, doc: object, depth: int = 0) -> object:
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
            doc[key] = mutate(data, doc[key], depth + 1)
        return doc
    i = data.draw(st.integers(0, len(doc) - 1))
    if action == "delete":
        del doc[i]
    elif action == "add":
        doc.append(copy.deepcopy(doc[i]))
    else:
        doc[i] = mutate(data, doc[i], depth + 1)
    return doc
