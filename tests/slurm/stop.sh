#!/usr/bin/env bash
# Stops what tests/slurm/start.sh started: slurmd, slurmctld (by their pid files), and munged
# only if start.sh started it. Idempotent: nothing running is not an error. Must run as root.
# Leaves the packages, /etc/slurm/slurm.conf, the munge key and the logs in place.
set -euo pipefail

state_dir=/run/nao-slurm-test
ctld_pid=/run/slurmctld.pid
slurmd_pid=/run/slurmd.pid
munge_pid=/run/munge/munged.pid

say() { echo "slurm/stop.sh: $*"; }

[ "$(id -u)" -eq 0 ] || { echo "slurm/stop.sh: ERROR: must run as root" >&2; exit 1; }

# stop PIDFILE NAME: SIGTERM the process in PIDFILE if it is NAME; SIGKILL after 10 s.
stop() {
  local pidfile="$1" name="$2" pid
  [ -s "$pidfile" ] || return 0
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

stop "$slurmd_pid" slurmd
stop "$ctld_pid" slurmctld
rm -f "$state_dir/slurmd.started" "$state_dir/slurmctld.started"
if [ -e "$state_dir/munged.started" ]; then
  stop "$munge_pid" munged
  rm -f "$state_dir/munged.started"
fi
say "stopped"
