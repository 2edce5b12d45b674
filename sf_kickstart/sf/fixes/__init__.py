"""Sample Factory 2.1.1's defects, fixed by subclassing (never by editing site-packages), each named and documented
once, in the module that fixes it. These fixes apply to every run through sf_kickstart.train, teacher or not; they
know nothing of kickstarting.

May import: Sample Factory, signal_slot, psutil, torch, the ground floor (`tags`, `experiments`, `checkpoints`), and
each other.
Never anything kickstart-specific (`sf_kickstart.kickstart`, `teachers`, `suites`, the rest of `sf`).

The fixes, one line each:
  workers.ExitWithParentOnUnpickle     worker processes exit when the main process is gone (SF's run on, orphaned)
  workers.guarded / fail_process       an exception in a worker's slot ends its process (SF logs it and idles forever)
  workers.RobustLearnerWorker          a checkpoint that cannot be written is a clear error, not a hung learner;
                                       its batcher thread is a daemon (a learner whose loop died hung)
  runner.RobustRunner                  a dead process stops the run; `--train_for_seconds` works; processes are joined
                                       after a failure; a process dying while the run stops is not waited for;
                                       `register_policy_msg_handler` appends (SF stores a bare function in a list slot)
  death_watch.DeathWatch               a process killed while holding a queue lock cannot hang the run forever
  signals.StopSignals                  SIGINT/SIGTERM stop with a final checkpoint (exit 130/143)
  learner.FixedLearner                 V-trace summaries do not crash; an unloadable checkpoint is an error, never a
                                       fresh start from random weights; non-finite minibatches are skipped and
                                       non-finite checkpoints never written (`nonfinite`); a PBT exploit keeps the
                                       mutated learning rate
  lr_schedule.FrameLinearDecay         `--lr_schedule=linear_decay` is accepted, decays by frames, survives resume
                                       and PBT (SF's refuses the flag, restarts on resume, ignores frameskip)
Fixed elsewhere, where the code they concern lives:
  sf_kickstart.envprobe.probe_env_info the env probe in a spawned process has a timeout (SF's waits forever)
  sf_kickstart.sf.setup.prepare        cfg is an AttrDict before PBT (SF #263: 'Namespace' object is not subscriptable)
  sf_kickstart.agents.enjoy            SF's enjoy loads checkpoints with the project's loader and survives no episode
"""
