"""The plan's order rules, checked on plans built from fixture configs (no root, no compiled extension):
what the executor does first and last, and where the user namespace, the mounts, the hooks, the death signal
and the seccomp filter go. Each rule names the attack or failure its order prevents."""
from __future__ import annotations

import copy

import pytest

from pyoci import plan, spec
from pyoci import steps as st
from pyoci.cgroups import Cgroup
from pyoci.defaults import default_config
from pyoci.linux.seccomp import FLAG_NEW_LISTENER

CLONE_NEWUSER = plan.CLONE_FLAGS["user"]
CGROUP = Cgroup({"memory": "/sys/fs/cgroup/memory/pyoci-c1", "": "/sys/fs/cgroup/unified/pyoci-c1"})
PROGRAM = ([0x7FFF000000000006], 0)  # a filter is only data here: one "return ALLOW" instruction
NOTIFY = ([0x7FFF000000000006], FLAG_NEW_LISTENER)


def _config(**edits) -> dict:
    raw = default_config()
    raw["process"]["terminal"] = False
    raw["root"]["path"] = "/"
    for key, value in edits.items():
        node, *path = key.split(".")
        target = raw
        for name in [node, *path][:-1]:
            target = target.setdefault(name, {})
        target[key.split(".")[-1]] = value
    return raw


def _rootless() -> dict:
    raw = copy.deepcopy(default_config(rootless=True))
    raw["process"]["terminal"] = False
    raw["root"]["path"] = "/"
    return raw


HOOK = {"path": "/bin/true"}
FIXTURES = {
    "pyoci spec": (_config(), {}),
    "rootless": (_rootless(), {"rootless": True, "setgroups": False}),
    "hooks": (_config(hooks={kind: [HOOK] for kind in spec.HOOK_KINDS}), {}),
    "seccomp, no_new_privs": (_config(), {"seccomp": PROGRAM}),
    "seccomp, privileged": (_config(**{"process.noNewPrivileges": False}), {"seccomp": PROGRAM}),
    "seccomp notify": (_config(), {"seccomp": NOTIFY}),
    "joined namespaces": (_config(**{"linux.namespaces": [{"type": "user", "path": "/proc/1/ns/user"},
                                                          {"type": "network", "path": "/proc/1/ns/net"},
                                                          {"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
                                     "linux.uidMappings": [], "linux.gidMappings": []}),
                          {"ns_fds": {"user": 7, "network": 8}}),
    "no mount namespace": (_config(**{"linux.namespaces": [{"type": "pid"}, {"type": "uts"}]}), {}),
    "console and preserved fds": (_config(**{"process.terminal": True}), {"console_fd": 9, "keep_fds": 2}),
    "scheduling": (_config(**{"process.scheduler": {"policy": "SCHED_BATCH", "nice": 2},
                              "process.ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4},
                              "process.execCPUAffinity": {"final": "1"},
                              "process.noNewPrivileges": False,
                              "linux.memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0"}}),
                   {"seccomp": PROGRAM}),
}


@pytest.fixture(autouse=True)
def one_numa_node(monkeypatch):
    """Plans do not depend on this host's NUMA nodes (the memory policy's check reads them)."""
    monkeypatch.setattr(plan.sched, "host_nodes", lambda: [0])


def build(name: str) -> list[st.Step]:
    raw, options = FIXTURES[name]
    cfg = spec.parse(copy.deepcopy(raw))
    opts = plan.Options(rootfs="/", bundle="/", start_fd=5, **options)
    return plan.build(cfg, opts, CGROUP).steps


def build_exec(name: str) -> list[st.Step]:
    raw, options = FIXTURES[name]
    cfg = spec.parse(copy.deepcopy(raw))
    namespaces = [spec.Namespace(ns.type, ns.path or f"/proc/42/ns/{ns.type}") for ns in cfg.namespaces]
    fds = {ns.type: 10 + i for i, ns in enumerate(namespaces)}
    opts = plan.Options(rootfs="/", bundle="/", **{**options, "ns_fds": fds})
    return plan.build_exec(namespaces, cfg.process, opts, CGROUP).steps


def index(steps: list[st.Step], kind: type, pred=lambda s: True, last: bool = False) -> int:
    found = [i for i, s in enumerate(steps) if isinstance(s, kind) and pred(s)]
    assert found, f"no {kind.__name__} step"
    return found[-1] if last else found[0]


def is_user_ns(s: st.Step) -> bool:
    return (isinstance(s, st.Unshare) and s.flags == CLONE_NEWUSER) or (isinstance(s, st.Setns) and s.nstype == CLONE_NEWUSER)


def namespace_steps(steps: list[st.Step]) -> list[int]:
    return [i for i, s in enumerate(steps) if isinstance(s, (st.Unshare, st.Setns))]


PLANS = [(name, build) for name in FIXTURES] + [(name, build_exec) for name in FIXTURES if name != "no mount namespace"]
IDS = [f"{builder.__name__}: {name}" for name, builder in PLANS]


@pytest.fixture(params=PLANS, ids=IDS)
def steps(request) -> list[st.Step]:
    name, builder = request.param
    return builder(name)


def test_first_every_fd_of_the_runtime_is_closed(steps):
    """A parked init must hold nothing of the runtime's (its lock, its caller's fds): the very first step."""
    assert isinstance(steps[0], st.CloseFds)
    used = st.fds_used(steps[1:])
    assert used <= set(steps[0].keep)


def test_cgroups_are_joined_before_any_namespace(steps):
    """Before a user namespace takes the right to write them, before a cgroup namespace hides them."""
    joins = [i for i, s in enumerate(steps) if isinstance(s, st.JoinCgroup)]
    assert joins == list(range(1, 1 + len(CGROUP.paths)))
    assert all(i > joins[-1] for i in namespace_steps(steps))


def test_the_user_namespace_comes_before_the_others(steps):
    """It owns the namespaces made after it; joined ones must be entered with its rights."""
    user = [i for i, s in enumerate(steps) if is_user_ns(s)]
    others = [i for i in namespace_steps(steps) if i not in user]
    assert len(user) <= 1
    if user:
        assert all(i > user[0] for i in others)


def test_the_init_is_forked_once_the_namespaces_exist(steps):
    fork = index(steps, st.Fork)
    assert all(i < fork for i in namespace_steps(steps))
    assert isinstance(steps[fork + 1], st.Setsid) and steps[fork].death_signal == 9


def test_the_death_signal_is_cleared_before_ready(steps):
    """Once told READY the runtime may exit at once: an init still tied to it would die with it."""
    assert index(steps, st.Pdeathsig, lambda s: s.signal == 0) < index(steps, st.Sync, lambda s: s.message == st.READY)


def test_exec_is_last_and_its_program_is_found_before_ready(steps):
    assert isinstance(steps[-1], st.Exec)
    assert index(steps, st.FindExec) < index(steps, st.Sync, lambda s: s.message == st.READY)


SECCOMP_FIXTURES = [name for name, (_, options) in FIXTURES.items() if "seccomp" in options]


@pytest.mark.parametrize("builder", [build, build_exec])
@pytest.mark.parametrize("name", SECCOMP_FIXTURES)
def test_seccomp_placement(name, builder):
    """With no_new_privs the filter goes last before execve (none of our steps runs under it); a notify filter
    last before READY (the runtime still listens); without no_new_privs before the user switch, while the
    executor still has CAP_SYS_ADMIN."""
    steps = builder(name)
    filters = [i for i, s in enumerate(steps) if isinstance(s, st.Seccomp)]
    assert len(filters) == 1
    at, nnp = filters[0], any(isinstance(s, st.NoNewPrivs) for s in steps)
    ready = index(steps, st.Sync, lambda s: s.message == st.READY)
    if steps[at].flags & FLAG_NEW_LISTENER:
        assert at == ready - 1
    elif nnp:
        assert at == len(steps) - 2
    else:
        assert at < index(steps, st.User, lambda s: s.what == "process.user")


def test_the_working_directory_is_entered_as_root_then_as_the_user(steps):
    """runc's order: a cwd the user cannot reach but root can still works; one only the user can enter is
    tried again after the switch."""
    user = index(steps, st.User, lambda s: s.what == "process.user")
    assert index(steps, st.Chdir, lambda s: s.attempt == 1) < user < index(steps, st.Chdir, lambda s: s.attempt == 2)


def test_fds_are_marked_close_on_exec_before_a_filter_can_forbid_it(steps):
    close = index(steps, st.CloseFrom)
    assert all(close < i for i, s in enumerate(steps) if isinstance(s, st.Seccomp))


@pytest.mark.parametrize("name", list(FIXTURES))
def test_the_rootfs_is_set_up_before_the_pivot_and_locked_down_after(name):
    """Mounts resolve inside the rootfs before pivot_root; masks and read-only paths after it (a mask made
    before would be undone or escape through the old root)."""
    steps = build(name)
    pivot = index(steps, st.Pivot)
    root = index(steps, st.SetRoot)
    mounts = [i for i, s in enumerate(steps) if isinstance(s, (st.Mount, st.Mknod))
              and s.what not in ("root.path", "rootfs parent mount")]
    assert root < min(mounts) and max(mounts) < pivot
    locks = [i for i, s in enumerate(steps) if isinstance(s, (st.Mask, st.Readonly))]
    assert locks and min(locks) > pivot
    assert index(steps, st.Sync, lambda s: s.message == st.MOUNTED) < pivot


@pytest.mark.parametrize("name", list(FIXTURES))
def test_the_rootfs_mount_is_made_private_before_its_bind(name):
    """A shared rootfs mount would make the bind its peer: pivot_root refuses it and our mounts leak to the
    host. None of this in the runtime's own mount namespace."""
    steps = build(name)
    bind = index(steps, st.Mount, lambda s: s.what == "root.path")
    parent = [i for i, s in enumerate(steps) if isinstance(s, st.Mount) and s.what == "rootfs parent mount"]
    if name == "no mount namespace":
        assert not parent and not any(isinstance(s, st.SetRootPropagation) for s in steps)
        assert steps[index(steps, st.Pivot)].how == st.CHROOT
    else:
        assert parent and parent[0] < bind and steps[parent[0]].where == st.HOST_PATH


def test_hooks_run_where_the_spec_puts_them():
    steps = build("hooks")
    hooks = [(i, s.what.split("[")[0]) for i, s in enumerate(steps) if isinstance(s, st.Hook)]
    assert [kind for _, kind in hooks] == ["hooks.createContainer", "hooks.startContainer"]
    (create, _), (start, _) = hooks
    assert index(steps, st.Sync, lambda s: s.message == st.MOUNTED) < create < index(steps, st.Pivot)
    assert index(steps, st.WaitStart) < start < len(steps) - 1
    assert steps[create].state == st.CREATED_STATE and steps[start].state == st.RUNNING_STATE


def test_create_parks_after_ready_until_start():
    steps = build("pyoci spec")
    ready = index(steps, st.Sync, lambda s: s.message == st.READY)
    assert isinstance(steps[ready + 1], st.WaitStart) and steps[ready + 1].listen_fd == 5
    assert 5 in steps[0].keep


def test_exec_has_no_wait_and_no_mounts():
    steps = build_exec("pyoci spec")
    assert not any(isinstance(s, (st.WaitStart, st.Mount, st.Pivot, st.Hook)) for s in steps)


def test_preserved_fds_and_the_console_stay_open():
    steps = build("console and preserved fds")
    assert {3, 4, 5, 9} <= set(steps[0].keep)
    assert index(steps, st.CloseFrom) < index(steps, st.Console)
    assert steps[index(steps, st.CloseFrom)].first == 5


def test_rootless_maps_its_user_namespace_then_keeps_its_groups():
    steps = build("rootless")
    unshare = index(steps, st.Unshare, is_user_ns)
    assert isinstance(steps[unshare + 1], st.Dumpable) and steps[unshare + 1].value == 1
    assert isinstance(steps[unshare + 2], st.Sync) and steps[unshare + 2].message == st.USERNS
    assert steps[unshare + 3].value == 0
    user = steps[index(steps, st.User, lambda s: s.what == "process.user")]
    assert user.setgroups is False


def test_ambient_capabilities_the_kernel_would_refuse_are_dropped_with_a_warning():
    raw = _config()
    raw["process"]["capabilities"]["ambient"] = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
    raw["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    result = plan.build(spec.parse(raw), plan.Options(rootfs="/", bundle="/", start_fd=5), CGROUP)
    caps = next(s for s in result.steps if isinstance(s, st.Caps))
    assert caps.ambient == 1 << 5  # CAP_KILL only
    assert result.warnings == ["process.capabilities.ambient: CAP_CHOWN, CAP_NET_BIND_SERVICE not in both the "
                               "inheritable and permitted sets: not raised"]  # one line, however many


def test_a_read_only_dev_is_made_read_only_after_what_goes_below_it():
    """runc's order: mounting /dev read-only at once would leave no way to make /dev/pts and the device nodes
    there (EROFS); it is remounted read-only, keeping its other flags, after the pivot."""
    raw = _config()
    raw["mounts"][1]["options"].append("ro")
    steps = plan.build(spec.parse(raw), plan.Options(rootfs="/", bundle="/", start_fd=5), CGROUP).steps
    dev = [i for i, s in enumerate(steps) if isinstance(s, st.Mount) and s.target == "/dev"]
    assert len(dev) == 2 and not steps[dev[0]].flags & plan.MS_RDONLY
    below = [i for i, s in enumerate(steps) if (s.target if isinstance(s, st.Mount) else
                                                 s.path if isinstance(s, (st.Mknod, st.Symlink)) else "").startswith("/dev/")]
    assert max(below) < index(steps, st.Pivot) < dev[1]
    assert steps[dev[1]].flags == plan.MS_REMOUNT | plan.MS_BIND | plan.MS_RDONLY | plan.MS_NOSUID | (1 << 24)


def test_additional_groups_where_setgroups_is_denied_are_refused_when_planning():
    raw = _rootless()
    raw["process"]["user"]["additionalGids"] = [5]
    with pytest.raises(spec.ConfigError, match="process.user.additionalGids: cannot be set"):
        plan.build(spec.parse(raw), plan.Options(rootfs="/", bundle="/", start_fd=5, rootless=True, setgroups=False),
                   CGROUP)


SCHEDULING = (st.CpuAffinity, st.MemoryPolicy, st.IoPriority, st.Scheduler)


def test_scheduling_is_set_while_privileged_and_before_any_filter(steps):
    """The realtime scheduler and I/O class need CAP_SYS_NICE/CAP_SYS_ADMIN (gone after the user switch); a
    seccomp filter could refuse the calls; a deadline task may not change its affinity afterwards."""
    found = [i for i, s in enumerate(steps) if isinstance(s, SCHEDULING) and s.what.startswith(("process.", "linux."))]
    if not found:
        return
    assert [type(steps[i]) for i in found] == [t for t in SCHEDULING if any(isinstance(steps[i], t) for i in found)]
    assert max(found) < index(steps, st.User, lambda s: s.what == "process.user")
    assert all(max(found) < i for i, s in enumerate(steps) if isinstance(s, st.Seccomp))
    assert min(found) > index(steps, st.Fork)


def test_the_init_drops_the_runtimes_affinity_and_takes_no_exec_affinity():
    steps = build("scheduling")
    joins = [i for i, s in enumerate(steps) if isinstance(s, st.JoinCgroup)]
    reset = index(steps, st.CpuAffinity)
    assert reset == joins[-1] + 1 and steps[reset].mask == []
    assert [s for s in steps if isinstance(s, st.CpuAffinity)] == [steps[reset]]
    assert st.birth_cgroup(steps) == CGROUP.v2_path


def test_exec_affinity_initial_before_the_cgroup_join_and_final_after():
    raw, options = FIXTURES["scheduling"]
    cfg = spec.parse(copy.deepcopy(raw))
    cfg.process.exec_cpu_affinity = spec.CPUAffinity(initial=[0], final=[1, 64])
    steps = plan.build_exec([], cfg.process, plan.Options(rootfs="/", bundle="/", **options), CGROUP).steps
    assert isinstance(steps[1], st.CpuAffinity) and steps[1].mask == [1]
    assert isinstance(steps[2], st.JoinCgroup)
    final = [s for s in steps if isinstance(s, st.CpuAffinity)][1:]
    assert [s.mask for s in final] == [[2, 1]] and final[0].what == "process.execCPUAffinity.final"
    assert st.birth_cgroup(steps) is None  # born outside: the join is the transition the spec speaks of


def test_exec_without_affinity_resets_after_the_join():
    steps = build_exec("pyoci spec")
    assert [s.mask for s in steps if isinstance(s, st.CpuAffinity)] == [[]]


def test_a_deadline_process_with_start_container_hooks_needs_reset_on_fork():
    raw = _config(**{"process.scheduler": {"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 5000}},
                  hooks={"startContainer": [HOOK]})
    opts = plan.Options(rootfs="/", bundle="/", start_fd=5)
    with pytest.raises(spec.ConfigError, match="process.scheduler: a SCHED_DEADLINE process cannot fork"):
        plan.build(spec.parse(copy.deepcopy(raw)), opts, CGROUP)
    raw["process"]["scheduler"]["flags"] = ["SCHED_FLAG_RESET_ON_FORK"]
    assert plan.build(spec.parse(raw), opts, CGROUP)


def test_memory_policy_nodes_are_checked_against_the_host(monkeypatch):
    raw = _config(**{"linux.memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1,5"}})
    opts = plan.Options(rootfs="/", bundle="/", start_fd=5)
    monkeypatch.setattr(plan.sched, "host_nodes", lambda: [0, 1])
    with pytest.raises(spec.ConfigError, match=r"linux.memoryPolicy.nodes: node 5 not on this host \(it has 0-1\)"):
        plan.build(spec.parse(copy.deepcopy(raw)), opts, CGROUP)
    raw["linux"]["memoryPolicy"]["flags"] = ["MPOL_F_RELATIVE_NODES"]  # folded onto the allowed nodes: fine
    mp = next(s for s in plan.build(spec.parse(raw), opts, CGROUP).steps if isinstance(s, st.MemoryPolicy))
    assert (mp.mode, mp.nodes) == (2 | 1 << 14, [0b100011])
    monkeypatch.setattr(plan.sched, "host_nodes", lambda: [])
    with pytest.raises(spec.ConfigError, match="linux.memoryPolicy: this kernel has no NUMA memory policies"):
        plan.build(spec.parse(raw), opts, CGROUP)


GOLDEN_DEFAULT = [
    "CloseFds", "JoinCgroup", "JoinCgroup", "CpuAffinity", "Unshare", "Fork", "Setsid", "SetRootPropagation", "Mount",
    "Mount", "SetRoot", "Mount", "Mount", "Mount", "Mount", "Mount", "Mount", "Mount", "Mount", "Mount", "Mount",
    "Mknod", "Mknod", "Mknod", "Mknod", "Mknod", "Mknod", "Symlink", "Symlink", "Symlink", "Symlink", "Symlink", "Sync",
    "Pivot", "Mask", "Mask", "Mask", "Mask", "Mask", "Mask", "Mask", "Mask", "Mask", "Mask", "Readonly", "Readonly",
    "Readonly", "Readonly", "Readonly", "Readonly", "Keyring", "Hostname", "CloseFrom", "Rlimit", "DropBounding",
    "ChownStdio", "Chdir", "User", "Caps", "NoNewPrivs", "Umask", "Chdir", "FindExec", "Pdeathsig", "Sync",
    "WaitStart", "Exec",
]


def test_the_default_configs_plan_step_by_step():
    """The whole plan of `pyoci spec`'s config: any change to it shows here first."""
    raw, options = FIXTURES["pyoci spec"]
    cfg = spec.parse(copy.deepcopy(raw))
    steps = plan.build(cfg, plan.Options(rootfs="/", bundle="/", start_fd=5, keyring="_ses.c1"), CGROUP).steps
    assert [type(s).__name__ for s in steps] == GOLDEN_DEFAULT


def test_resctrl_groups_are_joined_with_the_cgroups():
    raw, _ = FIXTURES["pyoci spec"]
    tasks = ["/sys/fs/resctrl/c1/tasks", "/sys/fs/resctrl/c1/mon_groups/c1/tasks"]
    for steps in (plan.build(spec.parse(copy.deepcopy(raw)), plan.Options(rootfs="/", bundle="/", start_fd=5,
                                                                           resctrl_tasks=tasks), CGROUP).steps,
                  plan.build_exec([], spec.parse(copy.deepcopy(raw)).process,
                                  plan.Options(rootfs="/", bundle="/", resctrl_tasks=tasks), CGROUP).steps):
        writes = [i for i, s in enumerate(steps) if isinstance(s, st.WriteFile) and s.what == "linux.intelRdt"]
        assert [(steps[i].path, steps[i].data) for i in writes] == [(t, "0") for t in tasks]
        assert writes[0] > index(steps, st.JoinCgroup, last=True) and writes[-1] < index(steps, st.Fork)
