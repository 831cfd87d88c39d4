#!/usr/bin/env bash
# Install a single-node SLURM (Slurm 22.05 on Debian 12) so that
# `pytest -m slurm` can start one (see tests/helpers/slurm_cluster.py).
#
# Idempotent: does nothing when the daemons and client are already installed.
# Needs root and apt. CI calls it before pytest:
#     sudo .ci/install-slurm.sh
set -euo pipefail

need=()
for bin in slurmctld slurmd sinfo sbatch squeue munged; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
        need+=("$bin")
    fi
done
if [ "${#need[@]}" -eq 0 ]; then
    echo "install-slurm: slurm and munge already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm: missing ${need[*]}; run as root (e.g. sudo $0)" >&2
    exit 1
fi

echo "install-slurm: missing ${need[*]}; installing with apt"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
# The packages' post-install scripts may try to start the daemons through
# systemd; where PID 1 is not systemd that fails harmlessly. The tests start
# (and stop) their own daemons.
echo "install-slurm: done (slurmctld $(dpkg-query -W -f='${Version}' slurmctld))"
