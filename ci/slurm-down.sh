#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by ci/slurm-up.sh (slurmd,
# slurmctld, munged), by the process ids in their pid files. Idempotent.
set -uo pipefail

say() { echo "slurm-down: $*"; }
stop() {  # stop NAME PIDFILE: SIGTERM, then wait up to 10 s
    local name=$1 pidfile=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$pidfile"
}
if [ "$(id -u)" != 0 ]; then
    say "not root: nothing to stop"
    exit 0
fi
# the survey tests' worker jobs (dask-jobqueue names them dask-worker), if any are left
command -v scancel >/dev/null 2>&1 && scancel --name=dask-worker >/dev/null 2>&1 || true
stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop munged /run/munge/munged.pid
exit 0
