"""pyoci.spec.load: the rules config.json must follow, and the one-line errors that name what broke them.

Each test writes a bundle (config.json only: spec.load never looks at the rootfs) from `pyoci spec`'s
default config, changes one thing, and checks the whole message: `config.json: <json path>: <what>`.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pyoci import spec
from pyoci.defaults import default_config
from pyoci.errors import ConfigError

MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def cfg() -> dict:
    # deepcopy: default_config() hands out module-level lists (see test_default_config_is_fresh_each_call)
    return copy.deepcopy(default_config())


def write_bundle(tmp_path: Path, config) -> str:
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(config))
    return str(bundle)


def load(tmp_path: Path, config) -> spec.Config:
    return spec.load(write_bundle(tmp_path, config))


def error(tmp_path: Path, config) -> str:
    """The message `pyoci create` would print for this config."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, config)
    message = str(info.value)
    assert "\n" not in message
    return message


def namespaces(cfg: dict) -> list[dict]:
    return cfg["linux"]["namespaces"]


def drop_namespace(cfg: dict, kind: str) -> None:
    cfg["linux"]["namespaces"] = [ns for ns in namespaces(cfg) if ns["type"] != kind]


# --- what loads -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rootless", [False, True], ids=["root", "rootless"])
def test_default_config_loads(tmp_path, rootless):
    config = load(tmp_path, default_config(rootless=rootless))
    assert config.oci_version == default_config()["ociVersion"]
    assert config.root_path == "rootfs" and config.root_readonly
    assert config.process.args == ["sh"] and config.process.cwd == "/" and config.process.terminal
    assert config.process.user == spec.User(0, 0)
    assert config.process.rlimits == [spec.Rlimit("RLIMIT_NOFILE", 1024, 1024)]
    assert config.process.capabilities["bounding"] == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert config.process.capabilities["ambient"] == []
    assert config.hostname == "pyoci"
    assert config.mounts[0] == spec.Mount("/proc", "proc", "proc", [])
    kinds = [ns.type for ns in config.namespaces]
    assert ("user" in kinds) is rootless and ("network" in kinds) is not rootless
    assert config.namespace("mount") == spec.Namespace("mount")
    assert bool(config.uid_mappings) is rootless


def test_parse_fills_the_dataclasses(tmp_path, cfg):
    namespaces(cfg).extend([{"type": "user"}, {"type": "time"}])
    cfg["linux"].update(uidMappings=MAPPING, gidMappings=MAPPING,
                        timeOffsets={"monotonic": {"secs": -5}, "boottime": {"secs": 1, "nanosecs": 2}},
                        sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"},
                        devices=[{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o666}],
                        rootfsPropagation="rslave")
    cfg["process"].update(consoleSize={"height": 25, "width": 80}, oomScoreAdj=-1000)
    cfg["hooks"] = {"prestart": [{"path": "/bin/hook", "args": ["hook", "x"], "timeout": 3}]}
    config = load(tmp_path, cfg)
    assert config.uid_mappings == config.gid_mappings == [spec.IDMapping(0, 100000, 65536)]
    assert config.time_offsets == {"monotonic": (-5, 0), "boottime": (1, 2)}
    assert config.devices == [spec.Device("c", "/dev/fuse", 10, 229, 0o666)]
    assert config.process.console_size == (25, 80) and config.process.oom_score_adj == -1000
    assert config.hooks == {"prestart": [spec.Hook("/bin/hook", ["hook", "x"], [], 3)]}
    assert config.rootfs_propagation == "rslave"


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.0-rc.1+dev", "1.3.99"])
def test_supported_versions(tmp_path, cfg, version):
    cfg["ociVersion"] = version
    assert load(tmp_path, cfg).oci_version == version


def test_joined_user_namespace_needs_no_mappings(tmp_path, cfg):
    namespaces(cfg).append({"type": "user", "path": "/proc/1/ns/user"})
    assert load(tmp_path, cfg).namespace("user").path == "/proc/1/ns/user"


def test_empty_hostname_needs_no_uts_namespace(tmp_path, cfg):
    drop_namespace(cfg, "uts")
    cfg["hostname"] = ""
    assert load(tmp_path, cfg).hostname == ""


def test_time_offsets_with_a_new_time_namespace(tmp_path, cfg):
    namespaces(cfg).append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 1}}
    assert load(tmp_path, cfg).time_offsets == {"monotonic": (1, 0)}


# --- the bundle itself ----------------------------------------------------------------------------------------------

def test_missing_config_json(tmp_path):
    message = str(pytest.raises(ConfigError, spec.load, str(tmp_path)).value)
    assert message == f"config.json: not found in bundle {tmp_path}"


@pytest.mark.parametrize("text, detail", [
    ("{]", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("", "Expecting value: line 1 column 1 (char 0)"),
    ('{"ociVersion": "1.0.0",}', "Expecting property name enclosed in double quotes: line 1 column 24 (char 23)"),
    ('{"ociVersion": "1.0.0"} x', "Extra data: line 1 column 25 (char 24)"),
], ids=["garbage", "empty", "trailing comma", "extra data"])
def test_invalid_json(tmp_path, text, detail):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError) as info:
        spec.load(str(tmp_path))
    assert str(info.value) == f"config.json: cannot parse: {detail}"


def test_config_json_not_utf8(tmp_path):
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "1.0.0", "hostname": "\xff"}')
    message = str(pytest.raises(ConfigError, spec.load, str(tmp_path)).value)
    assert message.startswith("config.json: cannot parse: ") and "\n" not in message


def test_config_json_is_a_directory(tmp_path):
    (tmp_path / "config.json").mkdir()
    message = str(pytest.raises(ConfigError, spec.load, str(tmp_path)).value)
    assert message.startswith("config.json: ") and "Is a directory" in message and "\n" not in message


def test_deeply_nested_json(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.0", "annotations": ' + deep + "}")
    with pytest.raises(ConfigError):
        spec.load(str(tmp_path))


# --- schema errors: the JSON path and the offending value -----------------------------------------------------------

def test_schema_unknown_namespace_type(tmp_path, cfg):
    namespaces(cfg)[2]["type"] = "pidd"
    message = error(tmp_path, cfg)
    assert message.startswith('config.json: linux.namespaces[2].type: unknown value "pidd" (must be one of [')
    for kind in spec.NAMESPACE_TYPES:
        assert f"'{kind}'" in message


def test_schema_mount_without_destination(tmp_path, cfg):
    del cfg["mounts"][0]["destination"]
    assert error(tmp_path, cfg) == "config.json: mounts[0]: must contain ['destination'] properties"


def test_schema_wrong_type(tmp_path, cfg):
    cfg["mounts"][4]["destination"] = 5
    assert error(tmp_path, cfg) == "config.json: mounts[4].destination: must be string"


def test_schema_missing_oci_version(tmp_path, cfg):
    del cfg["ociVersion"]
    assert error(tmp_path, cfg) == "config.json: must contain ['ociVersion'] properties"


def test_schema_top_level_not_an_object(tmp_path):
    assert error(tmp_path, ["ociVersion", "1.0.0"]) == "config.json: must be object"


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0\n", "01.0.0"])
def test_schema_oci_version_not_semver(tmp_path, cfg, version):
    cfg["ociVersion"] = version
    assert error(tmp_path, cfg).startswith("config.json: ociVersion: must match pattern ^")


def test_schema_negative_uid(tmp_path, cfg):
    cfg["process"]["user"]["uid"] = -1
    assert error(tmp_path, cfg) == "config.json: process.user.uid: must be bigger than or equal to 0"


def test_schema_user_without_gid(tmp_path, cfg):
    cfg["process"]["user"] = {"uid": 0}
    assert error(tmp_path, cfg) == "config.json: process.user: must contain ['gid'] properties"


def test_schema_lowercase_capability(tmp_path, cfg):
    cfg["process"]["capabilities"]["permitted"][2] = "cap_kill"
    assert error(tmp_path, cfg).startswith("config.json: process.capabilities.permitted[2]: must match pattern ^CAP_")


def test_schema_rlimit_type_without_prefix(tmp_path, cfg):
    cfg["process"]["rlimits"][0]["type"] = "NOFILE"
    assert error(tmp_path, cfg).startswith("config.json: process.rlimits[0].type: must match pattern ^RLIMIT_")


def test_schema_unknown_propagation(tmp_path, cfg):
    cfg["linux"]["rootfsPropagation"] = "sideways"
    assert error(tmp_path, cfg).startswith('config.json: linux.rootfsPropagation: unknown value "sideways" (must ')


def test_schema_hook_timeout_zero(tmp_path, cfg):
    cfg["hooks"] = {"poststart": [{"path": "/bin/true"}, {"path": "/bin/true", "timeout": 0}]}
    assert error(tmp_path, cfg) == "config.json: hooks.poststart[1].timeout: must be bigger than or equal to 1"


def test_schema_names_keys_of_maps(tmp_path, cfg):
    cfg["annotations"] = {"org.example.n": 1}
    assert error(tmp_path, cfg) == "config.json: annotations.org.example.n: must be string"


def test_schema_empty_annotation_key(tmp_path, cfg):
    cfg["annotations"] = {"": "x"}
    message = error(tmp_path, cfg)
    assert message.startswith("config.json: annotations") and '""' in message and "propertyName" not in message


# --- semantic rules -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["2.0.0", "0.9.0", "1.4.0", "1.10.0", "0.5.0-dev"])
def test_unsupported_version(tmp_path, cfg, version):
    cfg["ociVersion"] = version
    assert error(tmp_path, cfg) == f'config.json: ociVersion: unsupported version "{version}" (1.0.0 through 1.3.x are)'


def test_root_required(tmp_path, cfg):
    del cfg["root"]
    assert error(tmp_path, cfg) == "config.json: root: required on Linux"


@pytest.mark.parametrize("cwd", ["tmp", "", "./"])
def test_relative_cwd(tmp_path, cfg, cwd):
    cfg["process"]["cwd"] = cwd
    assert error(tmp_path, cfg) == f'config.json: process.cwd: must be absolute: "{cwd}"'


def test_relative_mount_destination(tmp_path, cfg):
    cfg["mounts"][3]["destination"] = "proc"
    assert error(tmp_path, cfg) == 'config.json: mounts[3].destination: must be absolute: "proc"'


def test_relative_namespace_path(tmp_path, cfg):
    namespaces(cfg)[1]["path"] = "proc/1/ns/net"
    assert error(tmp_path, cfg) == 'config.json: linux.namespaces[1].path: must be absolute: "proc/1/ns/net"'


def test_relative_hook_path(tmp_path, cfg):
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/true"}, {"path": "bin/true"}]}
    assert error(tmp_path, cfg) == 'config.json: hooks.createRuntime[1].path: must be absolute: "bin/true"'


@pytest.mark.parametrize("key", ["maskedPaths", "readonlyPaths"])
def test_relative_masked_and_readonly_paths(tmp_path, cfg, key):
    cfg["linux"][key][1] = "proc/x"
    assert error(tmp_path, cfg) == f'config.json: linux.{key}[1]: must be absolute: "proc/x"'


def test_relative_device_path(tmp_path, cfg):
    cfg["linux"]["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229},
                               {"type": "c", "path": "dev/null", "major": 1, "minor": 3}]
    assert error(tmp_path, cfg) == 'config.json: linux.devices[1].path: must be absolute: "dev/null"'


@pytest.mark.parametrize("args", [[], None], ids=["empty", "missing"])
def test_process_without_args(tmp_path, cfg, args):
    if args is None:
        del cfg["process"]["args"]
    else:
        cfg["process"]["args"] = args
    assert error(tmp_path, cfg) == "config.json: process.args: must name the program to run"


@pytest.mark.parametrize("kind", spec.CAP_SETS)
def test_unknown_capability(tmp_path, cfg, kind):
    cfg["process"]["capabilities"][kind] = ["CAP_KILL", "CAP_LOL"]
    assert error(tmp_path, cfg) == f'config.json: process.capabilities.{kind}[1]: unknown capability "CAP_LOL"'


def test_unknown_rlimit(tmp_path, cfg):
    cfg["process"]["rlimits"].append({"type": "RLIMIT_FOO", "hard": 1, "soft": 1})
    assert error(tmp_path, cfg) == 'config.json: process.rlimits[1].type: unknown rlimit "RLIMIT_FOO"'


def test_duplicate_rlimit(tmp_path, cfg):
    cfg["process"]["rlimits"] += [{"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
                                  {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}]
    assert error(tmp_path, cfg) == 'config.json: process.rlimits[2].type: duplicate rlimit "RLIMIT_NOFILE"'


def test_rlimit_soft_above_hard(tmp_path, cfg):
    cfg["process"]["rlimits"][0] = {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1025}
    assert error(tmp_path, cfg) == "config.json: process.rlimits[0]: soft limit is above the hard limit"


def test_duplicate_namespace(tmp_path, cfg):
    namespaces(cfg).append({"type": "pid"})
    assert error(tmp_path, cfg) == 'config.json: linux.namespaces[6].type: duplicate namespace "pid"'


def test_duplicate_namespace_new_and_joined(tmp_path, cfg):
    namespaces(cfg).insert(2, {"type": "network", "path": "/var/run/netns/x"})
    assert error(tmp_path, cfg) == 'config.json: linux.namespaces[2].type: duplicate namespace "network"'


def test_user_namespace_without_mappings(tmp_path, cfg):
    namespaces(cfg).append({"type": "user"})
    assert error(tmp_path, cfg) == \
        "config.json: linux.namespaces: a new user namespace needs uidMappings and gidMappings"


@pytest.mark.parametrize("present", ["uidMappings", "gidMappings"])
def test_user_namespace_with_half_the_mappings(tmp_path, cfg, present):
    namespaces(cfg).append({"type": "user"})
    cfg["linux"][present] = MAPPING
    assert error(tmp_path, cfg) == \
        "config.json: linux.namespaces: a new user namespace needs uidMappings and gidMappings"


def test_uid_mappings_without_user_namespace(tmp_path, cfg):
    cfg["linux"].update(uidMappings=MAPPING, gidMappings=MAPPING)
    assert error(tmp_path, cfg) == "config.json: linux.uidMappings: id mappings need a user namespace"


def test_gid_mappings_without_user_namespace(tmp_path, cfg):
    cfg["linux"]["gidMappings"] = MAPPING
    assert error(tmp_path, cfg) == "config.json: linux.gidMappings: id mappings need a user namespace"


def test_hostname_without_uts_namespace(tmp_path, cfg):
    drop_namespace(cfg, "uts")
    assert error(tmp_path, cfg) == "config.json: hostname: setting the hostname needs a uts namespace"


def test_domainname_without_uts_namespace(tmp_path, cfg):
    drop_namespace(cfg, "uts")
    del cfg["hostname"]
    cfg["domainname"] = "example.test"
    message = error(tmp_path, cfg)
    assert message.startswith("config.json: domainname: ") and "uts namespace" in message


def test_time_offsets_without_time_namespace(tmp_path, cfg):
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 1}}
    assert error(tmp_path, cfg) == "config.json: linux.timeOffsets: timeOffsets need a new time namespace"


def test_time_offsets_with_a_joined_time_namespace(tmp_path, cfg):
    namespaces(cfg).append({"type": "time", "path": "/proc/1/ns/time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 1}}
    assert error(tmp_path, cfg) == "config.json: linux.timeOffsets: timeOffsets need a new time namespace"


@pytest.mark.parametrize("key, kind", [("net.ipv4.ip_forward", "network"), ("kernel.shmmax", "ipc"),
                                       ("fs.mqueue.msg_max", "ipc"), ("kernel.domainname", "uts")])
def test_sysctl_without_its_namespace(tmp_path, cfg, key, kind):
    drop_namespace(cfg, kind)
    cfg.pop("hostname")
    cfg["linux"]["sysctl"] = {key: "1"}
    message = error(tmp_path, cfg)
    article = "an" if kind == "ipc" else "a"
    assert message == f"config.json: linux.sysctl.{key}: needs {article} {kind} namespace"


def test_sysctl_in_slash_form_without_its_namespace(tmp_path, cfg):
    drop_namespace(cfg, "network")
    cfg["linux"]["sysctl"] = {"net/ipv4/ip_forward": "1"}
    assert "network namespace" in error(tmp_path, cfg)


@pytest.mark.parametrize("key", ["vm.swappiness", "kernel.panic"])
def test_sysctl_outside_any_namespace(tmp_path, cfg, key):
    cfg["linux"]["sysctl"] = {key: "1"}
    assert error(tmp_path, cfg).startswith(f"config.json: linux.sysctl.{key}: ")


def test_float_uid_is_refused_like_runc(tmp_path, cfg):
    cfg["process"]["user"]["uid"] = 1.0
    assert error(tmp_path, cfg) == "config.json: process.user.uid: must be integer"


def test_default_config_is_fresh_each_call(monkeypatch):
    from pyoci import defaults

    # work on copies of the module's lists, so the other tests in this worker never see the damage
    monkeypatch.setattr(defaults, "MASKED", list(defaults.MASKED))
    monkeypatch.setattr(defaults, "READONLY", list(defaults.READONLY))
    first = default_config()
    first["linux"]["maskedPaths"].append("/proc/changed")
    first["linux"]["readonlyPaths"].clear()
    second = default_config()
    assert "/proc/changed" not in second["linux"]["maskedPaths"]
    assert second["linux"]["readonlyPaths"]


def test_mount_id_mappings_are_parsed(tmp_path, cfg):
    cfg["mounts"].append({"destination": "/d", "type": "bind", "source": "/s", "options": ["rbind", "ridmap"],
                          "uidMappings": MAPPING, "gidMappings": MAPPING})
    m = load(tmp_path, cfg).mounts[-1]
    assert m.uid_mappings == m.gid_mappings == [spec.IDMapping(0, 100000, 65536)]


def test_idmapped_mounts_must_be_binds(tmp_path, cfg):
    cfg["mounts"].append({"destination": "/d", "type": "tmpfs", "source": "tmpfs",
                          "uidMappings": MAPPING, "gidMappings": MAPPING})
    assert error(tmp_path, cfg) == f"config.json: mounts[{len(cfg['mounts']) - 1}]: an idmapped mount must be a bind mount"


def test_idmap_without_mappings_needs_the_containers(tmp_path, cfg):
    cfg["mounts"].append({"destination": "/d", "type": "bind", "source": "/s", "options": ["bind", "idmap"]})
    assert error(tmp_path, cfg) == (f"config.json: mounts[{len(cfg['mounts']) - 1}].options: idmap without "
                                    "uidMappings/gidMappings needs the container's user namespace mappings")


@pytest.mark.parametrize("destination, kind, options, cleaned", [
    ("/proc", "proc", [], "/proc"), ("/proc/", "proc", [], "/proc"), ("/proc/cpuinfo", "bind", ["rbind"], "/proc/cpuinfo"),
    ("/proc/./meminfo", "none", ["bind"], "/proc/meminfo"),
    ("/proc/sys/kernel/ns_last_pid", "bind", [], "/proc/sys/kernel/ns_last_pid"),
    ("/proc/uptime", "tmpfs", [], "/proc/uptime"), ("/proc/sys/crypto/fips_enabled", "bind", [], "/proc/sys/crypto/fips_enabled"),
    ("/procfoo", "tmpfs", [], "/procfoo"), ("//proc/../tmp", "tmpfs", [], "/tmp"),
    ("/proc", "bind", ["rbind"], "/proc"),  # a bind's source is checked at create
])
def test_mounts_runc_allows_on_proc(tmp_path, cfg, destination, kind, options, cleaned):
    cfg["mounts"].append({"destination": destination, "type": kind, "source": "/x", "options": options})
    assert load(tmp_path, cfg).mounts[-1].destination == cleaned


@pytest.mark.parametrize("destination, kind, message", [
    ("/proc", "tmpfs", 'only a proc mount can go on /proc, not "tmpfs"'),
    ("/proc", "sysfs", 'only a proc mount can go on /proc, not "sysfs"'),
    ("//proc/.", "", 'only a proc mount can go on /proc, not "none"'),
    ("/proc/sys", "tmpfs", 'cannot mount inside /proc: "/proc/sys"'),
    ("/proc/self/attr", "tmpfs", 'cannot mount inside /proc: "/proc/self/attr"'),
    ("/proc/sys/kernel/core_pattern", "bind", 'cannot mount inside /proc: "/proc/sys/kernel/core_pattern"'),
    ("/tmp/../proc/sysrq-trigger", "bind", 'cannot mount inside /proc: "/proc/sysrq-trigger"'),
    ("/proc/net/dev", "bind", 'cannot mount inside /proc: "/proc/net/dev"'),
])
def test_mounts_runc_refuses_on_proc(tmp_path, cfg, destination, kind, message):
    m = {"destination": destination, "source": "/x"}
    if kind:
        m["type"] = kind
    cfg["mounts"].append(m)
    assert error(tmp_path, cfg) == f"config.json: mounts[{len(cfg['mounts']) - 1}].destination: {message}"


VERSION_RE = r"^1\.[0-3]\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
VERSION_PIECES = ["1", ".", "0", "3", "4", "9", "٣", "-", "+", "a", "Z", "\n", " ", "_", "10"]


@pytest.mark.parametrize("version", ["1.0.0", "1.3.99-rc.1+a.b", "1.4.0", "1.0", "1.0.", "1.0.x", "1.0.0-", "1.0.0+",
                                     "1.0.0\n", "1.0.0\n\n", "1.0.0-a\n", "1.0.0\n+a", "1.0.٣", "1.0.0+a+b", "2.0.0",
                                     "1.0.0-a_b", "1.00.0", "1.0.0-+a", "", "1.1.1-..--"])
def test_supported_version_is_the_regex_verdict(version):
    import re

    assert spec.supported_version(version) is bool(re.match(VERSION_RE, version))


def test_supported_version_is_the_regex_verdict_on_any_mix():
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=2000)
    @given(st.lists(st.sampled_from(VERSION_PIECES), max_size=12).map("".join))
    def check(version):
        assert spec.supported_version("1." + version) is bool(re.match(VERSION_RE, "1." + version))
        assert spec.supported_version(version) is bool(re.match(VERSION_RE, version))

    check()


# --- runtime-spec 1.2/1.3 process and linux fields (issue 18) -------------------------------------------------------

def test_scheduling_fields_parse(tmp_path, cfg):
    cfg["process"].update(scheduler={"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 5000,
                                     "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
                          ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 6},
                          execCPUAffinity={"initial": " 0-2, ,7 ", "final": ""})
    cfg["linux"].update(memoryPolicy={"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
                        netDevices={"eth1": {}, "veth9": {"name": "c0"}},
                        intelRdt={"closID": "gold", "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50",
                                  "schemata": ["L2:0=3"], "enableMonitoring": True})
    c = load(tmp_path, cfg)
    assert c.process.scheduler == spec.Scheduler("SCHED_DEADLINE", runtime=2000, deadline=5000,
                                                 flags=["SCHED_FLAG_RESET_ON_FORK"])
    assert c.process.io_priority == spec.IOPriority("IOPRIO_CLASS_BE", 6)
    assert c.process.exec_cpu_affinity == spec.CPUAffinity(initial=[0, 1, 2, 7])
    assert c.memory_policy == spec.MemoryPolicy("MPOL_INTERLEAVE", [0, 1], ["MPOL_F_STATIC_NODES"])
    assert c.net_devices == {"eth1": "eth1", "veth9": "c0"}
    assert c.intel_rdt.lines() == ["L3:0=f", "MB:0=50", "L2:0=3"] and c.intel_rdt.enable_monitoring


def test_empty_exec_cpu_affinity_is_none(tmp_path, cfg):
    cfg["process"]["execCPUAffinity"] = {"initial": "", "final": " "}
    assert load(tmp_path, cfg).process.exec_cpu_affinity is None


def _set(path: str, value):
    def edit(cfg):
        *parents, key = path.split(".")
        node = cfg
        for name in parents:
            node = node.setdefault(name, {})
        node[key] = value
    return edit


REFUSED = [
    (_set("process.commandLine", "sh -c x"), "process.commandLine: a Windows field"),
    (_set("process.user.username", "root"), "process.user.username: a Windows field"),
    (_set("windows", {}), "windows: settings for another platform: pyoci runs Linux containers"),
    (_set("vm", {"hypervisor": {}}), "vm: settings for another platform"),
    (_set("linux.personality", {"domain": "LINUX", "flags": ["X"]}), "linux.personality.flags: no personality flags"),
    (_set("process.scheduler", {"policy": "SCHED_ISO"}), "process.scheduler.policy: SCHED_ISO is not a Linux policy"),
    (_set("process.scheduler", {"policy": "SCHED_OTHER", "nice": 20}), "process.scheduler.nice: 20 is not in -20..19"),
    (_set("process.scheduler", {"policy": "SCHED_RR", "nice": 1, "priority": 1}),
     "process.scheduler.nice: SCHED_RR has no nice value"),
    (_set("process.scheduler", {"policy": "SCHED_FIFO"}), "process.scheduler.priority: SCHED_FIFO takes a priority"),
    (_set("process.scheduler", {"policy": "SCHED_BATCH", "priority": 3}),
     "process.scheduler.priority: SCHED_BATCH has no priority"),
    (_set("process.scheduler", {"policy": "SCHED_OTHER", "runtime": 3}),
     "process.scheduler.runtime: only SCHED_DEADLINE takes a runtime"),
    (_set("process.scheduler", {"policy": "SCHED_IDLE", "flags": ["SCHED_FLAG_RECLAIM"]}),
     "process.scheduler.flags[0]: SCHED_FLAG_RECLAIM is for SCHED_DEADLINE only"),
    (_set("process.scheduler", {"policy": "SCHED_DEADLINE", "runtime": 900, "deadline": 1000}),
     "process.scheduler.runtime: 900 is below the kernel's minimum"),
    (_set("process.scheduler", {"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 3000, "period": 2500}),
     "process.scheduler: SCHED_DEADLINE needs 0 < runtime <= deadline <= period"),
    (_set("process.execCPUAffinity", {"final": "3-1"}), "process.execCPUAffinity.final: not a list like 0-3,7"),
    (_set("process.execCPUAffinity", {"initial": "99999"}), "process.execCPUAffinity.initial: not a list"),
    (_set("linux.memoryPolicy", {"mode": "MPOL_PREFERRED_MANY"}), "MPOL_PREFERRED_MANY needs at least one node"),
    (_set("linux.memoryPolicy", {"mode": "MPOL_DEFAULT", "nodes": "0"}), "MPOL_DEFAULT takes no nodes"),
    (_set("linux.netDevices", {"a/b": {}}), 'linux.netDevices.a/b: "a/b" is not an interface name'),
    (_set("linux.netDevices", {"eth0": {"name": "x" * 16}}), "linux.netDevices.eth0.name: "),
    (_set("linux.netDevices", {"eth0": {"name": "c0"}, "eth1": {"name": "c0"}}),
     'linux.netDevices.eth1: "c0" is also the name given to eth0'),
    (_set("linux.intelRdt", {"closID": "../x"}), 'linux.intelRdt.closID: "../x" is not a resctrl group name'),
    (_set("linux.intelRdt", {"l3CacheSchema": "L3:0=f\nMB:0=1"}), "linux.intelRdt.l3CacheSchema: one schemata line"),
]


@pytest.mark.parametrize("edit, message", REFUSED, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(REFUSED)])
def test_new_fields_refused_in_one_line(tmp_path, cfg, edit, message):
    edit(cfg)
    assert message in error(tmp_path, cfg)


def test_net_devices_need_a_network_namespace(tmp_path, cfg):
    drop_namespace(cfg, "network")
    cfg["linux"]["netDevices"] = {"eth1": {}}
    assert error(tmp_path, cfg) == ("config.json: linux.netDevices: moving interfaces needs a network namespace "
                                    "of the container's")


def test_net_device_name_templates_may_repeat(tmp_path, cfg):
    cfg["linux"]["netDevices"] = {"eth1": {"name": "c%d"}, "eth2": {"name": "c%d"}}
    assert load(tmp_path, cfg).net_devices == {"eth1": "c%d", "eth2": "c%d"}
