#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on this machine (for the survey's SLURM test).
#
# Idempotent: does nothing when `sinfo` already shows this node idle. Installs
# Debian's slurm-wlm and munge with apt-get when slurmctld is missing, writes a
# one-node slurm.conf (this host, 2 CPUs, proctrack/linuxproc, task/none, no
# cgroup.conf), starts munged as the `munge` user and slurmctld/slurmd as root,
# and waits until the node is idle. Exits 0 with a message (and no cluster)
# when it cannot work here: not root, or no apt-get; the SLURM test then skips.
# Stop everything with ci/slurm-down.sh.
set -uo pipefail

say() { echo "slurm-up: $*"; }
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
NODE=$(hostname -s)
TIMEOUT=${SLURM_UP_TIMEOUT:-90}

node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1; }

if command -v sinfo >/dev/null 2>&1 && [ "$(node_state)" = "idle" ]; then
    say "node $NODE already idle"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    say "not root: cannot install or start SLURM; the SLURM tests will be skipped"
    exit 0
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "no apt-get on this machine: install slurm-wlm and munge by hand; the SLURM tests will be skipped"
        exit 0
    fi
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }; then
        say "apt-get could not install slurm-wlm/munge; the SLURM tests will be skipped"
        exit 0
    fi
fi

# --- munge: a key, its run directory, the daemon as the munge user
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
fi

# --- slurm.conf for this one node
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
tmp=$(mktemp "$CONF_DIR/.slurm.conf.XXXXXX")
cat >"$tmp" <<CONF
# written by xcube's ci/slurm-up.sh: one node, this machine
ClusterName=xcube-ci
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName=$NODE CPUs=2 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
mv "$tmp" "$CONF"
chmod 644 "$CONF"
rm -f "$CONF_DIR/cgroup.conf"

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! pid_alive /run/slurm/slurmctld.pid; then
    say "starting slurmctld"
    slurmctld || { say "slurmctld failed to start; see /var/log/slurm/slurmctld.log"; exit 1; }
else
    scontrol reconfigure >/dev/null 2>&1 || true
fi
if ! pid_alive /run/slurm/slurmd.pid; then
    say "starting slurmd"
    slurmd || { say "slurmd failed to start; see /var/log/slurm/slurmd.log"; exit 1; }
fi

# --- wait for the node to be idle
deadline=$((SECONDS + TIMEOUT))
while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    case "$state" in
        idle) say "node $NODE idle (SLURM $(sinfo --version | awk '{print $2}'))"; exit 0 ;;
        down*|drain*|drained*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
say "node $NODE not idle after ${TIMEOUT} s (state: ${state:-unknown}); see /var/log/slurm/"
exit 1
