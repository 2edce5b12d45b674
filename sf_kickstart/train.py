"""python -m sf_kickstart.train --env=ENV [Sample Factory flags] [kickstart flags]

The top of the layers: `sf.setup` checks the input and builds the teachers' layout (before any worker starts), this
module composes the runner with what sits above the Sample Factory integration (suites, periodic evaluation of
`agents`, the in-process PBT of `populations`) and runs it. Flags: `sf.setup.add_kickstart_args`.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from sample_factory.algo.utils.misc import ExperimentStatus

from sf_kickstart.agents import periodic_eval
from sf_kickstart.sf import progress
from sf_kickstart.sf.observers import AdaptiveLambda
from sf_kickstart.sf.runner import KickstartRunner
from sf_kickstart.sf.storage import KickstartLayout
from sf_kickstart.errors import UserError, exit_status
from sf_kickstart.sf.setup import prepare
from sf_kickstart.suites.registry import Suite


def make_runner(cfg, layout: Optional[KickstartLayout], suite: Suite) -> KickstartRunner:
    if cfg.serial_mode:
        raise SystemExit("sf_kickstart.train runs Sample Factory's parallel runner: use --serial_mode=False")
    runner = KickstartRunner(cfg, layout)
    suite.install(cfg, runner)
    progress.install(cfg, runner, layout)  # the Progress: console line
    periodic_eval.install(cfg, runner)  # --eval_every_frames
    if layout is not None and layout.score_driven:  # adaptive or re-engaging λ; after the suite's: reads its scores
        runner.register_observer(AdaptiveLambda(cfg, layout.specs, layout.task_names))
    if cfg.with_pbt:
        from sf_kickstart.populations.pbt import KickstartPBT

        runner.register_observer(KickstartPBT(cfg, runner, layout))
    return runner


def main(argv: Optional[List[str]] = None) -> int:
    try:
        cfg, layout, suite = prepare(argv)
    except UserError as exc:
        return exit_status(exc)
    runner = make_runner(cfg, layout, suite)
    status = runner.init()
    if status != ExperimentStatus.SUCCESS:
        print(
            "sf_kickstart: error: Sample Factory rejected the configuration before starting any worker "
            "(its reason is logged above, e.g. 'Normalized returns are not supported with vtrace')",
            file=sys.stderr,
        )
        return 2
    status = runner.run()
    periodic_eval.finish(runner)  # the final checkpoint's evaluation (--eval_every_frames)
    return runner.exit_code(status)



if __name__ == "__main__":
    sys.exit(main())
