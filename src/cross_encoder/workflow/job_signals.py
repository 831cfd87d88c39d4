"""Let SLURM's early warning reach the trainer, not the Snakemake that runs it.

The SLURM profile asks for SIGUSR1 some minutes before a training job's time limit
(``--signal=USR1@<seconds>`` in ``slurm_extra``), so that ``cross_encoder.run`` saves a
checkpoint and exits with status 75 while there is time (``cross_encoder.training.preemption``).
SLURM sends that signal to every process of the job's steps. With
snakemake-executor-plugin-slurm a job is: a batch shell that the plugin writes itself
(``sbatch --wrap``), a Snakemake in it that starts one job step (``srun``), a second Snakemake
in that step, and the rule's command. The step's Snakemake would die of SIGUSR1 (Python's
default action), SLURM would then end the step and the trainer would be killed before its
checkpoint is written.

So a Snakemake that runs a job inside SLURM ignores SIGUSR1 (:func:`ignore_warning_in_job`,
called from ``workflow/rules/common.smk`` while the Snakefile is read). The rule's process
inherits the ignored signal; ``cross_encoder.run`` installs its own handler when training
starts. The train rule starts its launcher with ``exec``, so the trainer (or ``torchrun``) *is*
the rule's process: no shell between them dies of the signal or of SIGTERM at the time limit,
and the step's Snakemake waits for the trainer to finish its save (Snakemake's SIGTERM
handler waits for running jobs).

``--signal=B:USR1`` does not work with this plugin: it signals only the batch shell, which the
plugin writes without a ``trap``, so the shell dies and the job fails at once (SLURM state
FAILED, reason JobLaunchFailure, seen on slurm 22.05).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

WARNING_SIGNAL = signal.SIGUSR1


def ignore_warning_in_job(runs_a_job: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """Ignore SIGUSR1 in this process when it is a Snakemake running a job in SLURM.

    ``runs_a_job``: Snakemake's execution mode is not the head process's (``ExecMode.DEFAULT``).
    In a SLURM job ``SLURM_JOB_ID`` is set. Returns whether the signal is now ignored.
    """
    if not runs_a_job or not environ.get("SLURM_JOB_ID"):
        return False
    signal.signal(WARNING_SIGNAL, signal.SIG_IGN)
    return True
