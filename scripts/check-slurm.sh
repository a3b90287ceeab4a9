#!/usr/bin/env bash
# make check-slurm: a real single-node Slurm on this machine runs the sharded pipeline of
# docs/scale-out.md (scripts/slurm-pipeline.sh) on the synthetic demo data with 4 array
# tasks, and its outputs are compared byte for byte with one unsharded run. Installs
# Debian's slurm-wlm and munge when missing (as root), configures them in a temporary folder
# (no cgroups, no accounting), and stops them at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${SHARDS:-4}
bin=${BIN:-target/release}
work=$(mktemp -d /tmp/cxr-slurm.XXXXXX)
started=()
cleanup() {
    if [[ -n ${SLURM_CONF:-} ]]; then scancel --user="$(id -un)" 2>/dev/null || true; fi
    for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
    pkill -f "slurmctld -D -f $work" 2>/dev/null || true
    pkill -f "slurmd -D -f $work" 2>/dev/null || true
    if [[ ${munge_started:-} == yes && -f /run/munge/munged.pid ]]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    [[ $(id -u) == 0 ]] || { echo "check-slurm: slurm-wlm and munge are missing; install them (apt-get install slurm-wlm munge) or run as root" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge > "$work/apt.log" 2>&1 \
        || { cat "$work/apt.log" >&2; exit 1; }
fi

# munge: Slurm's authentication, from the key Debian's package created.
if ! munge -n 2> /dev/null | unmunge > /dev/null 2>&1; then
    [[ -f /etc/munge/munge.key ]] || { mungekey --create 2> /dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    munge_started=yes
    sleep 1
    munge -n | unmunge > /dev/null || { echo "check-slurm: munged does not authenticate" >&2; exit 1; }
fi

host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<EOF
ClusterName=cxr-check
SlurmctldHost=$host
SlurmUser=$(id -un)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
slurmctld -D -f "$work/slurm.conf" > "$work/slurmctld.out" 2>&1 &
started+=($!)
slurmd -D -f "$work/slurm.conf" > "$work/slurmd.out" 2>&1 &
started+=($!)
for _ in $(seq 60); do
    sinfo -h -o %T 2> /dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 1
done
sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' \
    || { echo "check-slurm: the node did not come up" >&2; tail -20 "$work"/slurm*.log >&2; exit 1; }
echo "check-slurm: Slurm $(sinfo -V | cut -d' ' -f2) up on $host with $cpus CPUs"

# The reference: one unsharded run (it also generates the synthetic data, once).
config=configs/demo.yaml
one=(--config "$config" --no-progress -q --set experiment.workdir="$work/one")
for stage in preprocess train infer report; do "$bin/$stage" "${one[@]}" > /dev/null; done

# The same pipeline through Slurm, in its own workdir (its own feature cache).
start=$(date +%s)
last=$(CONFIG=$config SHARDS=$shards BIN=$bin LOGS="$work/logs" SET="experiment.workdir=$work/many" scripts/slurm-pipeline.sh)
while squeue -h -o %i 2> /dev/null | grep -q .; do sleep 2; done
state=$(scontrol show job "$last" 2> /dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1)
if [[ $state != COMPLETED ]]; then
    echo "check-slurm: the last job ended $state; job outputs:" >&2
    tail -n 5 "$work"/logs/*.out >&2
    exit 1
fi
echo "check-slurm: $(ls "$work/logs" | wc -l) Slurm tasks done in $(( $(date +%s) - start )) s"

# Byte for byte: tensors, model, predictions, metrics.
a=$work/one/demo
b=$work/many/demo
# (config.resolved.yaml and provenance.json name the workdir and the time: not compared.)
files=$(cd "$a" && find tensors -type f ! -name config.resolved.yaml ! -name provenance.json | sort; echo train/model.onnx; ls predictions/*.csv; echo report/metrics.csv)
for file in $files; do
    cmp -s "$a/$file" "$b/$file" || { echo "check-slurm: $file differs between the unsharded and the Slurm run" >&2; exit 1; }
done
merged=$(find "$work/many/.feature-cache" -path '*/shards/*.key.json' | wc -l)
[[ $merged -ge $shards ]] || { echo "check-slurm: the backbone pass did not run in shards ($merged shard keys)" >&2; exit 1; }
echo "check-slurm: $(echo "$files" | wc -w) files identical to the unsharded run (backbone pass in $shards shards: $merged shard files merged)"
