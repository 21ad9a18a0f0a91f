"""Every property of specs/config.schema.json (runtime-spec 1.3) is applied, or refused in one line: none is
ignored. The table below says, per property, which tests watch it take effect (or be refused), and where
pyoci refuses it: everywhere (a field of another platform, a value Linux has no meaning for) or on hosts that
lack what applies it (resctrl, an LSM, a cgroup controller or file). These tests hold the table to the
schema, to the tests it names, to the runtime (each refusal it claims on this host is made for real) and
to `pyoci features`.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import re
from typing import Callable, NamedTuple

import pytest

from conftest import REPO, cgroup_dirs
from pyoci.features import features
from pyoci.linux import lsm, resctrl, sched

TESTS = REPO / "tests"


# --- where pyoci refuses a field: facts about the host ---------------------------------------------------------------

def always() -> bool:
    return True


def cgroup_v2() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _v1(name: str) -> bool:
    return not cgroup_v2() and os.path.exists(f"/sys/fs/cgroup/{name}")


def no_apparmor() -> bool:
    return not lsm.apparmor_enabled()


def no_selinux() -> bool:
    return not lsm.selinux_enabled()


def no_resctrl() -> bool:
    return resctrl.mountpoint() is None


def no_numa() -> bool:
    return not sched.host_nodes()


def no_rdma() -> bool:
    return not features()["linux"]["cgroup"]["rdma"]


def no_net_cls() -> bool:
    return not _v1("net_cls")


def no_net_prio() -> bool:
    return not _v1("net_prio")


def no_blkio_weight() -> bool:
    """v1 without CFQ's or BFQ's weight files (v2 weighs through io.weight or io.bfq.weight)."""
    return not cgroup_v2() and not (_v1("blkio/blkio.weight") or _v1("blkio/blkio.bfq.weight"))


def no_cfq_leaf_weight() -> bool:
    return not _v1("blkio/blkio.leaf_weight")


class Row(NamedTuple):
    field: str  # a property path of the schema: "[]" an array's items, "*" any one key (hook kind, map key)
    tests: tuple[str, ...]  # tests (tests/FILE::FUNCTION) that watch it take effect or be refused
    refused: Callable[[], bool] | None = None  # where pyoci refuses it (None: nowhere)
    sample: dict | None = None  # a config fragment asking for it: the refusal is made for real where it holds


def row(field: str, *tests: str, refused: Callable[[], bool] | None = None, sample: dict | None = None) -> Row:
    return Row(field, tests, refused, sample)


def res(**resources) -> dict:
    return {"linux": {"resources": resources}}


INSIDE = "integration/test_inside.py::"
SCHED = "integration/test_process_scheduling.py::"
FIELDS = "integration/test_spec_fields.py::"
SECCOMP = "integration/test_seccomp.py::"
CG1 = "integration/test_cgroup_resources.py::"
CG2 = "integration/test_cgroups_v2.py::"
CGROUPS = "integration/test_cgroups.py::"
NET = "integration/test_net_devices.py::"
REFUSALS = "unit/test_spec.py::test_new_fields_refused_in_one_line"
LSM = "integration/test_escapes.py::test_lsm_labels_without_the_lsm_are_refused_like_runc"
RDT = ("unit/test_resctrl.py::test_a_group_of_the_containers_own_gets_the_lines_in_the_specs_order",
       "unit/test_resctrl.py::test_refused_without_resctrl")
V2_REFUSED = CG2 + "test_v1_only_resources_are_refused_and_nothing_is_left"
IDMAP = "integration/test_idmap.py::test_without_a_user_namespace_the_mount_shows_the_mapped_owner"
DEVICE_RULES = "integration/test_cgroup_devices.py::test_container_allowed_to_read_a_device_cannot_write_it"
WEIGHTS = (CG1 + "test_blockio_weights", CG2 + "test_weights_burst_and_check_before_update")

TABLE = [
    row("ociVersion", "unit/test_spec.py::test_unsupported_version", "integration/test_lifecycle.py::"
        "test_lifecycle_statuses_and_state_json"),
    row("root", INSIDE + "test_user_namespace_maps_ids"),
    row("root.path", INSIDE + "test_user_namespace_maps_ids"),
    row("root.readonly", INSIDE + "test_root_readonly_masked_and_readonly_paths"),
    row("mounts", INSIDE + "test_mounts_tmpfs_bind_readonly_and_options"),
    row("mounts[].destination", INSIDE + "test_mounts_tmpfs_bind_readonly_and_options"),
    row("mounts[].source", INSIDE + "test_mounts_tmpfs_bind_readonly_and_options"),
    row("mounts[].type", INSIDE + "test_mounts_tmpfs_bind_readonly_and_options"),
    row("mounts[].options", INSIDE + "test_mounts_tmpfs_bind_readonly_and_options"),
    row("mounts[].*Mappings", IDMAP),
    row("mounts[].*Mappings[].*", IDMAP),
    row("process", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.terminal", "integration/test_terminal.py::test_console_socket_receives_pty_master"),
    row("process.consoleSize", "integration/test_terminal.py::test_console_socket_receives_pty_master"),
    row("process.consoleSize.*", "integration/test_terminal.py::test_console_socket_receives_pty_master"),
    row("process.user", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.user.uid", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.user.gid", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.user.umask", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.user.additionalGids", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.user.username", REFUSALS, refused=always,
        sample={"process": {"user": {"uid": 0, "gid": 0, "username": "root"}}}),
    row("process.args", "integration/test_exec.py::test_exec_process_file_detach_and_pid_file"),
    row("process.commandLine", REFUSALS, refused=always, sample={"process": {"commandLine": "sh -c true"}}),
    row("process.env", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.cwd", INSIDE + "test_user_groups_umask_cwd_env"),
    row("process.capabilities", INSIDE + "test_capabilities_all_sets"),
    row("process.capabilities.*", INSIDE + "test_capabilities_all_sets"),
    row("process.rlimits", INSIDE + "test_rlimits_no_new_privileges_oom_score"),
    row("process.rlimits[].*", INSIDE + "test_rlimits_no_new_privileges_oom_score"),
    row("process.noNewPrivileges", INSIDE + "test_rlimits_no_new_privileges_oom_score"),
    row("process.oomScoreAdj", INSIDE + "test_rlimits_no_new_privileges_oom_score"),
    row("process.apparmorProfile", LSM, refused=no_apparmor, sample={"process": {"apparmorProfile": "unconfined"}}),
    row("process.selinuxLabel", LSM, refused=no_selinux,
        sample={"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
    row("process.scheduler", SCHED + "test_scheduler_policy_nice_priority_deadline_and_flags"),
    row("process.scheduler.*", SCHED + "test_scheduler_policy_nice_priority_deadline_and_flags",
        SCHED + "test_utilization_clamp_flags_apply_or_are_refused"),
    row("process.ioPriority", SCHED + "test_io_priority_every_class_and_level_for_the_init_and_exec"),
    row("process.ioPriority.*", SCHED + "test_io_priority_every_class_and_level_for_the_init_and_exec"),
    row("process.execCPUAffinity", SCHED + "test_exec_cpu_affinity_initial_and_final_for_exec_and_its_process_file"),
    row("process.execCPUAffinity.*", SCHED + "test_exec_cpu_affinity_initial_and_final_for_exec_and_its_process_file"),
    row("hostname", INSIDE + "test_pid_uts_ipc_net_mount_namespaces_are_new"),
    row("domainname", INSIDE + "test_domainname"),
    row("hooks", "integration/test_hooks.py::test_all_hooks_run_in_order_with_state"),
    row("hooks.*", "integration/test_hooks.py::test_all_hooks_run_in_order_with_state"),
    row("hooks.*[].*", "integration/test_hooks.py::test_hook_env_args_and_timeout"),
    row("annotations", "integration/test_hooks.py::test_a_megabyte_of_annotations_reaches_every_hook_whole"),
    row("linux", INSIDE + "test_pid_uts_ipc_net_mount_namespaces_are_new"),
    row("linux.namespaces", INSIDE + "test_join_existing_namespace_by_path"),
    row("linux.namespaces[].*", INSIDE + "test_join_existing_namespace_by_path"),
    row("linux.*Mappings", INSIDE + "test_user_namespace_maps_ids"),
    row("linux.*Mappings[].*", INSIDE + "test_user_namespace_maps_ids"),
    row("linux.timeOffsets", FIELDS + "test_time_offsets_seconds_and_nanoseconds"),
    row("linux.timeOffsets.*.*", FIELDS + "test_time_offsets_seconds_and_nanoseconds"),
    row("linux.devices", INSIDE + "test_devices_default_and_configured"),
    row("linux.devices[].*", INSIDE + "test_devices_default_and_configured"),
    row("linux.netDevices", NET + "test_veth_moved_in_renamed_with_its_global_permanent_addresses_and_up",
        NET + "test_a_missing_interface_is_refused_and_nothing_moves"),
    row("linux.netDevices.*.name", NET + "test_veth_moved_in_renamed_with_its_global_permanent_addresses_and_up"),
    row("linux.cgroupsPath", CGROUPS + "test_cgroups_path_absolute_and_relative_and_cleanup"),
    row("linux.rootfsPropagation", "integration/test_propagation.py::test_rshared_propagates_both_ways"),
    row("linux.sysctl", INSIDE + "test_sysctl_in_network_namespace"),
    row("linux.maskedPaths", INSIDE + "test_root_readonly_masked_and_readonly_paths"),
    row("linux.readonlyPaths", INSIDE + "test_root_readonly_masked_and_readonly_paths"),
    row("linux.mountLabel", LSM, refused=no_selinux,
        sample={"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}),
    row("linux.personality", INSIDE + "test_personality_linux32"),
    row("linux.personality.domain", INSIDE + "test_personality_linux32"),
    row("linux.personality.flags", REFUSALS, refused=always,
        sample={"linux": {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}}}),
    row("linux.seccomp", SECCOMP + "test_default_errno_with_allow_list"),
    row("linux.seccomp.defaultAction", SECCOMP + "test_default_errno_with_allow_list"),
    row("linux.seccomp.defaultErrnoRet", SECCOMP + "test_default_errno_with_allow_list"),
    row("linux.seccomp.architectures", FIELDS + "test_seccomp_architectures_decide_what_a_foreign_call_meets"),
    row("linux.seccomp.flags", FIELDS + "test_seccomp_flags_reach_the_kernel"),
    row("linux.seccomp.listener*", SECCOMP + "test_notify_agent_gets_the_container_process_state"),
    row("linux.seccomp.syscalls", SECCOMP + "test_errno_action_and_our_steps_survive_a_blocked_getcwd"),
    row("linux.seccomp.syscalls[].names", SECCOMP + "test_errno_action_and_our_steps_survive_a_blocked_getcwd"),
    row("linux.seccomp.syscalls[].action", SECCOMP + "test_errno_action_and_our_steps_survive_a_blocked_getcwd"),
    row("linux.seccomp.syscalls[].errnoRet", SECCOMP + "test_errno_action_and_our_steps_survive_a_blocked_getcwd"),
    row("linux.seccomp.syscalls[].args", SECCOMP + "test_kill_action_and_argument_filters"),
    row("linux.seccomp.syscalls[].args[].index", SECCOMP + "test_kill_action_and_argument_filters"),
    row("linux.seccomp.syscalls[].args[].op", SECCOMP + "test_kill_action_and_argument_filters"),
    row("linux.seccomp.syscalls[].args[].value", SECCOMP + "test_kill_action_and_argument_filters"),
    row("linux.seccomp.syscalls[].args[].valueTwo", FIELDS + "test_seccomp_masked_eq_takes_value_two"),
    row("linux.memoryPolicy", SCHED + "test_memory_policy_every_mode_and_flag", refused=no_numa,
        sample={"linux": {"memoryPolicy": {"mode": "MPOL_LOCAL"}}}),
    row("linux.memoryPolicy.*", SCHED + "test_memory_policy_every_mode_and_flag",
        SCHED + "test_memory_policy_nodes_the_host_lacks_and_bad_combinations_are_refused", refused=no_numa,
        sample={"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}}}),
    row("linux.intelRdt", *RDT, refused=no_resctrl, sample={"linux": {"intelRdt": {}}}),
    row("linux.intelRdt.closID", *RDT, refused=no_resctrl, sample={"linux": {"intelRdt": {"closID": "gold"}}}),
    row("linux.intelRdt.l3CacheSchema", *RDT, refused=no_resctrl,
        sample={"linux": {"intelRdt": {"l3CacheSchema": "L3:0=f"}}}),
    row("linux.intelRdt.memBwSchema", *RDT, refused=no_resctrl,
        sample={"linux": {"intelRdt": {"memBwSchema": "MB:0=50"}}}),
    row("linux.intelRdt.schemata", *RDT, refused=no_resctrl, sample={"linux": {"intelRdt": {"schemata": ["L2:0=3"]}}}),
    row("linux.intelRdt.enableMonitoring",
        "unit/test_resctrl.py::test_monitoring_makes_a_mon_group_named_after_the_container", refused=no_resctrl,
        sample={"linux": {"intelRdt": {"enableMonitoring": True}}}),
    row("linux.resources", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.devices", DEVICE_RULES),
    row("linux.resources.devices[].*", DEVICE_RULES),
    row("linux.resources.memory", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.memory.limit", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.memory.reservation", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.memory.swap", CGROUPS + "test_update_flags_and_resources_file"),
    row("linux.resources.memory.checkBeforeUpdate",
        CG1 + "test_check_before_update_refuses_a_limit_at_or_below_the_usage",
        CG2 + "test_weights_burst_and_check_before_update"),
    row("linux.resources.memory.kernel", CG1 + "test_kernel_memory_is_written_and_a_kernel_that_discards_it_is_named",
        V2_REFUSED, refused=cgroup_v2, sample=res(memory={"kernel": 1 << 20})),
    row("linux.resources.memory.kernelTCP", CG1 + "test_memory_extras_land_in_their_files", V2_REFUSED,
        refused=cgroup_v2, sample=res(memory={"kernelTCP": 1 << 20})),
    row("linux.resources.memory.swappiness", CG1 + "test_memory_extras_land_in_their_files", V2_REFUSED,
        refused=cgroup_v2, sample=res(memory={"swappiness": 10})),
    row("linux.resources.memory.disableOOMKiller", CG1 + "test_memory_extras_land_in_their_files", V2_REFUSED,
        refused=cgroup_v2, sample=res(memory={"disableOOMKiller": True})),
    row("linux.resources.memory.useHierarchy", CG1 + "test_memory_extras_land_in_their_files",
        "unit/test_cgroup_limits.py::test_v2_refuses_what_it_has_no_file_for", refused=cgroup_v2,
        sample=res(memory={"useHierarchy": False})),
    row("linux.resources.cpu", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.cpu.shares", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.cpu.quota", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.cpu.period", CG1 + "test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files"),
    row("linux.resources.cpu.burst", CG1 + "test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files",
        CG2 + "test_weights_burst_and_check_before_update"),
    row("linux.resources.cpu.idle", CG1 + "test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files",
        CG2 + "test_every_resource_lands_in_its_v2_file"),
    row("linux.resources.cpu.cpus", CG1 + "test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files"),
    row("linux.resources.cpu.mems", CG1 + "test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files"),
    row("linux.resources.cpu.realtime*", CG1 + "test_cpu_burst_realtime_idle_and_cpuset_land_in_their_files",
        V2_REFUSED, refused=cgroup_v2, sample=res(cpu={"realtimeRuntime": 1000, "realtimePeriod": 1000000})),
    row("linux.resources.pids", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.pids.limit", CGROUPS + "test_limits_are_applied_and_visible_inside"),
    row("linux.resources.blockIO", CG1 + "test_blockio_throttles_land_in_their_files"),
    row("linux.resources.blockIO.weight", *WEIGHTS, refused=no_blkio_weight, sample=res(blockIO={"weight": 500})),
    row("linux.resources.blockIO.weightDevice", *WEIGHTS, refused=no_blkio_weight,
        sample=res(blockIO={"weightDevice": [{"major": 7, "minor": 0, "weight": 200}]})),
    row("linux.resources.blockIO.weightDevice[].{major,minor,weight}", *WEIGHTS, refused=no_blkio_weight,
        sample=res(blockIO={"weightDevice": [{"major": 7, "minor": 0, "weight": 200}]})),
    row("linux.resources.blockIO.leafWeight", CG1 + "test_blockio_weights", V2_REFUSED, refused=no_cfq_leaf_weight,
        sample=res(blockIO={"leafWeight": 300})),
    row("linux.resources.blockIO.weightDevice[].leafWeight", CG1 + "test_blockio_weights",
        "unit/test_cgroup_limits.py::test_v2_refuses_what_it_has_no_file_for", refused=no_cfq_leaf_weight,
        sample=res(blockIO={"weightDevice": [{"major": 7, "minor": 0, "leafWeight": 300}]})),
    row("linux.resources.blockIO.throttle*", CG1 + "test_blockio_throttles_land_in_their_files",
        CG2 + "test_every_resource_lands_in_its_v2_file"),
    row("linux.resources.blockIO.throttle*[].*", CG1 + "test_blockio_throttles_land_in_their_files",
        CG2 + "test_every_resource_lands_in_its_v2_file"),
    row("linux.resources.hugepageLimits", CGROUPS + "test_hugetlb_limit_lands_where_the_controller_is"),
    row("linux.resources.hugepageLimits[].*", CGROUPS + "test_hugetlb_limit_lands_where_the_controller_is"),
    row("linux.resources.network", CGROUPS + "test_resource_without_its_controller_is_an_error", V2_REFUSED,
        refused=no_net_cls, sample=res(network={"classID": 1048577})),
    row("linux.resources.network.classID", CGROUPS + "test_resource_without_its_controller_is_an_error", V2_REFUSED,
        refused=no_net_cls, sample=res(network={"classID": 1048577})),
    row("linux.resources.network.priorities", "unit/test_cgroup_limits.py::test_v2_refuses_what_it_has_no_file_for",
        refused=no_net_prio, sample=res(network={"priorities": [{"name": "eth0", "priority": 1}]})),
    row("linux.resources.network.priorities[].*", "unit/test_cgroup_limits.py::test_v2_refuses_what_it_has_no_file_for",
        refused=no_net_prio, sample=res(network={"priorities": [{"name": "eth0", "priority": 1}]})),
    row("linux.resources.rdma", CG2 + "test_rdma_limits_land_in_rdma_max_for_a_real_device",
        "unit/test_cgroup_limits.py::test_rdma_without_its_controller_is_named", refused=no_rdma,
        sample=res(rdma={"mlx5_0": {"hcaHandles": 1}})),
    row("linux.resources.rdma.*.*", CG2 + "test_rdma_limits_land_in_rdma_max_for_a_real_device", refused=no_rdma,
        sample=res(rdma={"mlx5_0": {"hcaHandles": 1, "hcaObjects": 2}})),
    row("linux.resources.unified", CG1 + "test_unified_keys_go_to_the_v2_hierarchy_of_a_hybrid_host",
        CG2 + "test_every_resource_lands_in_its_v2_file"),
    row("{windows,solaris,vm,zos,freebsd}", REFUSALS, refused=always, sample={"vm": {}}),
]


# --- the schema's properties -----------------------------------------------------------------------------------------

def schema_properties() -> list[str]:
    schema = json.loads((REPO / "specs" / "config.schema.json").read_text())
    defs, found = schema["definitions"], []

    def walk(node: dict, path: str) -> None:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                walk(sub, path)
        for name, sub in node.get("properties", {}).items():
            found.append(f"{path}.{name}" if path else name)
            walk(sub, found[-1])
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + "[]")
        for sub in [*node.get("patternProperties", {}).values(),
                    *([node["additionalProperties"]] if isinstance(node.get("additionalProperties"), dict) else [])]:
            walk(sub, path + ".*")

    walk(schema, "")
    return sorted(set(found))


def pattern(field: str) -> re.Pattern:
    """A row's field as a regex: "*" one name (or the schema's own "*"), "{a,b}" one of the names."""
    out = ""
    for part in re.split(r"(\*|\{[^}]*\}|\[\])", field):
        if part == "*":
            out += r"[^.\[\]]*"
        elif part.startswith("{"):
            out += "(" + "|".join(re.escape(p) for p in part[1:-1].split(",")) + ")"
        else:
            out += re.escape(part)
    return re.compile(out + "$")


PROPERTIES = schema_properties()


def rows_for(prop: str) -> list[Row]:
    return [r for r in TABLE if pattern(r.field).match(prop)]


def verdict(r: Row) -> str:
    if r.refused is always:
        return "refused everywhere"
    return "refused here" if r.refused and r.refused() else "applied"


def test_every_property_of_the_schema_has_exactly_one_row():
    assert len(PROPERTIES) > 200
    missing = [p for p in PROPERTIES if not rows_for(p)]
    doubled = {p: [r.field for r in rows_for(p)] for p in PROPERTIES if len(rows_for(p)) > 1}
    stale = [r.field for r in TABLE if not any(pattern(r.field).match(p) for p in PROPERTIES)]
    assert (missing, doubled, stale) == ([], {}, [])


@functools.cache
def module(file: str) -> tuple[str, frozenset[str]]:
    """A test module's text and the names of its functions ("" and none if there is no such file)."""
    path = TESTS / file
    if not path.exists():
        return "", frozenset()
    source = path.read_text()
    return source, frozenset(node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef))


def snake(key: str) -> str:
    """A config key as pyoci's records spell it (l3CacheSchema: l3_cache_schema)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def names(field: str) -> list[str]:
    """The field's last key, or keys ("{a,b}"), a wildcard's nearest named parent standing for it."""
    for segment in reversed(re.split(r"[.\[\]]+", field)):
        keys = [k for k in re.split(r"[{},*]", segment) if k]
        if keys:
            return keys
    return []


def test_the_tests_named_exist_and_name_their_field():
    """A row points at a test function that exists, in a module that names the field's last key (a row
    cannot point at a test about something else)."""
    wrong = []
    for r in TABLE:
        keys = names(r.field)
        for test in r.tests:
            file, _, name = test.partition("::")
            source, defined = module(file)
            if name not in defined:
                wrong.append(f"{r.field}: no test {test}")
            elif r.refused is not always and not any(k in source or snake(k) in source for k in keys):
                wrong.append(f"{r.field}: {file} never names {keys}")
    assert wrong == [], "\n".join(wrong)


def paths(value, prefix: str = ""):
    """Every path in a config fragment, as errors write them ("a.b[0].c")."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield f"{prefix}.{key}" if prefix else key
            yield from paths(sub, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield f"{prefix}[{i}]"
            yield from paths(sub, f"{prefix}[{i}]")


def ancestors(r: Row) -> list[str]:
    """The paths a refusal of r's sample may name: the sample's own path of the field, then its parents
    (down to two levels: never a bare section)."""
    own = max((p for p in paths(r.sample) if pattern(r.field).match(re.sub(r"\[\d+\]", "[]", p))), key=len)
    parts = re.split(r"(?=[.\[])", own)
    return ["".join(parts[:n]) for n in range(len(parts), min(2, len(parts)) - 1, -1)]


def merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


REFUSED_HERE = [r for r in TABLE if r.refused and r.refused()]


@pytest.mark.parametrize("r", REFUSED_HERE, ids=[r.field for r in REFUSED_HERE])
def test_what_this_host_refuses_is_refused_in_one_line_and_leaves_nothing(pyoci, bundle, r):
    assert r.sample, f"{r.field}: a refusal needs a sample config"
    cid = pyoci.new_id()
    proc = pyoci("create", "--bundle", str(bundle(["true"], lambda c: merge(c, json.loads(json.dumps(r.sample))))),
                 cid, check=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert any(re.search(re.escape(a) + r"[:.\[ ]", proc.stderr) for a in ancestors(r)), proc.stderr
    assert not (pyoci.root / cid).exists() and not cgroup_dirs(cid)


def test_features_say_exactly_what_is_applied():
    got = features()
    applied = {field: verdict(rows_for(field)[0]) == "applied" for field in (
        "linux.intelRdt", "process.apparmorProfile", "process.selinuxLabel", "linux.resources.rdma",
        "linux.netDevices", "linux.memoryPolicy")}
    linux = got["linux"]
    assert {"linux.intelRdt": linux["intelRdt"]["enabled"], "process.apparmorProfile": linux["apparmor"]["enabled"],
            "process.selinuxLabel": linux["selinux"]["enabled"], "linux.resources.rdma": linux["cgroup"]["rdma"],
            "linux.netDevices": linux["netDevices"]["enabled"],
            "linux.memoryPolicy": bool(linux["memoryPolicy"]["modes"])} == applied
    schema = json.loads((REPO / "specs" / "config.schema.json").read_text())["definitions"]
    if applied["linux.memoryPolicy"]:
        assert sorted(linux["memoryPolicy"]["modes"]) == sorted(schema["memoryPolicy"]["properties"]["mode"]["enum"])
        assert sorted(linux["memoryPolicy"]["flags"]) == sorted(
            schema["memoryPolicy"]["properties"]["flags"]["items"]["enum"])
    assert got["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    assert sorted(linux["namespaces"]) == sorted(schema["namespaceType"]["enum"])
    assert linux["intelRdt"]["schemata"] == linux["intelRdt"]["enabled"]


if __name__ == "__main__":  # the table as this host has it: PYTHONPATH=tests python3 tests/integration/THIS
    for prop in PROPERTIES:
        r = rows_for(prop)[0]
        print(f"{prop:58s} {verdict(r):19s} {' '.join(r.tests)}")
