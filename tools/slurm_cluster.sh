#!/usr/bin/env bash
# A one-node SLURM cluster on localhost from Debian 12's packages (slurm-wlm 22.05, munge), for
# tests and CI. Runs as root, without systemd and without cgroups (proctrack/linuxproc,
# task/none, no accounting database).
#
#   slurm_cluster.sh install   apt-get install slurm-wlm munge (skipped when present)
#   slurm_cluster.sh start     write the config, start munged, slurmctld, slurmd; wait for idle
#   slurm_cluster.sh stop      cancel jobs, stop the daemons; nothing of the cluster keeps running
#   slurm_cluster.sh status    daemons' pids, sinfo, squeue; exit 0 only when the node answers
#   slurm_cluster.sh restart   stop, then start
#
# Environment (all optional):
#   SLURM_STATE_DIR   where config, state, spool, logs and pid files live [/tmp/cfer-slurm]
#   SLURM_NODE        node name [hostname -s, else localhost]
#   SLURM_CPUS        CPUs the node advertises [nproc]; more than nproc oversubscribes on purpose
#   SLURM_START_TIMEOUT  seconds to wait for the node to become idle [60]
#   SLURM_LINK_CONF   1: point /etc/slurm/slurm.conf at the generated file so that clients
#                     (sbatch, sinfo, submitit) find it without SLURM_CONF [1]
set -euo pipefail

STATE_DIR="${SLURM_STATE_DIR:-/tmp/cfer-slurm}"
CONF="$STATE_DIR/slurm.conf"
SYSTEM_CONF=/etc/slurm/slurm.conf
MARK="# written by slurm_cluster.sh"
MUNGE_SOCKET=/run/munge/munge.socket.2

log() { echo "slurm_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

node_name() {
    if [[ -n "${SLURM_NODE:-}" ]]; then echo "$SLURM_NODE"; return; fi
    local h
    h="$(hostname -s 2>/dev/null || true)"
    # slurmd and slurmctld must reach each other through this name's address.
    if [[ -n "$h" ]] && getent hosts "$h" >/dev/null 2>&1; then echo "$h"; else echo localhost; fi
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -s "$1" ]] && cat "$1" || true; }

cmd_install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        log "slurm-wlm and munge already installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts try to start the services; without systemd invoke-rc.d refuses (harmless).
    apt-get update -qq >/dev/null || apt-get update
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    log "installed $(dpkg-query -W -f='slurm-wlm ${Version}, ' slurm-wlm)$(dpkg-query -W -f='munge ${Version}' munge)"
}

write_conf() {
    local node="$1" cpus="$2" mem="$3"
    mkdir -p "$STATE_DIR"/{ctld,spool,log}
    local tmp="$CONF.tmp.$$"
    cat >"$tmp" <<EOF
$MARK; regenerated on every start
ClusterName=cfer
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job may start again cred_expire seconds later (default 120); the step credential
# lifetime is the same number, ample on localhost.
AuthInfo=cred_expire=${SLURM_CRED_EXPIRE:-5}
CredType=cred/munge
MpiDefault=none
# No cgroups: processes are tracked through /proc, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Completed jobs are also appended to a text file (the only durable record: no sacct here).
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/log/jobcomp.log
SwitchType=switch/none
SchedulerType=sched/backfill
# Schedule a batch job as soon as it is submitted (default: batched every 3 s), and look at
# pending jobs every second (default 60 s: a requeued job would wait up to a minute).
SchedulerParameters=batch_sched_delay=0,sched_interval=1,bf_interval=1
SelectType=select/cons_tres
# CR_CPU: a 1-CPU task takes one CPU (CR_Core would hand out whole cores).
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
# Finished jobs stay visible to scontrol/squeue for an hour (there is no accounting database).
MinJobAge=3600
# Seconds between SIGTERM and SIGKILL (requeue, scancel, time limit); submitit ignores SIGTERM.
KillWait=${SLURM_KILL_WAIT:-5}
UnkillableStepTimeout=120
InactiveLimit=0
PropagateResourceLimits=NONE
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
# The node is what this file says (CPUs may exceed the hardware on purpose).
SlurmdParameters=config_overrides
NodeName=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$tmp" "$CONF"
    if [[ "${SLURM_LINK_CONF:-1}" == 1 ]]; then
        mkdir -p "$(dirname "$SYSTEM_CONF")"
        if [[ -e "$SYSTEM_CONF" && ! -L "$SYSTEM_CONF" ]] && ! grep -q "^$MARK" "$SYSTEM_CONF"; then
            die "$SYSTEM_CONF exists and was not written by this script; move it away or set SLURM_LINK_CONF=0 and export SLURM_CONF=$CONF"
        fi
        ln -sfn "$CONF" "$SYSTEM_CONF"
    fi
}

munge_works() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

start_munge() {
    if munge_works; then log "munged already answering"; return; fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
        else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    # systemd's tmpfiles would create these; there is no systemd here.
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    runuser -u munge -- /usr/sbin/munged --force
    local i
    for i in $(seq 50); do munge_works && break; sleep 0.1; done
    munge_works || die "munged did not answer; see /var/log/munge/munged.log"
    # Only a munged that this script started is stopped by `stop`.
    cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
}

node_state() { sinfo -h -N -n "$1" -o '%T' 2>/dev/null | head -n1; }

cmd_start() {
    command -v slurmctld >/dev/null || die "slurm-wlm is not installed; run: $0 install"
    [[ "$(id -u)" == 0 ]] || die "start must run as root"
    local node cpus mem t0 timeout
    t0=$(date +%s.%N)
    node="$(node_name)"
    cpus="${SLURM_CPUS:-$(nproc)}"
    # Advertise 90% of the memory slurmd sees, in MB (memory is not a consumable with CR_CPU,
    # but --mem larger than RealMemory is rejected at submission).
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    timeout="${SLURM_START_TIMEOUT:-60}"
    if pid_alive "$(pid_of "$STATE_DIR/slurmctld.pid")" && pid_alive "$(pid_of "$STATE_DIR/slurmd.pid")" \
        && [[ "$(node_state "$node")" =~ ^(idle|mixed|allocated)$ ]]; then
        log "already running (node $node $(node_state "$node"))"
        return
    fi
    # Half-running (one daemon died): start from a clean slate.
    cmd_stop quiet
    mkdir -p "$STATE_DIR"
    write_conf "$node" "$cpus" "$mem"
    start_munge
    # -c: forget jobs saved by an earlier life of the cluster; tests want an empty queue.
    slurmctld -c -f "$CONF"
    slurmd -f "$CONF" -N "$node"
    local deadline state
    deadline=$(( $(date +%s) + timeout ))
    while :; do
        state="$(node_state "$node")"
        case "$state" in
            idle|mixed|allocated) break ;;
            drain*|down*|inval*|fail*)
                # A node left down by an earlier life (e.g. unkillable step) comes back this way.
                scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
        esac
        if (( $(date +%s) >= deadline )); then
            log "node $node not idle after ${timeout}s (state: '${state:-no answer}')"
            log "slurmctld log tail:"; tail -n 15 "$STATE_DIR/log/slurmctld.log" >&2 || true
            log "slurmd log tail:"; tail -n 15 "$STATE_DIR/log/slurmd.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    log "node $node idle with $cpus CPUs, partition debug, in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s (config $CONF)"
}

stop_pids() {  # stop_pids PIDFILE...: SIGTERM to all at once (each takes ~2 s), SIGKILL after 10 s
    local f pid pids=() i alive
    for f in "$@"; do
        pid="$(pid_of "$f")"
        if pid_alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    for i in $(seq 200); do
        alive=0
        for pid in "${pids[@]}"; do pid_alive "$pid" && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.05
    done
    for pid in "${pids[@]}"; do
        if pid_alive "$pid"; then log "pid $pid ignored SIGTERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    done
    rm -f "$@"
}

cmd_stop() {
    local quiet="${1:-}"
    if pid_alive "$(pid_of "$STATE_DIR/slurmctld.pid")" && [[ -e "$CONF" ]]; then
        # Cancel every job first so that no slurmstepd or job process outlives the daemons.
        local jobs i
        jobs="$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')"
        if [[ -n "${jobs// /}" ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for i in $(seq 100); do
                [[ -z "$(squeue -h -o '%A' 2>/dev/null)" ]] && break
                sleep 0.1
            done
        fi
    fi
    # munged goes with them only if this script started it (its pid file is in STATE_DIR).
    stop_pids "$STATE_DIR/slurmd.pid" "$STATE_DIR/slurmctld.pid" "$STATE_DIR/munged.pid"
    # Step daemons left by a job that would not die belong to this cluster's slurmd.
    local step
    for step in $(pgrep -x slurmstepd || true); do
        log "killing leftover slurmstepd $step"; kill -KILL "$step" 2>/dev/null || true
    done
    [[ -n "$quiet" ]] || log "stopped (state in $STATE_DIR)"
}

cmd_status() {
    local name ok=0
    for name in munged slurmctld slurmd; do
        local pid="" 
        case $name in
            munged) pid="$(pid_of /run/munge/munged.pid)" ;;
            *) pid="$(pid_of "$STATE_DIR/$name.pid")" ;;
        esac
        if pid_alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: not running"; ok=1; fi
    done
    if [[ $ok == 0 ]]; then
        sinfo -N -o '%N %P %T %c %m' || ok=1
        squeue || true
    fi
    return $ok
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop quiet; cmd_start ;;
    status) cmd_status ;;
    *) echo "usage: $0 {install|start|stop|restart|status}" >&2; exit 2 ;;
esac
