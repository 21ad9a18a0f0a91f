"""The config validator generated at build time (pyoci._config_validator) holds to jsonschema's verdicts.

setup.py compiles specs/config.schema.json to plain Python with fastjsonschema so that `create` never pays
for `import jsonschema`; jsonschema's Draft7Validator on the same schema is the reference.  Every sample
below must get the same verdict from both, and the verdict the sample is labelled with.  The state and
features schemas have no generated validator; their samples check the schemas themselves.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from pyoci import _config_validator
from pyoci.defaults import default_config
from pyoci.features import features

SPECS = Path(__file__).resolve().parents[2] / "specs"
SCHEMA_NAMES = ("config", "state", "features")


def load_schema(name: str) -> dict:
    return json.loads((SPECS / f"{name}.schema.json").read_text())


# `runc spec`
RUNC_SPEC = {'ociVersion': '1.0.2-dev',
             'process': {'terminal': True,
                         'user': {'uid': 0, 'gid': 0},
                         'args': ['sh'],
                         'env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
                         'cwd': '/',
                         'capabilities': {'bounding': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
                                          'effective': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
                                          'permitted': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
                                          'ambient': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']},
                         'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024}],
                         'noNewPrivileges': True},
             'root': {'path': 'rootfs', 'readonly': True},
             'hostname': 'runc',
             'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},
                        {'destination': '/dev',
                         'type': 'tmpfs',
                         'source': 'tmpfs',
                         'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
                        {'destination': '/dev/pts',
                         'type': 'devpts',
                         'source': 'devpts',
                         'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},
                        {'destination': '/dev/shm',
                         'type': 'tmpfs',
                         'source': 'shm',
                         'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
                        {'destination': '/dev/mqueue',
                         'type': 'mqueue',
                         'source': 'mqueue',
                         'options': ['nosuid', 'noexec', 'nodev']},
                        {'destination': '/sys',
                         'type': 'sysfs',
                         'source': 'sysfs',
                         'options': ['nosuid', 'noexec', 'nodev', 'ro']},
                        {'destination': '/sys/fs/cgroup',
                         'type': 'cgroup',
                         'source': 'cgroup',
                         'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']}],
             'linux': {'resources': {'devices': [{'allow': False, 'access': 'rwm'}]},
                       'namespaces': [{'type': 'pid'}, {'type': 'network'}, {'type': 'ipc'}, {'type': 'uts'},
                                      {'type': 'mount'}],
                       'maskedPaths': ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys',
                                       '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
                                       '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
                       'readonlyPaths': ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']}}

# `runc spec --rootless` (run as root, hence hostID 0)
RUNC_SPEC_ROOTLESS = {'ociVersion': '1.0.2-dev',
                      'process': {'terminal': True,
                                  'user': {'uid': 0, 'gid': 0},
                                  'args': ['sh'],
                                  'env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                                          'TERM=xterm'],
                                  'cwd': '/',
                                  'capabilities': {'bounding': ['CAP_AUDIT_WRITE', 'CAP_KILL',
                                                                'CAP_NET_BIND_SERVICE'],
                                                   'effective': ['CAP_AUDIT_WRITE', 'CAP_KILL',
                                                                 'CAP_NET_BIND_SERVICE'],
                                                   'permitted': ['CAP_AUDIT_WRITE', 'CAP_KILL',
                                                                 'CAP_NET_BIND_SERVICE'],
                                                   'ambient': ['CAP_AUDIT_WRITE', 'CAP_KILL',
                                                               'CAP_NET_BIND_SERVICE']},
                                  'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024}],
                                  'noNewPrivileges': True},
                      'root': {'path': 'rootfs', 'readonly': True},
                      'hostname': 'runc',
                      'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},
                                 {'destination': '/dev',
                                  'type': 'tmpfs',
                                  'source': 'tmpfs',
                                  'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
                                 {'destination': '/dev/pts',
                                  'type': 'devpts',
                                  'source': 'devpts',
                                  'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620']},
                                 {'destination': '/dev/shm',
                                  'type': 'tmpfs',
                                  'source': 'shm',
                                  'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
                                 {'destination': '/dev/mqueue',
                                  'type': 'mqueue',
                                  'source': 'mqueue',
                                  'options': ['nosuid', 'noexec', 'nodev']},
                                 {'destination': '/sys',
                                  'type': 'none',
                                  'source': '/sys',
                                  'options': ['rbind', 'nosuid', 'noexec', 'nodev', 'ro']},
                                 {'destination': '/sys/fs/cgroup',
                                  'type': 'cgroup',
                                  'source': 'cgroup',
                                  'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']}],
                      'linux': {'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}],
                                'gidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}],
                                'namespaces': [{'type': 'pid'}, {'type': 'ipc'}, {'type': 'uts'}, {'type': 'mount'},
                                               {'type': 'user'}],
                                'maskedPaths': ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys',
                                                '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
                                                '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
                                'readonlyPaths': ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys',
                                                  '/proc/sysrq-trigger']}}

# the example in runtime-spec config.md
CONFIG_MD_EXAMPLE = {'ociVersion': '1.0.1',
                     'process': {'terminal': True,
                                 'user': {'uid': 1, 'gid': 1, 'additionalGids': [5, 6]},
                                 'args': ['sh'],
                                 'env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                                         'TERM=xterm'],
                                 'cwd': '/',
                                 'capabilities': {'bounding': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
                                                  'permitted': ['CAP_AUDIT_WRITE', 'CAP_KILL',
                                                                'CAP_NET_BIND_SERVICE'],
                                                  'inheritable': ['CAP_AUDIT_WRITE', 'CAP_KILL',
                                                                  'CAP_NET_BIND_SERVICE'],
                                                  'effective': ['CAP_AUDIT_WRITE', 'CAP_KILL'],
                                                  'ambient': ['CAP_NET_BIND_SERVICE']},
                                 'rlimits': [{'type': 'RLIMIT_CORE', 'hard': 1024, 'soft': 1024},
                                             {'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024}],
                                 'apparmorProfile': 'acme_secure_profile',
                                 'oomScoreAdj': 100,
                                 'selinuxLabel': 'system_u:system_r:svirt_lxc_net_t:s0:c124,c675',
                                 'ioPriority': {'class': 'IOPRIO_CLASS_IDLE', 'priority': 4},
                                 'noNewPrivileges': True},
                     'root': {'path': 'rootfs', 'readonly': True},
                     'hostname': 'slartibartfast',
                     'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},
                                {'destination': '/dev',
                                 'type': 'tmpfs',
                                 'source': 'tmpfs',
                                 'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
                                {'destination': '/dev/pts',
                                 'type': 'devpts',
                                 'source': 'devpts',
                                 'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620',
                                             'gid=5']},
                                {'destination': '/dev/shm',
                                 'type': 'tmpfs',
                                 'source': 'shm',
                                 'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
                                {'destination': '/dev/mqueue',
                                 'type': 'mqueue',
                                 'source': 'mqueue',
                                 'options': ['nosuid', 'noexec', 'nodev']},
                                {'destination': '/sys',
                                 'type': 'sysfs',
                                 'source': 'sysfs',
                                 'options': ['nosuid', 'noexec', 'nodev']},
                                {'destination': '/sys/fs/cgroup',
                                 'type': 'cgroup',
                                 'source': 'cgroup',
                                 'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']}],
                     'hooks': {'prestart': [{'path': '/usr/bin/fix-mounts',
                                             'args': ['fix-mounts', 'arg1', 'arg2'],
                                             'env': ['key1=value1']},
                                            {'path': '/usr/bin/setup-network'}],
                               'poststart': [{'path': '/usr/bin/notify-start', 'timeout': 5}],
                               'poststop': [{'path': '/usr/sbin/cleanup.sh', 'args': ['cleanup.sh', '-f']}]},
                     'linux': {'devices': [{'path': '/dev/fuse',
                                            'type': 'c',
                                            'major': 10,
                                            'minor': 229,
                                            'fileMode': 438,
                                            'uid': 0,
                                            'gid': 0},
                                           {'path': '/dev/sda',
                                            'type': 'b',
                                            'major': 8,
                                            'minor': 0,
                                            'fileMode': 432,
                                            'uid': 0,
                                            'gid': 0}],
                               'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 32000}],
                               'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 32000}],
                               'sysctl': {'net.ipv4.ip_forward': '1', 'net.core.somaxconn': '256'},
                               'cgroupsPath': '/myRuntime/myContainer',
                               'resources': {'network': {'classID': 1048577,
                                                         'priorities': [{'name': 'eth0', 'priority': 500},
                                                                        {'name': 'eth1', 'priority': 1000}]},
                                             'pids': {'limit': 32771},
                                             'hugepageLimits': [{'pageSize': '2MB', 'limit': 9223372036854772000},
                                                                {'pageSize': '64KB', 'limit': 1000000}],
                                             'memory': {'limit': 536870912,
                                                        'reservation': 536870912,
                                                        'swap': 536870912,
                                                        'kernel': -1,
                                                        'kernelTCP': -1,
                                                        'swappiness': 0,
                                                        'disableOOMKiller': False},
                                             'cpu': {'shares': 1024,
                                                     'quota': 1000000,
                                                     'period': 500000,
                                                     'realtimeRuntime': 950000,
                                                     'realtimePeriod': 1000000,
                                                     'cpus': '2-3',
                                                     'idle': 1,
                                                     'mems': '0-7'},
                                             'devices': [{'allow': False, 'access': 'rwm'},
                                                         {'allow': True,
                                                          'type': 'c',
                                                          'major': 10,
                                                          'minor': 229,
                                                          'access': 'rw'},
                                                         {'allow': True,
                                                          'type': 'b',
                                                          'major': 8,
                                                          'minor': 0,
                                                          'access': 'r'}],
                                             'blockIO': {'weight': 10,
                                                         'leafWeight': 10,
                                                         'weightDevice': [{'major': 8,
                                                                           'minor': 0,
                                                                           'weight': 500,
                                                                           'leafWeight': 300},
                                                                          {'major': 8, 'minor': 16, 'weight': 500}],
                                                         'throttleReadBpsDevice': [{'major': 8,
                                                                                    'minor': 0,
                                                                                    'rate': 600}],
                                                         'throttleWriteIOPSDevice': [{'major': 8,
                                                                                      'minor': 16,
                                                                                      'rate': 300}]}},
                               'rootfsPropagation': 'slave',
                               'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW',
                                           'architectures': ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
                                           'syscalls': [{'names': ['getcwd', 'chmod'], 'action': 'SCMP_ACT_ERRNO'}]},
                               'timeOffsets': {'monotonic': {'secs': 172800, 'nanosecs': 0},
                                               'boottime': {'secs': 604800, 'nanosecs': 0}},
                               'namespaces': [{'type': 'pid'}, {'type': 'network'}, {'type': 'ipc'}, {'type': 'uts'},
                                              {'type': 'mount'}, {'type': 'user'}, {'type': 'cgroup'},
                                              {'type': 'time'}],
                               'maskedPaths': ['/proc/kcore', '/proc/latency_stats', '/proc/timer_stats',
                                               '/proc/sched_debug'],
                               'readonlyPaths': ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys',
                                                 '/proc/sysrq-trigger'],
                               'mountLabel': 'system_u:object_r:svirt_sandbox_file_t:s0:c715,c811'},
                     'annotations': {'com.example.key1': 'value1', 'com.example.key2': 'value2'}}

# `runc features`
RUNC_FEATURES = {'ociVersionMin': '1.0.0',
                 'ociVersionMax': '1.0.2-dev',
                 'hooks': ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
                 'mountOptions': ['acl', 'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec',
                                  'iversion', 'lazytime', 'loud', 'mand', 'noacl', 'noatime', 'nodev', 'nodiratime',
                                  'noexec', 'noiversion', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime',
                                  'nosuid', 'nosymfollow', 'private', 'ratime', 'rbind', 'rdev', 'rdiratime',
                                  'relatime', 'remount', 'rexec', 'rnoatime', 'rnodev', 'rnodiratime', 'rnoexec',
                                  'rnorelatime', 'rnostrictatime', 'rnosuid', 'rnosymfollow', 'ro', 'rprivate',
                                  'rrelatime', 'rro', 'rrw', 'rshared', 'rslave', 'rstrictatime', 'rsuid',
                                  'rsymfollow', 'runbindable', 'rw', 'shared', 'silent', 'slave', 'strictatime',
                                  'suid', 'symfollow', 'sync', 'tmpcopyup', 'unbindable'],
                 'linux': {'namespaces': ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
                           'capabilities': ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER',
                                            'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
                                            'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST',
                                            'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
                                            'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
                                            'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
                                            'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
                                            'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
                                            'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
                                            'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
                                            'CAP_CHECKPOINT_RESTORE'],
                           'cgroup': {'v1': True, 'v2': True, 'systemd': True, 'systemdUser': True},
                           'seccomp': {'enabled': True,
                                       'actions': ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL',
                                                   'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_LOG',
                                                   'SCMP_ACT_NOTIFY', 'SCMP_ACT_TRACE', 'SCMP_ACT_TRAP'],
                                       'operators': ['SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_LE',
                                                     'SCMP_CMP_LT', 'SCMP_CMP_MASKED_EQ', 'SCMP_CMP_NE'],
                                       'archs': ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM', 'SCMP_ARCH_MIPS',
                                                 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL',
                                                 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC',
                                                 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390',
                                                 'SCMP_ARCH_S390X', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86',
                                                 'SCMP_ARCH_X86_64']},
                           'apparmor': {'enabled': True},
                           'selinux': {'enabled': True}},
                 'annotations': {'io.github.seccomp.libseccomp.version': '2.5.4',
                                 'org.opencontainers.runc.checkpoint.enabled': 'true',
                                 'org.opencontainers.runc.commit': '1.1.5+ds1-1+deb12u1',
                                 'org.opencontainers.runc.version': '1.1.5+ds1'}}

# the example in runtime-spec features.md
FEATURES_MD_EXAMPLE = {'ociVersionMin': '1.0.0',
                       'ociVersionMax': '1.1.0-rc.2',
                       'hooks': ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart',
                                 'poststop'],
                       'mountOptions': ['async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec',
                                        'iversion', 'lazytime', 'loud', 'mand', 'noatime', 'nodev', 'nodiratime',
                                        'noexec', 'noiversion', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime',
                                        'nosuid', 'nosymfollow', 'private', 'ratime', 'rbind', 'rdev', 'rdiratime',
                                        'relatime', 'remount', 'rexec', 'rnoatime', 'rnodev', 'rnodiratime',
                                        'rnoexec', 'rnorelatime', 'rnostrictatime', 'rnosuid', 'rnosymfollow', 'ro',
                                        'rprivate', 'rrelatime', 'rro', 'rrw', 'rshared', 'rslave', 'rstrictatime',
                                        'rsuid', 'rsymfollow', 'runbindable', 'rw', 'shared', 'silent', 'slave',
                                        'strictatime', 'suid', 'symfollow', 'sync', 'tmpcopyup', 'unbindable'],
                       'linux': {'namespaces': ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
                                 'capabilities': ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH',
                                                  'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
                                                  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
                                                  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
                                                  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO',
                                                  'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
                                                  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE',
                                                  'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
                                                  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
                                                  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
                                                  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
                                                  'CAP_CHECKPOINT_RESTORE'],
                                 'cgroup': {'v1': True,
                                            'v2': True,
                                            'systemd': True,
                                            'systemdUser': True,
                                            'rdma': True},
                                 'seccomp': {'enabled': True,
                                             'actions': ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL',
                                                         'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD',
                                                         'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY', 'SCMP_ACT_TRACE',
                                                         'SCMP_ACT_TRAP'],
                                             'operators': ['SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_LE',
                                                           'SCMP_CMP_LT', 'SCMP_CMP_MASKED_EQ', 'SCMP_CMP_NE'],
                                             'archs': ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM', 'SCMP_ARCH_MIPS',
                                                       'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL',
                                                       'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC',
                                                       'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_RISCV64',
                                                       'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_X32',
                                                       'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64'],
                                             'knownFlags': ['SECCOMP_FILTER_FLAG_TSYNC',
                                                            'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
                                                            'SECCOMP_FILTER_FLAG_LOG'],
                                             'supportedFlags': ['SECCOMP_FILTER_FLAG_TSYNC',
                                                                'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
                                                                'SECCOMP_FILTER_FLAG_LOG']},
                                 'apparmor': {'enabled': True},
                                 'selinux': {'enabled': True},
                                 'memoryPolicy': {'modes': ['MPOL_DEFAULT', 'MPOL_BIND', 'MPOL_INTERLEAVE',
                                                            'MPOL_WEIGHTED_INTERLEAVE', 'MPOL_PREFERRED',
                                                            'MPOL_PREFERRED_MANY', 'MPOL_LOCAL'],
                                                  'flags': ['MPOL_F_NUMA_BALANCING', 'MPOL_F_RELATIVE_NODES',
                                                            'MPOL_F_STATIC_NODES']},
                                 'intelRdt': {'enabled': True, 'schemata': True, 'monitoring': True}},
                       'annotations': {'io.github.seccomp.libseccomp.version': '2.5.4',
                                       'org.opencontainers.runc.checkpoint.enabled': 'true',
                                       'org.opencontainers.runc.commit': 'v1.1.0-534-g26851168',
                                       'org.opencontainers.runc.version': '1.1.0+dev'}}


# Every field the schema knows, at its edges (uint64 max, int64 min/max, SCHED_DEADLINE, idmapped mounts ...).
FULL = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs", "readonly": True},
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "none", "source": "/vol", "options": ["rbind", "rw", "idmap"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        {"destination": "relative/deprecated"}],
    "process": {
        "terminal": True, "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 4294967295, "gid": 0, "umask": 18, "additionalGids": [5, 6], "username": "x"},
        "args": ["sh", "-c", "true"], "commandLine": "sh -c true",
        "env": ["PATH=/bin", "TERM=xterm"], "cwd": "/",
        "capabilities": {k: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_CHECKPOINT_RESTORE"]
                         for k in ["bounding", "effective", "inheritable", "permitted", "ambient"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1024},
                    {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
        "apparmorProfile": "acme", "noNewPrivileges": True, "oomScoreAdj": -1000,
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -20, "priority": 0,
                      "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_UTIL_CLAMP_MAX"],
                      "runtime": 1000000, "deadline": 2000000, "period": 3000000},
        "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 7},
        "execCPUAffinity": {"initial": "7", "final": "0-3,7"}},
    "hostname": "h", "domainname": "d.test",
    "hooks": {k: [{"path": "/bin/hook", "args": ["hook", "a"], "env": ["A=1"], "timeout": 1}, {"path": "/bin/other"}]
              for k in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]},
    "annotations": {"com.example.key": "", "org.opencontainers.image.os": "linux"},
    "linux": {
        "namespaces": [{"type": t} for t in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]]
                      + [{"type": "network", "path": "/var/run/netns/x"}],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "timeOffsets": {"monotonic": {"secs": -172800, "nanosecs": 0}, "boottime": {"secs": 1, "nanosecs": 999999999}},
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
                    {"type": "b", "path": "/dev/sda", "major": 8, "minor": 0},
                    {"type": "u", "path": "/dev/u", "major": -1, "minor": 9223372036854775807},
                    {"type": "p", "path": "/dev/fifo"}],
        "netDevices": {"eth0": {"name": "ctr0"}, "eth1": {}},
        "cgroupsPath": "/pyoci/ctr",
        "resources": {
            "devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                        {"allow": True, "type": "a"}],
            "memory": {"limit": 536870912, "reservation": -1, "swap": -1, "kernel": -1, "kernelTCP": -1,
                       "swappiness": 60, "disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": True},
            "cpu": {"shares": 1024, "quota": -1, "burst": 1000, "period": 100000, "realtimeRuntime": 950000,
                    "realtimePeriod": 1000000, "cpus": "0-3", "mems": "0", "idle": 1},
            "pids": {"limit": -1},
            "blockIO": {"weight": 10, "leafWeight": 10,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                         {"major": 8, "minor": 16, "leafWeight": 65535}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 600}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 1}},
            "unified": {"io.max": "259:0 rbps=2097152", "memory.high": "max"}},
        "intelRdt": {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70",
                     "schemata": ["L2:0=f;1=f"], "enableMonitoring": True},
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_LOONGARCH64"],
                    "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                    "listenerPath": "/run/seccomp-agent.sock", "listenerMetadata": "meta",
                    "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                                 {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                                  "args": [{"index": 0, "value": 18446744073709551615, "valueTwo": 0,
                                            "op": "SCMP_CMP_MASKED_EQ"},
                                           {"index": 1, "value": 8, "op": "SCMP_CMP_NE"}]},
                                 {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]},
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:container_file_t:s0",
        "personality": {"domain": "LINUX32", "flags": []},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "2-3", "flags": ["MPOL_F_STATIC_NODES"]}},
    "solaris": {}, "windows": {"layerFolders": []}, "vm": {}, "zos": {}, "freebsd": {},
    "org.example.unknown": {"anything": [1, 2]},
}

# Unknown properties are allowed at every level, not just the top.
FULL_UNKNOWN = copy.deepcopy(FULL)
FULL_UNKNOWN["process"]["futureField"] = 1
FULL_UNKNOWN["linux"]["resources"]["memory"]["futureKnob"] = "x"
FULL_UNKNOWN["linux"]["intelRdt"]["enableCMT"] = True


def mutated(base: dict, path: list, value=None, delete: bool = False) -> dict:
    """A deep copy of `base` with the value at `path` replaced (or deleted)."""
    out = copy.deepcopy(base)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def mut(path: list, value=None, delete: bool = False) -> dict:
    return mutated(FULL, path, value, delete)


def only(**fields) -> dict:
    return {"ociVersion": "1.3.0", **fields}


CONFIG_VALID = {
    "runc spec": RUNC_SPEC,
    "runc spec --rootless": RUNC_SPEC_ROOTLESS,
    "config.md example": CONFIG_MD_EXAMPLE,
    "every field": FULL,
    "unknown nested props": FULL_UNKNOWN,
    "minimal": {"ociVersion": "1.0.0"},
    "semver prerelease+build": only(ociVersion="1.3.0-rc.1+dev"),
    "process without args": only(process={"cwd": "/", "user": {"uid": 0, "gid": 0}}),
    # from runtime-spec schema/test/config/good
    "upstream good/minimal": {"ociVersion": "1.0.0", "root": {"path": "rootfs"}},
    "upstream good/minimal-for-start": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                                   "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}},
    "upstream good/linux-netdevice": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                                 "linux": {"netDevices": {"eth0": {"name": "container_eth0"}, "ens4": {}, "ens5": {}}}},
    "upstream good/linux-rdma": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                            "linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000},
                                                             "mlx4_0": {"hcaObjects": 1000},
                                                             "rxe3": {"hcaObjects": 10000}}}}},
    "upstream good/freebsd-minimal": {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "freebsd": {}},
    "upstream good/zos-minimal": {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "zos": {}},
    # where generated code and jsonschema could part ways
    "integral float as integer": mut(["process", "user", "uid"], 1.0),
    "fifo device without major/minor": only(linux={"devices": [{"type": "p", "path": "/dev/fifo"}]}),
    "cgroup device access empty": mut(["linux", "resources", "devices", 1, "access"], ""),
    "non-ASCII annotation": mut(["annotations", "ключ"], "значение"),
}

CONFIG_INVALID = {
    "ociVersion missing": mut(["ociVersion"], delete=True),
    "ociVersion not semver": mut(["ociVersion"], "1.0"),
    "ociVersion trailing newline": mut(["ociVersion"], "1.0.0\n"),
    "namespace type pidd": mut(["linux", "namespaces", 0, "type"], "pidd"),
    "namespace without type": mut(["linux", "namespaces", 0], {"path": "/proc/1/ns/pid"}),
    "mount without destination": mut(["mounts", 0], {"type": "proc", "source": "proc"}),
    "mount uidMappings without gidMappings": mut(["mounts", 1, "gidMappings"], delete=True),
    "rlimit hard x": mut(["process", "rlimits", 0, "hard"], "x"),
    "rlimit hard 2**64": mut(["process", "rlimits", 0, "hard"], 2**64),
    "rlimit soft -1": mut(["process", "rlimits", 0, "soft"], -1),
    "rlimit type NOFILE": mut(["process", "rlimits", 0, "type"], "NOFILE"),
    "rlimit type with newline": mut(["process", "rlimits", 0, "type"], "RLIMIT_NOFILE\n"),
    "rlimit missing soft": mut(["process", "rlimits", 0, "soft"], delete=True),
    "capability lowercase": mut(["process", "capabilities", "bounding", 0], "chown"),
    "capabilities not array": mut(["process", "capabilities", "ambient"], "CAP_CHOWN"),
    "uid -1": mut(["process", "user", "uid"], -1),
    "uid 2**32": mut(["process", "user", "uid"], 2**32),
    "uid bool": mut(["process", "user", "uid"], True),
    "gid string": mut(["process", "user", "gid"], "0"),
    "user without gid": mut(["process", "user"], {"uid": 0}),
    "process without cwd": mut(["process", "cwd"], delete=True),
    "process without user": mut(["process", "user"], delete=True),
    "terminal string": mut(["process", "terminal"], "yes"),
    "consoleSize missing width": mut(["process", "consoleSize"], {"height": 1}),
    "args not strings": mut(["process", "args"], ["sh", 1]),
    "ioPriority 8": mut(["process", "ioPriority", "priority"], 8),
    "ioPriority bad class": mut(["process", "ioPriority", "class"], "IOPRIO_CLASS_NONE"),
    "scheduler bad policy": mut(["process", "scheduler", "policy"], "SCHED_FOO"),
    "scheduler nice int32 overflow": mut(["process", "scheduler", "nice"], 2**31),
    "root without path": mut(["root"], {"readonly": True}),
    "hook without path": mut(["hooks", "poststop", 0], {"args": ["x"]}),
    "hook timeout 0": mut(["hooks", "prestart", 0, "timeout"], 0),
    "hooks not array": mut(["hooks", "poststart"], {"path": "/x"}),
    "annotation value int": mut(["annotations", "k"], 1),
    "annotation empty key": mut(["annotations", ""], "v"),
    "idmapping without size": mut(["linux", "uidMappings", 0], {"containerID": 0, "hostID": 0}),
    "idmapping hostID 2**32": mut(["linux", "gidMappings", 0, "hostID"], 2**32),
    "device type x": mut(["linux", "devices", 0, "type"], "x"),
    "device without path": mut(["linux", "devices", 0, "path"], delete=True),
    "char device without major": mut(["linux", "devices", 0, "major"], delete=True),
    "device major int64 overflow": mut(["linux", "devices", 0, "major"], 2**63),
    "device fileMode negative": mut(["linux", "devices", 0, "fileMode"], -1),
    "cgroup device missing allow": mut(["linux", "resources", "devices", 0], {"access": "rwm"}),
    "cgroup device type u": mut(["linux", "resources", "devices", 1, "type"], "u"),
    "cgroup device access rwx": mut(["linux", "resources", "devices", 1, "access"], "rwx"),
    "memory limit int64 underflow": mut(["linux", "resources", "memory", "limit"], -2**63 - 1),
    "memory limit string": mut(["linux", "resources", "memory", "limit"], "1G"),
    "swappiness negative": mut(["linux", "resources", "memory", "swappiness"], -1),
    "cpu shares negative": mut(["linux", "resources", "cpu", "shares"], -1),
    "blkio weight uint16 overflow": mut(["linux", "resources", "blockIO", "weight"], 65536),
    "weightDevice without weights": mut(["linux", "resources", "blockIO", "weightDevice", 0], {"major": 8, "minor": 0}),
    "throttle without rate": mut(["linux", "resources", "blockIO", "throttleReadBpsDevice", 0],
                                 {"major": 8, "minor": 0}),
    "hugepage pageSize 2M": mut(["linux", "resources", "hugepageLimits", 0, "pageSize"], "2M"),
    "hugepage without limit": mut(["linux", "resources", "hugepageLimits", 0], {"pageSize": "2MB"}),
    "rdma entry empty": mut(["linux", "resources", "rdma", "mlx5_1"], {}),
    "unified value int": mut(["linux", "resources", "unified", "memory.max"], 1),
    "net priority missing name": mut(["linux", "resources", "network", "priorities", 0], {"priority": 1}),
    "memBwSchema without MB:": mut(["linux", "intelRdt", "memBwSchema"], "L3:0=1"),
    "memBwSchema with newline": mut(["linux", "intelRdt", "memBwSchema"], "MB:0=20\n"),
    "schemata line with newline": mut(["linux", "intelRdt", "schemata"], ["L3:0=1\nMB:0=2"]),
    "seccomp bad defaultAction": mut(["linux", "seccomp", "defaultAction"], "SCMP_ACT_FOO"),
    "seccomp without defaultAction": mut(["linux", "seccomp", "defaultAction"], delete=True),
    "seccomp bad arch": mut(["linux", "seccomp", "architectures", 0], "SCMP_ARCH_AMD64"),
    "seccomp bad flag": mut(["linux", "seccomp", "flags", 0], "SECCOMP_FILTER_FLAG_FOO"),
    "seccomp metadata without listenerPath": mut(["linux", "seccomp", "listenerPath"], delete=True),
    "syscall empty names": mut(["linux", "seccomp", "syscalls", 0, "names"], []),
    "syscall without action": mut(["linux", "seccomp", "syscalls", 0], {"names": ["read"]}),
    "syscall arg bad op": mut(["linux", "seccomp", "syscalls", 1, "args", 0, "op"], "SCMP_CMP_XX"),
    "syscall arg without value": mut(["linux", "seccomp", "syscalls", 1, "args", 1], {"index": 0, "op": "SCMP_CMP_EQ"}),
    "syscall arg value negative": mut(["linux", "seccomp", "syscalls", 1, "args", 1, "value"], -1),
    "rootfsPropagation foo": mut(["linux", "rootfsPropagation"], "foo"),
    "personality LINUX64": mut(["linux", "personality", "domain"], "LINUX64"),
    "memoryPolicy without mode": mut(["linux", "memoryPolicy"], {"nodes": "0"}),
    "memoryPolicy bad flag": mut(["linux", "memoryPolicy", "flags"], ["MPOL_F_FOO"]),
    "timeOffset nanosecs negative": mut(["linux", "timeOffsets", "boottime", "nanosecs"], -1),
    "sysctl value int": mut(["linux", "sysctl", "a.b"], 1),
    "maskedPaths not strings": mut(["linux", "maskedPaths"], [1]),
    "linux not object": mut(["linux"], []),
    "windows not object": mut(["windows"], "x"),
    "top-level array": [],
    # from runtime-spec schema/test/config/bad
    "upstream bad/linux-hugepage": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                                "linux": {"resources": {"hugepageLimits": [{"limit": 1234123, "pageSize": "64kB"}]}}},
    "upstream bad/linux-netdevice": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                                 "linux": {"netDevices": {"eth0": {"name": 23}}}},
    "upstream bad/linux-rdma": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                            "linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": "not a uint32"}}}}},
    # where generated code and jsonschema could part ways
    "ociVersion non-ASCII digit": mut(["ociVersion"], "1.\u0663.0"),
    "uid fractional float": mut(["process", "user", "uid"], 1.5),
    "capability with trailing newline": mut(["process", "capabilities", "bounding", 0], "CAP_CHOWN\n"),
    "hugepage pageSize trailing newline": mut(["linux", "resources", "hugepageLimits", 0, "pageSize"], "2MB\n"),
    "cgroup device access trailing newline": mut(["linux", "resources", "devices", 1, "access"], "rw\n"),
    "readonly bool as string": mut(["root", "readonly"], "true"),
    "top-level string": "config",
    "top-level null": None,
}

STATE_OK = {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 4422,
            "bundle": "/containers/redis", "annotations": {"myKey": "myValue"}}


def state(**fields) -> dict:
    """STATE_OK with `fields` set, or removed where the value is `...`."""
    out = dict(STATE_OK)
    for key, value in fields.items():
        if value is ...:
            del out[key]
        else:
            out[key] = value
    return out


STATE_VALID = {
    "runtime.md example": STATE_OK,
    "creating without pid": state(status="creating", pid=...),
    "stopped without pid": state(status="stopped", pid=...),
    "stopped pid 0 + runc extras": state(status="stopped", pid=0, rootfs="/x/rootfs", created="2024-01-01T00:00:00Z",
                                         owner=""),
    "paused (runc)": state(status="paused"),
    "no annotations": state(annotations=...),
    "upstream good/spec-example": state(ociVersion="0.2.0", id="oci-container1"),
}
STATE_INVALID = {
    "running without pid": state(pid=...),
    "created without pid": state(status="created", pid=...),
    "status foo": state(status="foo"),
    "missing bundle": state(bundle=...),
    "missing id": state(id=...),
    "missing ociVersion": state(ociVersion=...),
    "pid -1": state(pid=-1),
    "pid string": state(pid="1"),
    "annotation value int": state(annotations={"a": 1}),
}

FEATURES_FULL = copy.deepcopy(FEATURES_MD_EXAMPLE)
FEATURES_FULL["linux"]["mountExtensions"] = {"idmap": {"enabled": True}}
FEATURES_FULL["linux"]["netDevices"] = {"enabled": True}
FEATURES_FULL["potentiallyUnsafeConfigAnnotations"] = ["com.example.foo.bar", "org.systemd.property."]


def fmut(path: list, value=None, delete: bool = False) -> dict:
    return mutated(FEATURES_FULL, path, value, delete)


FEATURES_VALID = {
    "runc features": RUNC_FEATURES,
    "features.md example (+1.3 fields)": FEATURES_FULL,
    "nulls everywhere": {
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "hooks": None, "mountOptions": None,
        "annotations": None, "potentiallyUnsafeConfigAnnotations": None,
        "linux": {"namespaces": None, "capabilities": None, "cgroup": {"v1": None, "rdma": None},
                  "seccomp": {"enabled": None, "actions": None, "knownFlags": None},
                  "apparmor": None, "selinux": {"enabled": None}, "intelRdt": None,
                  "memoryPolicy": {"modes": None}, "mountExtensions": {"idmap": None}, "netDevices": None}},
    "linux null": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": None},
    "minimal": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"},
    "upstream good/minimal": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0"},
}
FEATURES_INVALID = {
    "missing ociVersionMax": fmut(["ociVersionMax"], delete=True),
    "ociVersionMin null": fmut(["ociVersionMin"], None),
    "ociVersionMin not semver": fmut(["ociVersionMin"], "1"),
    "hooks as string": fmut(["hooks"], "prestart"),
    "mountOptions non-string": fmut(["mountOptions"], [1]),
    "cgroup.v1 yes": fmut(["linux", "cgroup", "v1"], "yes"),
    "seccomp.enabled 1": fmut(["linux", "seccomp", "enabled"], 1),
    "idmap enabled string": fmut(["linux", "mountExtensions", "idmap"], {"enabled": "true"}),
    "annotations value bool": fmut(["annotations", "x"], True),
    "linux array": fmut(["linux"], []),
    "upstream bad/missing-ociVersionMax": {"ociVersionMin": "1.1.0"},
}


# --- the reference and the generated code ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(load_schema("config"))


def generated_errors(instance) -> str | None:
    """None if the generated validator accepts `instance`, else its message."""
    try:
        _config_validator.validate(copy.deepcopy(instance))
    except _config_validator.JsonSchemaValueException as exc:
        return f"{exc.name}: {exc.message}"
    return None


def reference_errors(validator: jsonschema.Draft7Validator, instance) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in validator.iter_errors(instance)]


def fjs_name(path) -> str:
    """jsonschema's absolute_path, spelled the way fastjsonschema names it: data.mounts[0].destination."""
    return "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def all_error_names(validator: jsonschema.Draft7Validator, instance) -> set[str]:
    names = set()
    stack = list(validator.iter_errors(instance))
    while stack:
        error = stack.pop()
        names.add(fjs_name(error.absolute_path))
        stack.extend(error.context or ())
    return names


def test_sample_sets():
    assert not set(CONFIG_VALID) & set(CONFIG_INVALID)
    assert not set(STATE_VALID) & set(STATE_INVALID)
    assert not set(FEATURES_VALID) & set(FEATURES_INVALID)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft7(name):
    schema = load_schema(name)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("label", CONFIG_VALID)
def test_valid_config_passes_both(reference, label):
    instance = CONFIG_VALID[label]
    assert reference_errors(reference, instance) == []
    assert generated_errors(instance) is None


@pytest.mark.parametrize("label", CONFIG_INVALID)
def test_invalid_config_fails_both(reference, label):
    instance = CONFIG_INVALID[label]
    assert reference_errors(reference, instance), "jsonschema accepts it"
    assert generated_errors(instance) is not None, "the generated validator accepts it"


@pytest.mark.parametrize("label", CONFIG_INVALID)
def test_generated_validator_blames_a_place_jsonschema_blames(reference, label):
    """ConfigError's path comes from the generated validator: it must point where the reference sees a fault."""
    instance = CONFIG_INVALID[label]
    try:
        _config_validator.validate(copy.deepcopy(instance))
    except _config_validator.JsonSchemaValueException as exc:
        assert exc.name in all_error_names(reference, instance), reference_errors(reference, instance)
    else:
        pytest.fail("the generated validator accepts it")


def test_validate_does_not_modify_its_input():
    instance = copy.deepcopy(FULL_UNKNOWN)
    _config_validator.validate(instance)
    assert instance == FULL_UNKNOWN


def test_generated_validator_is_standalone():
    """The generated module raises its own exception type: fastjsonschema is needed to build, not to run."""
    source = Path(_config_validator.__file__).read_text()
    assert "import fastjsonschema" not in source and "from fastjsonschema" not in source
    assert issubclass(_config_validator.JsonSchemaValueException, ValueError)


PATTERN_SAMPLES = ["", "\n", "x\ny", "MB:0=70", "L3:0=ff", "1MB", "2GB", "10KB\n", "B", "1XB", "rwm", "rw\n", "rx",
                   "CAP_SYS_ADMIN", "CAP_", "cap_chown", "CAP_X\n", "RLIMIT_NOFILE", "RLIMIT_1", "1.0.0", "1.3.0-rc.1+dev",
                   "01.0.0", "1.0.0\n", "1.0.0-01", "1.0.0-0a.b", "1.0.0+a..b", "1.0", "\u0661.0.0", "MB:\n"]


def test_precompiled_patterns_are_what_re_compiles():
    """setup.py hands the validator its patterns compiled at build time, so that importing it does not
    import re: each must be the very pattern re.compile makes, and find what it finds."""
    import re

    assert _config_validator.REGEX_PATTERNS
    for key, pattern in _config_validator.REGEX_PATTERNS.items():
        reference = re.compile(pattern.pattern)
        assert pattern == reference and pattern.flags == reference.flags and pattern.groups == reference.groups
        for text in PATTERN_SAMPLES + [key]:
            for method in ("search", "match", "fullmatch"):
                got, expected = getattr(pattern, method)(text), getattr(reference, method)(text)
                assert (got and (got.span(), got.groups())) == (expected and (expected.span(), expected.groups()))


def test_patterns_fall_back_to_re_on_another_sre():
    """Compiled code only fits the _sre it was made for: on another one the validator compiles with re."""
    source = Path(_config_validator.__file__).read_text()
    guard = "if (_sre.MAGIC, _sre.CODESIZE, sys.version_info[:2]) == "
    assert guard in source
    start = source.index(guard) + len(guard)
    namespace: dict = {}
    exec(source[:start] + "None" + source[source.index(":\n", start):], namespace)
    assert namespace["REGEX_PATTERNS"] == _config_validator.REGEX_PATTERNS
    assert "re" in namespace


@pytest.mark.parametrize("label, instance, valid",
                         [(k, v, True) for k, v in STATE_VALID.items()]
                         + [(k, v, False) for k, v in STATE_INVALID.items()])
def test_state_schema_samples(label, instance, valid):
    assert jsonschema.Draft7Validator(load_schema("state")).is_valid(instance) is valid


@pytest.mark.parametrize("label, instance, valid",
                         [(k, v, True) for k, v in FEATURES_VALID.items()]
                         + [(k, v, False) for k, v in FEATURES_INVALID.items()])
def test_features_schema_samples(label, instance, valid):
    assert jsonschema.Draft7Validator(load_schema("features")).is_valid(instance) is valid


# --- what pyoci itself writes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rootless", [False, True], ids=["root", "rootless"])
def test_pyoci_spec_default_config_validates(reference, rootless):
    config = default_config(rootless=rootless)
    assert reference_errors(reference, config) == []
    assert generated_errors(config) is None


def test_pyoci_features_validates():
    doc = json.loads(json.dumps(features()))  # what `pyoci features` prints
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(load_schema("features")).iter_errors(doc)]
    assert errors == []
