"""Environment suites: each family of envs is a registration with Sample Factory (env factory, flags, per-task
summaries), declared in `registry` and imported lazily (a simulator may be missing).

registry    the families, `suite_for_env`/`prepare_env`, `SuiteError`, the task-id observation key
base        what every multi-task suite repeats: env/stat names per task (`TaskFamily`), the one-hot task id,
            `cfg_value`; `PrivilegedObservation` (a partial "obs" and the full "state" of a flat observation)
scoring     the one normalised-score implementation (`ScoreTable`, per-task returns, the suite/* summaries)
minigrid    the embedded default suite; atari, dmlab30, vizdoom, gym: Sample Factory's own families
mujoco      continuous control: SF's MuJoCo envs (`mujoco_<task>`) and their partially observed variants with a
            privileged full-state key (`mujoco_<task>_pomdp`)

May import the ground floor and `kickstart`; nothing above (teachers, sf, agents, ...).
"""
