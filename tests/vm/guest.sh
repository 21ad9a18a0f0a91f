#!/usr/bin/env bash
# Inside the cgroup v2 guest (run-v2.sh): checks the host is pure cgroup v2, then runs the v2 test set, or a
# command of the caller's (say bench/compare.py) under the same watchdog.
# Usage: guest.sh REPO PYTHON [PYTEST ARGS...]
#        guest.sh REPO PYTHON --run COMMAND [ARGS...]
set -euo pipefail
repo=$1 python=$2
shift 2
if [ ! -f /sys/fs/cgroup/cgroup.controllers ] || awk '$3 == "cgroup" {found = 1} END {exit !found}' /proc/mounts; then
    echo "guest: cgroup v1 is mounted: not a cgroup v2 host" >&2
    exit 1
fi
echo "guest: Linux $(uname -r), cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
modprobe loop  # block devices for io.max
export PYTHONDONTWRITEBYTECODE=1  # the repository is read-only here
what=pytest
if [ "${1:-}" = --run ]; then
    shift
    what=$1
elif [ $# -eq 0 ]; then
    # test_cgroups.py's memory hogs are covered here by test_cgroups_v2.py's lighter one
    set -- "$repo/tests/integration/test_cgroups_v2.py" "$repo/tests/integration/test_cgroup_devices.py" \
        "$repo/tests/integration/test_cgroups.py" "$repo/tests/integration/test_spec_coverage.py" \
        -k "not hog and not events_stats_and_oom"
fi
cd /tmp  # not the repository: its pyoci/ has no compiled executor and would shadow the installed one
if [ "$what" = pytest ]; then
    set -- "$python" -m pytest -p no:cacheprovider -q -n 2 --rootdir "$repo" --basetemp=/tmp/pytest -rs --durations=0 "$@"
fi
# A hang in here would otherwise show only as the host's 30-minute timeout with nothing said: after
# GUEST_TIMEOUT seconds the processes left and where they sleep are printed, and the run fails.
"$@" &
pid=$!
( sleep "${GUEST_TIMEOUT:-600}"
  echo "guest: $what still running after ${GUEST_TIMEOUT:-600}s"
  # First what the kernel itself says: the backtraces of the CPUs (a lock holder spinning or preempted shows
  # here) and of every blocked (D) task, kernel threads included. This reads no other process's memory, so a
  # task stuck holding an mm or exec lock cannot stop it.
  echo l > /proc/sysrq-trigger
  echo w > /proc/sysrq-trigger
  sleep 2
  echo "guest: kernel log:"
  dmesg | tail -n 400
  # Then every task, whatever its state, with its kernel stack: a holder may also sleep interruptibly. Reads
  # of another process's cmdline take its mmap lock, so each read is bounded.
  echo "guest: all tasks and where they wait:"
  for d in /proc/[0-9]*; do
      cmd=$(timeout 5 tr '\0' ' ' < "$d/cmdline" 2>/dev/null | cut -c1-160)
      [ -n "$cmd" ] || cmd="[$(cat "$d/comm" 2>/dev/null)]"
      echo "$(basename "$d") ppid=$(awk '/^PPid/ {print $2}' "$d/status" 2>/dev/null)" \
           "state=$(awk '/^State/ {print $2}' "$d/status" 2>/dev/null) wchan=$(cat "$d/wchan" 2>/dev/null) $cmd"
      timeout 5 sed 's/^/    /' "$d/stack" 2>/dev/null
  done
  kill -9 "$pid" ) &
watchdog=$!
status=0
wait "$pid" || status=$?
kill "$watchdog" 2>/dev/null || true
exit "$status"
