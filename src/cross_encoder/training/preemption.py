"""Stop training cleanly on a time limit or a preemption: save a complete checkpoint at the
next step boundary, then exit with :data:`EXIT_PREEMPTED`.

SLURM ends a job at its time limit (or when a higher-priority job preempts it) with SIGTERM,
waits ``KillWait`` seconds (30 by default), then sends SIGKILL; ``--signal=USR1@<seconds>``
(the SLURM profile's ``slurm_extra``) asks for SIGUSR1 that long before the limit; how it
reaches this process through the executor plugin's job: ``cross_encoder.workflow.job_signals``.
HF's Trainer saves only every ``save_steps``, so
without this everything since the last checkpoint is lost. On SIGTERM or SIGUSR1 the
:class:`StopOnSignal` callback lets the current optimizer step finish, then every rank saves
(``control.should_save``: model, optimizer, scheduler, RNG states, DeepSpeed shards) and
training stops by raising :class:`Preempted`; ``cross_encoder.run`` exits with
:data:`EXIT_PREEMPTED`, and the next run resumes from that checkpoint like after any other
interruption (``trainer.resume_checkpoint``), with the same result as an uninterrupted run.

With several processes (torchrun, DeepSpeed) the signal may reach some ranks only, or reach
them during different steps: after each step the ranks agree (an all-reduce of one number)
so that all of them save the same step and stop together.
"""

from __future__ import annotations

import logging
import signal

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

EXIT_PREEMPTED = 75  # EX_TEMPFAIL (sysexits.h): try again, it will resume
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(RuntimeError):
    """Training stopped on a signal after saving a checkpoint to resume from."""


class StopOnSignal(TrainerCallback):
    """Handle :data:`SIGNALS` while training: save at the next step boundary and stop."""

    def __init__(self, signals=SIGNALS):
        self.signals = tuple(signals)
        self.received: int | None = None  # the first signal, on this rank
        self.stopping = False  # agreed by all ranks
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        if self.received is None:
            self.received = signum
            logger.warning(
                "received %s: saving a checkpoint after this step, then stopping",
                signal.Signals(signum).name,
            )

    def on_train_begin(self, args, state, control, **kwargs):
        for sig in self.signals:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: nothing can be installed
                logger.warning("cannot handle %s outside the main thread", sig.name)

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()
        if self.stopping:  # the save did not happen (e.g. save_strategy best)
            raise Preempted(f"stopped at step {state.global_step} without a checkpoint")

    def _restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_step_end(self, args, state, control, **kwargs):
        if self._agree(args, self.received is not None):
            self.stopping = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if self.stopping:
            self.stopping = False
            self._restore()
            name = signal.Signals(self.received).name if self.received else "another rank's signal"
            raise Preempted(
                f"stopped on {name} after saving "
                f"checkpoint-{state.global_step} in {args.output_dir}; run the same command "
                "again to resume from it"
            )

    @staticmethod
    def _agree(args, mine: bool) -> bool:
        """Whether any rank received a signal (every rank calls this after every step)."""
        import torch
        import torch.distributed as dist

        if args.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
            return mine
        flag = torch.tensor([int(mine)], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
