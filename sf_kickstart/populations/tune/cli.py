"""python -m sf_kickstart.tune [sf_kickstart.train flags] [--num_policies=N] [tune flags]

A Population Based Training population of kickstarted students on Ray Tune (`ray.tune.schedulers.
PopulationBasedTraining`), for populations beyond one machine. Every `sf_kickstart.train` flag passes through to each
member; Sample Factory's PBT flags keep their meaning:
  --num_policies            population size (>= 2)
  --train_for_env_steps     each member's frame budget
  --pbt_period_env_steps    the perturbation interval (each member's `sf_kickstart.train` run covers one)
  --pbt_start_mutation      no exploit before this many frames (Tune's burn-in)
  --pbt_replace_fraction    the bottom / top fraction that exploits / is copied (Tune's quantile_fraction)
  --pbt_mutation_rate, --pbt_perturb_min, --pbt_perturb_max, --kickstart_pbt_zero_below: explore (space.py)
Ours: see `add_tune_args`. Everything is checked before Ray starts: bad input is one error, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from sample_factory.utils.utils import str2bool

from sf_kickstart import tags
from sf_kickstart.errors import UserError, exit_status
from sf_kickstart.populations.tune.layout import POPULATION_MARKER, member_name, trial_dirname
from sf_kickstart.processes import python_path

SF_METRICS = (tags.REWARD, "len/len", "policy_stats/avg_true_objective")
# flags the driver sets for each member (a member is one Sample Factory policy trained in its own experiment dir)
MEMBER_FLAGS = ("num_policies", "with_pbt", "experiment", "train_dir", "train_for_env_steps", "restart_behavior", "seed")


class TuneInputError(UserError):
    pass


def add_tune_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ray tune")
    g.add_argument("--ray_address", default=None, help="an existing Ray cluster ('auto', or host:port of its head); "
                   "default: start a local Ray on this machine")
    g.add_argument("--num_cpus", default=None, type=int, help="local Ray: CPUs it may use (default: all)")
    g.add_argument("--num_gpus", default=None, type=int, help="local Ray: GPUs it may use (default: Ray detects)")
    g.add_argument("--tune_cpus_per_trial", default=None, type=float, help="CPUs a member asks for (default: "
                   "--num_workers, the busy processes; its learner and inference worker share them)")
    g.add_argument("--tune_gpus_per_trial", default=None, type=float, help="GPUs a member asks for (default: 1 with "
                   "--device=gpu, else 0)")
    g.add_argument("--tune_metric", default=None, help="tensorboard tag PBT ranks members by (default: suite/score "
                   "on a scored suite, else reward/reward, the mean return)")
    g.add_argument("--tune_hyperparams", default=None, help="comma-separated: learning_rate, exploration_loss_coeff, "
                   "kickstart_lambda, kickstart_rho (all ρ_i) or kickstart_rho_<teacher> (default: all of them)")
    g.add_argument("--tune_resample_probability", default=0.25, type=float,
                   help="an explored value is resampled from its prior with this probability, else perturbed")
    g.add_argument("--tune_prior_range", default=4.0, type=float, help="prior: log-uniform [v/R, v*R] around the "
                   "flags' value v; also the initial members' distribution")
    g.add_argument("--tune_synch", default=False, type=str2bool, help="synchronous PBT: every member waits at each "
                   "interval (deterministic exploits; the default asynchronous PBT scales better)")
    g.add_argument("--tune_max_failures", default=3, type=int, help="retries of a crashed member from its last "
                   "checkpoint before it counts as failed (the population goes on)")
    g.add_argument("--tune_checkpoints_to_keep", default=0, type=int, help="Tune checkpoints kept per member (0: all; "
                   "with Ray 2.60 a limit can delete a checkpoint that an exploiting member still needs for a retry)")
    g.add_argument("--tune_object_store_mb", default=128, type=int, help="local Ray: object store size (MB)")


def split_argv(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
    p = argparse.ArgumentParser(prog="python -m sf_kickstart.tune", add_help=False)
    add_tune_args(p)
    return p.parse_known_args(list(argv))


def strip_flags(argv: Sequence[str], names: Sequence[str]) -> List[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a[2:].split("=", 1)[0] if a.startswith("--") else None
        if name in names:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def written_tags(cfg, suite) -> List[str]:
    """The score tags every run of this env writes (a suite with a suite score writes its own episode summaries
    instead of Sample Factory's reward/len ones)."""
    if not suite.has_suite_score:
        return list(SF_METRICS)
    out = [*tags.SUITE_AGGREGATES, f"policy_stats/avg_{tags.SUITE_SCORE_KEY}"]
    for task in suite.task_names(cfg.env):
        out += [tags.task_score(task), tags.task_normalized(task)]
    return out


def check_population(cfg, args) -> None:
    if cfg.num_policies < 2:
        raise TuneInputError(f"a PBT population needs --num_policies >= 2 (got {cfg.num_policies})")
    if cfg.pbt_period_env_steps <= 0 or cfg.train_for_env_steps <= 0:
        raise TuneInputError("--pbt_period_env_steps and --train_for_env_steps must be > 0")
    if cfg.train_for_env_steps >= 1e12:
        raise TuneInputError("give each member a frame budget: --train_for_env_steps")
    if args.tune_max_failures < 0 or args.tune_checkpoints_to_keep < 0:
        raise TuneInputError("--tune_max_failures and --tune_checkpoints_to_keep must be >= 0")
    if not 0 < cfg.pbt_replace_fraction <= 0.5:
        raise TuneInputError("--pbt_replace_fraction must be in (0, 0.5]")


def resources(cfg, args) -> Dict[str, float]:
    cpus = args.tune_cpus_per_trial if args.tune_cpus_per_trial is not None else max(1, cfg.num_workers)
    gpus = args.tune_gpus_per_trial if args.tune_gpus_per_trial is not None else (1 if cfg.device == "gpu" else 0)
    if cpus <= 0 or gpus < 0:
        raise TuneInputError("--tune_cpus_per_trial must be > 0 and --tune_gpus_per_trial >= 0")
    if args.ray_address is None:
        have = args.num_cpus if args.num_cpus is not None else os.cpu_count()
        if cpus > have:
            raise TuneInputError(f"a member asks for {cpus:g} CPUs but the local Ray has {have} (--num_cpus): no "
                                 f"member could start; lower --tune_cpus_per_trial")
    return {"cpu": cpus, "gpu": gpus}


def member_space(cfg, args, member_argv: List[str], train_dir: str):
    """Member 0's run checked as sf_kickstart.train checks it (teachers, suite, schedule, env in a fresh process), and
    the search space over the members' hyperparameters."""
    from sf_kickstart.sf.setup import prepare as prepare_member
    from sf_kickstart.populations.tune.space import DEFAULT_HYPERPARAMS, SF_KEYS, build_space

    member0 = [f"--train_dir={train_dir}", f"--experiment={cfg.experiment}/{member_name(0)}", "--num_policies=1",
               "--with_pbt=False"]
    mcfg, layout, _ = prepare_member(member_argv + member0)
    teachers = {s.name: float(s.rho) for s in layout.specs} if layout is not None else {}
    names = args.tune_hyperparams.split(",") if args.tune_hyperparams else (DEFAULT_HYPERPARAMS if teachers else SF_KEYS)
    return build_space(mcfg, teachers, [n.strip() for n in names if n.strip()], args.tune_resample_probability,
                       args.tune_prior_range)


def prepare(argv: Sequence[str]):
    """Parse and check everything; returns (cfg, args, space, plan, resources). Raises the project's user errors."""
    from sf_kickstart.sf.setup import parse_args
    from sf_kickstart.populations.tune.trial import TrialPlan

    args, rest = split_argv(argv)
    cfg, suite = parse_args(rest, extra_args=add_tune_args, prog="python -m sf_kickstart.tune", doc=__doc__)  # --help: all
    check_population(cfg, args)
    res = resources(cfg, args)
    train_dir = os.path.abspath(cfg.train_dir)
    root = os.path.join(train_dir, cfg.experiment)
    if os.path.exists(os.path.join(root, POPULATION_MARKER)):
        raise TuneInputError(f"{root} already holds a Tune population: give a new --experiment")
    metric = args.tune_metric or (tags.SUITE_SCORE if suite.has_suite_score else tags.REWARD)
    if metric not in written_tags(cfg, suite):
        raise TuneInputError(f"--tune_metric={metric}: the runs never write this tag; they write "
                             f"{', '.join(written_tags(cfg, suite))}")
    member_argv = strip_flags(rest, MEMBER_FLAGS)
    existed = os.path.exists(root)
    try:
        space = member_space(cfg, args, member_argv, train_dir)
    except BaseException:
        if not existed:  # Sample Factory's checks create member 0's experiment dir: leave nothing behind
            shutil.rmtree(root, ignore_errors=True)
        raise
    plan = TrialPlan(argv=member_argv, train_dir=train_dir, experiment=cfg.experiment,
                     total_frames=int(cfg.train_for_env_steps), interval=int(cfg.pbt_period_env_steps), metric=metric,
                     cwd=os.getcwd(), seed=cfg.seed)
    return cfg, args, space, plan, res


def start_ray(args) -> None:
    import ray

    pythonpath = python_path(os.getcwd())  # the members import the project (and any env module in the cwd)
    if args.ray_address is not None:
        ray.init(address=args.ray_address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
        return
    os.environ["PYTHONPATH"] = pythonpath  # the local Ray's workers inherit it
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=args.num_cpus or os.cpu_count(), num_gpus=args.num_gpus, include_dashboard=False,
             object_store_memory=args.tune_object_store_mb * 1024 * 1024, log_to_driver=False)


def write_marker(plan, cfg, space, status: str, unranked: Optional[Dict[str, int]] = None) -> None:
    os.makedirs(plan.root, exist_ok=True)
    marker = dict(status=status, members=[member_name(i) for i in range(cfg.num_policies)], metric=plan.metric,
                  interval=plan.interval, total_frames=plan.total_frames, hyperparams=space.mutated,
                  defaults=space.defaults)
    if unranked is not None:
        marker["unranked_intervals"] = unranked  # member -> intervals that wrote no metric (trial.ranking)
    with open(os.path.join(plan.root, POPULATION_MARKER), "w") as f:
        json.dump(marker, f, indent=1)


def make_scheduler(cfg, args, space, plan):
    """Ray's PBT on the members' `score` (trial.ranking: NaN for a member whose interval wrote no metric, which PBT
    leaves out of its quantiles)."""
    from ray.tune.schedulers import PopulationBasedTraining

    return PopulationBasedTraining(
        time_attr="env_steps", metric="score", mode="max", perturbation_interval=plan.interval,
        burn_in_period=float(cfg.pbt_start_mutation), quantile_fraction=float(cfg.pbt_replace_fraction),
        custom_explore_fn=space.explore_config, synch=args.tune_synch, log_config=True,
    )


def unranked_intervals(results) -> Dict[str, int]:
    """member -> how many of its results had no score (their interval wrote no metric), from Tune's results."""
    out: Dict[str, int] = {}
    for result in results:
        df = result.metrics_dataframe
        if df is None or "score" not in df or "member" not in df or not len(df):
            continue
        missing = int(df["score"].isna().sum())
        if missing:
            out[member_name(int(df["member"].iloc[-1]))] = missing
    return out


def report_unranked(unranked: Dict[str, int], metric: str) -> None:
    from sf_kickstart.populations.tune.trial import UNRANKED_HINT

    if unranked:
        counts = ", ".join(f"{m}: {n}" for m, n in sorted(unranked.items()))
        print(f"sf_kickstart: intervals too short to rank on {metric} (not ranked: neither exploited nor copied) - "
              f"{counts}. {UNRANKED_HINT}.", file=sys.stderr)


def run_population(cfg, args, space, plan, res) -> int:
    from ray import tune

    from sf_kickstart.populations.tune.trial import run_trial

    scheduler = make_scheduler(cfg, args, space, plan)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(run_trial, plan=plan), res),
        param_space={"hp": tune.grid_search([space.initial(i, cfg.seed or 0) for i in range(cfg.num_policies)])},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=False, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=cfg.experiment, storage_path=plan.train_dir, verbose=1,
            stop={"env_steps": plan.total_frames},  # a member's last result is never a perturbation point
            failure_config=tune.FailureConfig(max_failures=args.tune_max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=args.tune_checkpoints_to_keep or None),
        ),
    )
    write_marker(plan, cfg, space, "running")
    results = tuner.fit()
    failed, unranked = len(results.errors), unranked_intervals(results)
    report_unranked(unranked, plan.metric)
    write_marker(plan, cfg, space, "finished" if not failed else f"{failed} member(s) failed", unranked)
    return 0 if not failed else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg, args, space, plan, res = prepare(argv)
    except UserError as exc:
        return exit_status(exc)
    try:
        start_ray(args)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        print(f"sf_kickstart: error: could not start or reach Ray ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    return run_population(cfg, args, space, plan, res)
