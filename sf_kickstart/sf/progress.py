"""One readable console line every report interval, and a last one when the run stops, next to Sample Factory's own
FPS lines:

    Progress: 1.23M/2.00M frames (61.5%), ETA 3m12s, suite score 47.3, λ 0.52 (0.26..1.00 over 3 teachers)

frames done / total (all policies), ETA from the frame rate of the last minute, the suite score (the capped mean
normalised score of a suite; the mean episode return otherwise), and λ: the learner's own mean λ_i and the range of
its per-teacher λ_i, from the kickstart summaries it last sent (`tags.KS_STATS_MSG`; kickstarted runs only).

May import: Sample Factory's runner API, the ground floor, `sf.observers`.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Dict, Optional

import numpy as np

from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.utils.utils import log

from sf_kickstart import tags
from sf_kickstart.experiments import format_frames
from sf_kickstart.sf.observers import kickstart_tags

RATE_WINDOW_S = 60.0


def fmt_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress(AlgoObserver):
    def __init__(self, cfg, teacher_names=()):
        self.cfg = cfg
        self.teacher_names = list(teacher_names)
        self.lambda_mean: Optional[float] = None  # the learner's kickstart/lambda
        self.lambdas: Dict[str, float] = {}  # its kickstart/lambda_<teacher>
        self.history = deque()  # (time, frames)
        self.last_print = 0.0

    def on_kickstart_stats(self, runner, msg, policy_id: int) -> None:
        if policy_id == 0:
            stats = kickstart_tags(msg[tags.KS_STATS_MSG])
            self.lambda_mean = stats.get(tags.LAMBDA)
            self.lambdas = {n: stats[tags.teacher_lambda(n)] for n in self.teacher_names if tags.teacher_lambda(n) in stats}

    def on_training_step(self, runner, training_iteration_since_resume: int) -> None:
        now = time.time()
        if now - self.last_print >= runner.report_interval_sec:
            self.last_print = now
            log.info(self.line(runner, now))

    def on_stop(self, runner) -> None:
        if runner.env_steps:
            log.info(self.line(runner, time.time()))

    def score(self, runner) -> Optional[str]:
        stats = runner.policy_avg_stats
        if tags.SUITE_SCORE_KEY in stats and len(stats[tags.SUITE_SCORE_KEY][0]) > 0:
            return f"suite score {float(np.mean(stats[tags.SUITE_SCORE_KEY][0])):.1f}"
        if "reward" in stats and len(stats["reward"][0]) > 0:
            return f"mean return {float(np.mean(stats['reward'][0])):.3f}"
        return None

    def line(self, runner, now: float) -> str:
        done = float(sum(runner.env_steps.values()))
        total = float(self.cfg.train_for_env_steps) * self.cfg.num_policies
        self.history.append((now, done))
        while len(self.history) > 2 and now - self.history[0][0] > RATE_WINDOW_S:
            self.history.popleft()
        parts = [f"{format_frames(done)}/{format_frames(total)} frames ({100 * done / max(total, 1):.1f}%)"]
        (t0, f0), rate = self.history[0], None
        if now > t0 and done > f0:
            rate = (done - f0) / (now - t0)
        parts.append(f"ETA {fmt_duration((total - done) / rate)}" if rate else "ETA ?")
        score = self.score(runner)
        if score:
            parts.append(score)
        if self.lambda_mean is not None:
            v = list(self.lambdas.values())
            spread = f" ({min(v):.3g}..{max(v):.3g} over {len(v)} teachers)" if len(v) > 1 else ""
            parts.append(f"λ {self.lambda_mean:.3g}{spread}")
        return "Progress: " + ", ".join(parts)


def install(cfg, runner, layout=None) -> Progress:
    progress = Progress(cfg, [s.name for s in layout.specs] if layout is not None else [])
    runner.register_observer(progress)
    runner.register_policy_msg_handler(tags.KS_STATS_MSG, progress.on_kickstart_stats)
    return progress
