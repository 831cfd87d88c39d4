"""A Snakemake that runs a job inside SLURM ignores SIGUSR1, SLURM's early warning, so that
the warning reaches the trainer and does not end the job step's Snakemake first; the rule's
process inherits that and the trainer installs its own handler
(cross_encoder.workflow.job_signals)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from cross_encoder.workflow.job_signals import ignore_warning_in_job
    ignored = ignore_warning_in_job(sys.argv[1] == "job", {"SLURM_JOB_ID": sys.argv[2]})
    os.kill(os.getpid(), signal.SIGUSR1)  # kills this process unless ignored
    # what a process it starts (the rule's shell, the trainer) inherits
    inherited = os.popen("grep SigIgn /proc/self/status").read().split()[1]
    print(ignored, bool(int(inherited, 16) & (1 << (signal.SIGUSR1 - 1))))
    """
)


def _run(mode: str, job_id: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, mode, job_id], capture_output=True, text=True, env=env
    )


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_a_job_snakemake_in_slurm_survives_the_warning_and_passes_the_ignore_on():
    proc = _run("job", "1234")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


@pytest.mark.parametrize(("mode", "job_id"), [("head", "1234"), ("job", "")])
def test_the_head_process_or_a_job_outside_slurm_keeps_the_default(mode, job_id):
    proc = _run(mode, job_id)
    assert proc.returncode == -signal.SIGUSR1, proc.stderr
