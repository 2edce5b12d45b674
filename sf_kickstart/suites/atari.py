"""Atari through Sample Factory's example (``sf_examples.atari``), plus a multi-game suite for kickstarting.

Env names (``--env=...``):
    ``atari_<game>``   Sample Factory's own 57 single-game envs (``sf_examples.atari.atari_utils.ATARI_ENVS``: e.g.
                       ``atari_breakout``, ``atari_spaceinvaders``, ``atari_kongfumaster``), built by SF's
                       ``make_atari_env`` unchanged (its minimal action set, observation ``(4, 84, 84)`` uint8, no
                       task id), so teachers trained by plain Sample Factory load and match. We only add a per-game
                       ``episode_extra_stats`` entry (spaces unchanged) so the scores below work for one game too.
    ``atari_suite``    a multi-game suite, by default ``DEFAULT_SUITE_GAMES`` (breakout, pong, spaceinvaders, qbert,
                       seaquest);
    ``atari_57``       the suite over all 57 games (``ATARI_57``, in SF's order);
    ``atari_suite_<g1>+<g2>+...``  a suite over the listed games, in that order (e.g. ``atari_suite_pong+breakout``).

Every env of a suite has the same spaces, whatever game it plays:
    observation  Dict(obs=Box(0, 255, (framestack, 84, 84), uint8), task_id=Box(0, 1, (num_games,), float32)),
                 ``task_id`` (``registry.TASK_ID_KEY``) the one-hot of the game's index in the suite's game list;
    action       Discrete(18): ALE's *full* action set (``full_action_space=True``) for every game, in ALE's order
                 (``FULL_ACTION_MEANINGS``); where ALE's legal set is smaller (Skiing: 9 actions, no FIRE) a FIRE
                 variant is mapped to the same move without FIRE (``FullActionSet``).
Each env instance plays one game for its whole life: ``games[env_config.env_id % num_games]`` (game 0 without an
env_config), so ``num_workers * num_envs_per_worker`` should be a multiple of the number of games. With
``--atari_suite_task=<game>`` every instance plays that game, the spaces unchanged: that is how a per-game teacher for
the suite is trained, and how one game of the suite is evaluated.

Preprocessing is SF's Atari chain (the SB3/CleanRL one), built from SF's own wrappers in SF's order:
RecordEpisodeStatistics, NoopReset(30), MaxAndSkip(--env_frameskip), EpisodicLife, FireReset (when the game's
*minimal* action set has FIRE, as SF decides it), ClipReward, resize 84x84, grayscale, FrameStack(--env_framestack).
The suite cannot call ``make_atari_env`` itself only because that function ``gym.make``s without
``full_action_space``. ale-py >= 0.9 registers its ids only when imported, so every factory imports ``ale_py`` in the
worker process (SF_NOTES); ale-py 0.10.2 ships the ROMs, nothing is downloaded. It lacks
``SurroundNoFrameskip-v4``, which is registered here with NoFrameskip-v4's settings.

Per-game stats: at the end of every *game* (all lives; RecordEpisodeStatistics sits below EpisodicLife and the reward
clipping) the env puts ``info["episode_extra_stats"] = {"atari_<game>_raw_score": score}`` (``stat_key``).
Sample Factory's non-batched sampler (Atari's default) forwards it; the batched one drops it.

Suite score (``install(cfg, runner)``, the one implementation in ``sf_kickstart.suites.scoring``), human-normalised like DMLab-30's in IMPALA:
    1. per game, the mean raw score R_g over its last ``--stats_avg`` games (a sliding window per policy);
    2. N_g = 100 * (R_g - RANDOM_SCORES[g]) / (HUMAN_SCORES[g] - RANDOM_SCORES[g])  (0 = random, 100 = human);
    3. capped C_g = min(100, N_g);   4. ``suite/score`` = mean of C_g over the games with at least one result.
Tensorboard: ``suite/<game>_score`` (R_g), ``suite/<game>_normalized`` (N_g), ``suite/score``,
``suite/mean_normalized`` (mean N_g, uncapped), ``suite/tasks_seen`` (also as Atari's historical alias
``suite/games_seen``); the score also goes to
``runner.policy_avg_stats["suite_score"][policy_id]`` (``registry.SUITE_SCORE_KEY``, a deque of length 1), the PBT
objective (``--pbt_target_objective=suite_score``).

Human and random scores: the standard table of the DQN / Agent57 literature (random: Mnih et al. 2015 and Badia et
al. 2020; human: the "professional human game tester" scores, extended to 57 games in Agent57, Badia et al. 2020,
Table H.1; also ``dqn_zoo/atari_data.py``), keyed by SF's short game names.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import gymnasium as gym
import numpy as np

from sample_factory.algo.utils.context import global_env_registry
from sample_factory.envs.env_utils import register_env
from sample_factory.envs.env_wrappers import (
    ClipRewardEnv,
    EpisodicLifeEnv,
    FireResetEnv,
    MaxAndSkipEnv,
    NoopResetEnv,
    NumpyObsWrapper,
)
from sample_factory.utils.utils import log
from sf_examples.atari.atari_params import atari_override_defaults
from sf_examples.atari.atari_utils import ATARI_ENVS, ATARI_H, ATARI_W, atari_env_by_name, make_atari_env

from sf_kickstart import tags
from sf_kickstart.suites.base import TaskFamily, cfg_value, one_hot, task_id_space, with_episode_stat
from sf_kickstart.suites.registry import TASK_ID_KEY, SuiteError
from sf_kickstart.suites.scoring import ScoreTable, TaskReturns, install_suite_score

ENV_PREFIX = "atari_"
SUITE_ENV = "atari_suite"
SUITE_57_ENV = "atari_57"
CUSTOM_SUITE_PREFIX = "atari_suite_"
CUSTOM_SUITE_SEP = "+"
FULL_ACTION_SPACE_SIZE = 18

# ---------------------------------------------------------------------------------------------------------------------
# games

#: SF's short name (``atari_<short>``) -> SF's gymnasium id, in SF's order
SF_GAME_IDS: Dict[str, str] = {spec.name[len(ENV_PREFIX) :]: spec.env_id for spec in ATARI_ENVS}
ATARI_57: List[str] = list(SF_GAME_IDS)
DEFAULT_SUITE_GAMES: List[str] = ["breakout", "pong", "spaceinvaders", "qbert", "seaquest"]

#: (random, human) raw game scores; see the module docstring for the sources
_SCORES: Dict[str, Tuple[float, float]] = {
    "alien": (227.8, 7127.7),
    "amidar": (5.8, 1719.5),
    "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3),
    "asteroid": (719.1, 47388.7),  # Asteroids
    "atlantis": (12850.0, 29028.1),
    "bankheist": (14.2, 753.1),
    "battlezone": (2360.0, 37187.5),
    "beamrider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4),
    "bowling": (23.1, 160.7),
    "boxing": (0.1, 12.1),
    "breakout": (1.7, 30.5),
    "centipede": (2090.9, 12017.0),
    "choppercommand": (811.0, 7387.8),
    "crazyclimber": (10780.5, 35829.4),
    "defender": (2874.5, 18688.9),
    "demonattack": (152.1, 1971.0),
    "doubledunk": (-18.6, -16.4),
    "enduro": (0.0, 860.5),
    "fishingderby": (-91.7, -38.7),
    "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5),
    "gravitar": (173.0, 3351.4),
    "hero": (1027.0, 30826.4),
    "icehockey": (-11.2, 0.9),
    "jamesbond": (29.0, 302.8),
    "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2665.5),
    "kongfumaster": (258.5, 22736.3),  # KungFuMaster (SF's spelling)
    "montezuma": (0.0, 4753.3),  # MontezumaRevenge
    "mspacman": (307.3, 6951.6),
    "namethisgame": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6),
    "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6),
    "privateye": (24.9, 69571.3),  # PrivateEye (SF spells it atari_privateye)
    "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0),
    "roadrunner": (11.5, 7845.0),
    "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7),
    "skiing": (-17098.1, -4336.9),
    "solaris": (1236.3, 12326.7),
    "spaceinvaders": (148.0, 1668.7),
    "stargunner": (664.0, 10250.0),
    "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3),
    "timepilot": (3568.0, 5229.2),
    "tutankham": (11.4, 167.6),
    "upndown": (533.4, 11693.2),
    "venture": (0.0, 1187.5),
    "videopinball": (16256.9, 17667.9),
    "wizardofwor": (563.5, 4756.5),
    "yarsrevenge": (3092.9, 54576.9),
    "zaxxon": (32.5, 9173.3),
}
RANDOM_SCORES: Dict[str, float] = {g: s[0] for g, s in _SCORES.items()}
HUMAN_SCORES: Dict[str, float] = {g: s[1] for g, s in _SCORES.items()}

# ---------------------------------------------------------------------------------------------------------------------
# names


def is_suite_env(env_name: str) -> bool:
    return env_name in (SUITE_ENV, SUITE_57_ENV) or env_name.startswith(CUSTOM_SUITE_PREFIX)


def suite_games(env_name: str) -> List[str]:
    """The ordered game list of a suite env name (index == task id). SuiteError for anything else."""
    if env_name == SUITE_ENV:
        return list(DEFAULT_SUITE_GAMES)
    if env_name == SUITE_57_ENV:
        return list(ATARI_57)
    if env_name.startswith(CUSTOM_SUITE_PREFIX):
        games = env_name[len(CUSTOM_SUITE_PREFIX) :].split(CUSTOM_SUITE_SEP)
        unknown = [g for g in games if g not in SF_GAME_IDS]
        if not games or unknown:
            raise SuiteError(
                f"Atari suite {env_name!r}: unknown games {unknown or games}; "
                f"expected {CUSTOM_SUITE_PREFIX}<g1>{CUSTOM_SUITE_SEP}<g2>... with games from {', '.join(ATARI_57)}"
            )
        if len(set(games)) != len(games):
            raise SuiteError(f"Atari suite {env_name!r}: a game is listed twice")
        return games
    raise SuiteError(f"{env_name!r} is not an Atari suite ({SUITE_ENV}, {SUITE_57_ENV} or {CUSTOM_SUITE_PREFIX}...)")


def validate_env_name(env_name: str) -> List[str]:
    """Return the games `env_name` covers (one for a single-game env); SuiteError for an unknown name."""
    if is_suite_env(env_name):
        return suite_games(env_name)
    game = FAMILY.single_task(env_name, SF_GAME_IDS)
    if game is not None:
        return [game]
    raise SuiteError(
        f"Unknown Atari env {env_name!r}: expected {SUITE_ENV}, {SUITE_57_ENV}, {CUSTOM_SUITE_PREFIX}<g1>+<g2>... or "
        f"one of SF's single games {', '.join(ENV_PREFIX + g for g in ATARI_57)}"
    )


def task_names(env_name: str) -> List[str]:
    """Ordered game names (index == task id): the suite's games, or ``[game]`` for a single-game env."""
    return validate_env_name(env_name)


FAMILY = TaskFamily(ENV_PREFIX, "raw_score", validate_env_name)
task_envs = FAMILY.task_envs  # the games an env plays -> ``atari_<game>``
stat_key = FAMILY.stat_key  # a game's raw score (all lives) in info["episode_extra_stats"]
STAT_KEY_TO_GAME: Dict[str, str] = FAMILY.stat_keys(ATARI_57)


# ---------------------------------------------------------------------------------------------------------------------
# ale-py


def ensure_ale_registered() -> None:
    """Register ale-py's ids in *this* process (ale-py >= 0.9 does it on import only) and fill in a missing v4 id.

    Raises a SuiteError naming the fix when ale-py is missing: never swallowed, so a worker fails loudly."""
    try:
        import ale_py  # noqa: F401  (registers ALE/* and *NoFrameskip-v4 with gymnasium)
    except ImportError as e:
        raise SuiteError(f"Atari needs ale-py with its bundled ROMs: pip install ale-py==0.10.2 ({e})") from e
    # ale-py 0.10.2 registers ALE/Surround-v5 but not SurroundNoFrameskip-v4, which SF's atari_surround uses
    if "SurroundNoFrameskip-v4" not in gym.registry and "ALE/Surround-v5" in gym.registry:
        v5 = gym.registry["ALE/Surround-v5"]
        kwargs = dict(v5.kwargs)
        kwargs.update(repeat_action_probability=0.0, frameskip=1, full_action_space=False)
        kwargs.setdefault("max_num_frames_per_episode", 108000)
        gym.register(id="SurroundNoFrameskip-v4", entry_point=v5.entry_point, kwargs=kwargs)


def check_available(env_name: str) -> None:
    validate_env_name(env_name)
    ensure_ale_registered()
    missing = [g for g in validate_env_name(env_name) if SF_GAME_IDS[g] not in gym.registry]
    if missing:
        raise SuiteError(f"{env_name!r}: ale-py has no env for {missing}")


# ---------------------------------------------------------------------------------------------------------------------
# wrappers


def _episode_score(info: Mapping[str, Any]) -> Optional[float]:
    """Raw score of a finished game from RecordEpisodeStatistics' info["episode"], else None."""
    ep = info.get("episode") if hasattr(info, "get") else None
    if not ep or "r" not in ep:
        return None
    return float(np.asarray(ep["r"]).reshape(-1)[0])


class AtariGameStats(gym.Wrapper):
    """Adds ``{stat_key(game): raw score}`` to ``info["episode_extra_stats"]`` when a whole game ends."""

    def __init__(self, env, game: str):
        super().__init__(env)
        self.game = game
        self._key = stat_key(game)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        score = _episode_score(info)
        if score is not None:
            info = with_episode_stat(info, self._key, score)
        return obs, reward, terminated, truncated, info


class AtariTaskId(gym.ObservationWrapper):
    """``obs -> {"obs": obs, TASK_ID_KEY: one-hot(task_id, num_tasks)}``."""

    def __init__(self, env, task_id: int, num_tasks: int):
        super().__init__(env)
        if not 0 <= task_id < num_tasks:
            raise SuiteError(f"task id {task_id} outside [0, {num_tasks})")
        self.task_id = task_id
        self._one_hot = one_hot(task_id, num_tasks)
        self.observation_space = gym.spaces.Dict({"obs": env.observation_space, TASK_ID_KEY: task_id_space(num_tasks)})

    def observation(self, observation):
        return {"obs": observation, TASK_ID_KEY: self._one_hot.copy()}


#: ALE's full action set, in ALE's order (``ale_py.Action`` values 0..17)
FULL_ACTION_MEANINGS: List[str] = [
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE",
]  # fmt: skip


def full_action_mapping(meanings: List[str]) -> List[int]:
    """For each of ALE's 18 actions, the index of the env action that does the same (a FIRE variant the game does
    not accept falls back to the move without FIRE, and FIRE alone to NOOP)."""
    mapping = []
    for name in FULL_ACTION_MEANINGS:
        if name in meanings:
            mapping.append(meanings.index(name))
        else:
            move = name.replace("FIRE", "") or "NOOP"
            mapping.append(meanings.index(move) if move in meanings else meanings.index("NOOP"))
    return mapping


class FullActionSet(gym.ActionWrapper):
    """Discrete(18) in ALE's full-action order over a game whose ``full_action_space`` is smaller.

    ALE 0.10's legal action set of Skiing has 9 actions (no FIRE variants) even with ``full_action_space=True``."""

    def __init__(self, env):
        super().__init__(env)
        self.mapping = np.asarray(full_action_mapping(list(env.unwrapped.get_action_meanings())), dtype=np.int64)
        self.action_space = gym.spaces.Discrete(len(FULL_ACTION_MEANINGS))

    def action(self, action):
        return int(self.mapping[int(action)])


def game_for_env(env_name: str, cfg=None, env_config=None) -> str:
    """The game one env instance plays: --atari_suite_task, else games[env_id % num_games] (game 0 without an
    env_config)."""
    games = validate_env_name(env_name)
    pinned = cfg_value(cfg, "atari_suite_task", None)
    if pinned and is_suite_env(env_name):
        if pinned not in games:
            raise SuiteError(f"--atari_suite_task={pinned!r} is not a game of {env_name!r}: {', '.join(games)}")
        return pinned
    if len(games) == 1 or env_config is None:
        return games[0]
    env_id = cfg_value(env_config, "env_id", 0)
    return games[int(env_id or 0) % len(games)]


def make_full_action_game(game: str, cfg=None, render_mode: Optional[str] = None) -> gym.Env:
    """One game with ALE's full 18-action set and SF's Atari preprocessing (see the module docstring)."""
    ensure_ale_registered()
    spec = atari_env_by_name(ENV_PREFIX + game)
    env = gym.make(spec.env_id, full_action_space=True, render_mode=render_mode)
    if list(env.unwrapped.get_action_meanings()) != FULL_ACTION_MEANINGS:
        env = FullActionSet(env)
    if spec.default_timeout is not None:
        env._max_episode_steps = spec.default_timeout  # as SF's make_atari_env does
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = NoopResetEnv(env, noop_max=30)
    env = MaxAndSkipEnv(env, skip=int(cfg_value(cfg, "env_frameskip", 4)))
    env = EpisodicLifeEnv(env)
    minimal_actions = env.unwrapped.ale.getMinimalActionSet()
    if any(a.name == "FIRE" for a in minimal_actions):  # SF: "FIRE" in the (minimal) action meanings
        env = FireResetEnv(env)
    env = ClipRewardEnv(env)
    env = gym.wrappers.ResizeObservation(env, (ATARI_H, ATARI_W))
    env = gym.wrappers.GrayScaleObservation(env)
    env = gym.wrappers.FrameStack(env, int(cfg_value(cfg, "env_framestack", 4)))
    env = NumpyObsWrapper(env)
    return env


def make_atari_suite_env(full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """Sample Factory env factory for the suites (module level: SF pickles the registry into spawned workers)."""
    games = suite_games(full_env_name)
    game = game_for_env(full_env_name, cfg, env_config)
    env = make_full_action_game(game, cfg, render_mode)
    if env.action_space != gym.spaces.Discrete(FULL_ACTION_SPACE_SIZE):
        raise SuiteError(f"{game}: expected Discrete({FULL_ACTION_SPACE_SIZE}) actions, got {env.action_space}")
    env = AtariGameStats(env, game)
    return AtariTaskId(env, games.index(game), len(games))


def make_atari_game_env(full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """Sample Factory env factory for SF's single games: SF's make_atari_env, with ale_py imported in this process."""
    ensure_ale_registered()
    env = make_atari_env(full_env_name, cfg, env_config, render_mode)
    return AtariGameStats(env, full_env_name[len(ENV_PREFIX) :])


def register(env_name: str) -> None:
    """Register SF's 57 single games and `env_name` (a suite, if it is one); SuiteError for an unknown name."""
    validate_env_name(env_name)
    registry = global_env_registry()
    for game in ATARI_57:
        if registry.get(ENV_PREFIX + game) is not make_atari_game_env:
            register_env(ENV_PREFIX + game, make_atari_game_env)
    suites = {SUITE_ENV, SUITE_57_ENV} | ({env_name} if is_suite_env(env_name) else set())
    for name in sorted(suites):
        if registry.get(name) is not make_atari_suite_env:
            register_env(name, make_atari_suite_env)


def add_args(parser) -> None:
    parser.add_argument(
        "--atari_suite_task",
        default=None,
        type=str,
        help="Atari suites only: every env instance plays this game (e.g. breakout) with the suite's spaces "
        "(18 actions, task-id one-hot over the suite), to train a per-game teacher or evaluate one game",
    )


def override_defaults(env_name: str, parser) -> None:
    atari_override_defaults(env_name, parser)
    if is_suite_env(env_name):
        # the one-hot task id is not an image: keep it out of obs normalisation (obs_scale applies to "obs" only)
        parser.set_defaults(normalize_input_keys=["obs"])


# ---------------------------------------------------------------------------------------------------------------------
# scores


SCORES = ScoreTable(RANDOM_SCORES, HUMAN_SCORES)


def normalized_score(game: str, score: float) -> float:
    """Human-normalised score in percent: 0 = random play, 100 = the human tester. Uncapped."""
    return SCORES.normalized(game, score)


def capped_mean_normalized_score(mean_scores: Mapping[str, float], cap: float = 100.0) -> float:
    """Mean over the given games of min(cap, normalised score of the game's mean raw score)."""
    return SCORES.capped_mean(mean_scores, cap)


def install(cfg, runner) -> TaskReturns:
    """Register the per-game episodic-stats handler and the suite/* summaries on a Sample Factory runner."""
    games = validate_env_name(cfg.env)
    pinned = cfg_value(cfg, "atari_suite_task", None)
    if pinned and is_suite_env(cfg.env):
        game_for_env(cfg.env, cfg, None)  # validates the pinned game
        games_played = [pinned]
    else:
        games_played = games
    num_envs = int(cfg_value(cfg, "num_workers", 1)) * int(cfg_value(cfg, "num_envs_per_worker", 1))
    if len(games_played) > 1 and num_envs % len(games_played) != 0:
        log.warning(
            "%s: %d env instances over %d games (env_id %% %d): some games get more samples than others; "
            "use num_workers * num_envs_per_worker divisible by %d",
            cfg.env,
            num_envs,
            len(games_played),
            len(games_played),
            len(games_played),
        )
    # suite/tasks_seen like every suite (the report trims on it), and Atari's historical suite/games_seen
    return install_suite_score(cfg, runner, games_played, STAT_KEY_TO_GAME, SCORES, seen_aliases=[tags.GAMES_SEEN])
