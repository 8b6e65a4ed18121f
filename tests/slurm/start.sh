#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the Slurm executor's end-to-end tests.
#
# Installs slurm-wlm and munge with apt-get (only if missing), creates a munge key (if missing),
# starts munged (if not running), writes /etc/slurm/slurm.conf (owned by this script; see
# NOTES.md beside it), starts slurmctld and slurmd directly (no systemd), and waits until the
# node is idle. Idempotent: a second run checks each step and returns within a second or two.
# Must run as root. Stop everything with tests/slurm/stop.sh.
#
# Environment knobs (all optional):
#   NAO_SLURM_START_TIMEOUT  seconds to wait for each daemon / the idle node (default 60)
set -euo pipefail

timeout_s="${NAO_SLURM_START_TIMEOUT:-60}"
state_dir=/run/nao-slurm-test          # markers: what this script started
conf_dir=/etc/slurm
conf="$conf_dir/slurm.conf"
log_dir=/var/log/slurm
ctld_log="$log_dir/slurmctld.log"
slurmd_log="$log_dir/slurmd.log"
ctld_pid=/run/slurmctld.pid
slurmd_pid=/run/slurmd.pid
munge_key=/etc/munge/munge.key
munge_sock_dir=/run/munge
munge_pid="$munge_sock_dir/munged.pid"
munge_log=/var/log/munge/munged.log

say() { echo "slurm/start.sh: $*"; }
die() { echo "slurm/start.sh: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"

# Is the daemon whose pid file is $1 alive, and is it the program $2?
alive() {
  local pidfile="$1" name="$2" pid
  [ -s "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

# Pid of a running program named exactly $1 (for munged started by someone else), if any.
pid_of() {
  local p
  for p in /proc/[0-9]*; do
    if [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ]; then
      echo "${p#/proc/}"
      return 0
    fi
  done
  return 1
}

# wait_for SECONDS DESCRIPTION LOGFILE COMMAND...: poll COMMAND every 0.2 s.
wait_for() {
  local secs="$1" what="$2" log="$3"
  shift 3
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "slurm/start.sh: ERROR: timed out after ${secs}s waiting for $what; read $log" >&2
      if [ -f "$log" ]; then
        echo "---- last lines of $log ----" >&2
        tail -n 25 "$log" >&2 || true
      fi
      exit 1
    fi
    sleep 0.2
  done
}

mkdir -p "$state_dir"

# ---- 1. packages -------------------------------------------------------------------------------
# munged may be started by the package's postinst (where no policy-rc.d forbids it); remember
# whether it was running before we did anything, so that stop.sh stops it only if we started it.
munged_was_running=no
if pid_of munged >/dev/null; then munged_was_running=yes; fi

need_pkgs=()
command -v munged >/dev/null 2>&1 || need_pkgs+=(munge)
for b in slurmctld slurmd sbatch; do
  if ! command -v "$b" >/dev/null 2>&1; then need_pkgs+=(slurm-wlm); break; fi
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  say "installing ${need_pkgs[*]} with apt-get"
  # apt-get update only when the package lists do not know the packages yet.
  if ! apt-cache show slurm-wlm munge >/dev/null 2>&1; then
    apt-get update -q || die "apt-get update failed"
  fi
  if ! apt-get install -y -q --no-install-recommends slurm-wlm munge; then
    say "install failed; running apt-get update and retrying once"
    apt-get update -q || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends slurm-wlm munge \
      || die "apt-get install slurm-wlm munge failed"
  fi
fi
for b in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$b" >/dev/null 2>&1 || die "$b not found after installing slurm-wlm and munge"
done

# ---- 2. munge ----------------------------------------------------------------------------------
id munge >/dev/null 2>&1 || die "user munge missing (the munge package creates it)"
mkdir -p /etc/munge /var/lib/munge /var/log/munge "$munge_sock_dir"
chown munge:munge /etc/munge /var/lib/munge /var/log/munge "$munge_sock_dir"
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 "$munge_sock_dir"
if [ ! -s "$munge_key" ]; then
  say "creating $munge_key"
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$munge_key" --force
  else
    dd if=/dev/urandom of="$munge_key" bs=1 count=1024 status=none
  fi
fi
chown munge:munge "$munge_key"
chmod 0400 "$munge_key"

if ! pid_of munged >/dev/null; then
  say "starting munged"
  # munged refuses to run as root by default; run it as the munge user. It daemonizes itself.
  runuser -u munge -- munged --pid-file="$munge_pid" \
    || die "munged failed to start; read $munge_log"
  if [ "$munged_was_running" = no ]; then touch "$state_dir/munged.started"; fi
elif [ "$munged_was_running" = no ]; then
  # Started by the package's postinst during this run: ours to stop.
  touch "$state_dir/munged.started"
fi
wait_for "$timeout_s" "munge to encode/decode a credential" "$munge_log" \
  bash -c 'munge -n | unmunge'

# ---- 3. slurm.conf -----------------------------------------------------------------------------
host="$(hostname -s)"
cpus="$(nproc)"
mkdir -p "$conf_dir" "$log_dir" /var/spool/slurmctld /var/spool/slurmd
chmod 0755 /var/spool/slurmctld /var/spool/slurmd "$log_dir"
new_conf="$(mktemp "$conf_dir/.slurm.conf.XXXXXX")"
trap 'rm -f "$new_conf"' EXIT
cat >"$new_conf" <<EOF
# Written by tests/slurm/start.sh (nao); overwritten on every run. One-node test cluster.
ClusterName=nao-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$ctld_pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$ctld_log
SlurmdLogFile=$slurmd_log
SlurmctldDebug=info
SlurmdDebug=info
# Scheduling: start jobs as soon as they are submitted or resources free up.
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,default_queue_depth=1000,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Finished jobs stay visible to squeue/scontrol for MinJobAge seconds (no accounting database).
MinJobAge=300
# Reject at submission (sbatch exits 1) a job that no node could ever run, e.g. more CPUs than
# the node has, instead of leaving it PENDING forever with Reason=PartitionConfig.
EnforcePartLimits=ALL
MaxArraySize=100001
MaxJobCount=100000
# Time limits: no grace; SIGTERM then SIGKILL after KillWait seconds.
OverTimeLimit=0
KillWait=2
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
ReturnToService=2
# Do not drain the node when the configured CPU count and the detected topology disagree.
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
chmod 0644 "$new_conf"
conf_changed=no
if ! cmp -s "$new_conf" "$conf"; then
  conf_changed=yes
  mv -f "$new_conf" "$conf"
  say "wrote $conf"
else
  rm -f "$new_conf"
fi
trap - EXIT

# ---- 4. daemons --------------------------------------------------------------------------------
if [ "$conf_changed" = yes ]; then
  # Restart what runs with an old configuration (a changed NodeName or CPU count needs it).
  for pf in "$slurmd_pid" "$ctld_pid"; do
    if [ -s "$pf" ]; then
      pid="$(cat "$pf" 2>/dev/null || true)"
      name=slurmd; [ "$pf" = "$ctld_pid" ] && name=slurmctld
      if alive "$pf" "$name"; then
        say "configuration changed: restarting $name"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
    fi
  done
fi

if ! alive "$ctld_pid" slurmctld; then
  say "starting slurmctld (log: $ctld_log)"
  slurmctld -f "$conf" || die "slurmctld failed to start; read $ctld_log"
  touch "$state_dir/slurmctld.started"
  wait_for "$timeout_s" "slurmctld to write $ctld_pid" "$ctld_log" alive "$ctld_pid" slurmctld
fi
wait_for "$timeout_s" "slurmctld to answer (scontrol ping)" "$ctld_log" \
  bash -c 'scontrol ping | grep -q "is UP"'

if ! alive "$slurmd_pid" slurmd; then
  say "starting slurmd (log: $slurmd_log)"
  slurmd -f "$conf" || die "slurmd failed to start; read $slurmd_log"
  touch "$state_dir/slurmd.started"
  wait_for "$timeout_s" "slurmd to write $slurmd_pid" "$slurmd_log" alive "$slurmd_pid" slurmd
fi

# ---- 5. the node idle --------------------------------------------------------------------------
node_state() { sinfo -h -n "$host" -o '%T' 2>/dev/null | head -n 1; }
deadline=$(( $(date +%s) + timeout_s ))
resumed=no
while :; do
  st="$(node_state || true)"
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    down*|drain*|fail*)
      if [ "$resumed" = no ] && alive "$slurmd_pid" slurmd; then
        say "node $host is $st; resuming it"
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        resumed=yes
      fi
      ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    reason="$(sinfo -h -n "$host" -o '%E' 2>/dev/null || true)"
    die "timed out after ${timeout_s}s waiting for node $host to be idle (state '${st:-?}', reason '${reason}'); read $slurmd_log and $ctld_log"
  fi
  alive "$slurmd_pid" slurmd || die "slurmd exited; read $slurmd_log"
  alive "$ctld_pid" slurmctld || die "slurmctld exited; read $ctld_log"
  sleep 0.2
done
say "cluster nao-test up: node $host ($cpus CPUs) is $st, partition debug"
