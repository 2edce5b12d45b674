"""One frozen teacher: its SF experiment directory loaded and validated into an eval-mode model without gradients.

A teacher is any SF experiment dir: its own `config.json` decides the architecture (built with SF's model factory,
so plain SF checkpoints work), its latest `checkpoint_p<policy>/checkpoint_*.pth` gives the weights and its own
observation-normaliser statistics. Teachers are never child modules of the student (not in its state_dict, optimizer
or checkpoints). `FrozenTeacher.forward` is the reference every faster executor (teachers.stacked) is checked against.

An experiment dir is read once (`read_teacher` -> `TeacherFiles`: its config.json and one checkpoint, with the sha256
of the bytes loaded), and a `FrozenTeacher` is built from what was read, so a caller can check the config (e.g. the
spaces of the env it was trained on) before any model is built, and never reads a file twice. A failure to build the
model is raised through the caller's `fail` (`errors.Fail`, default: a TeacherError naming the teacher), so every
caller gets its own error class and wording first hand.

Inputs (`teachers.inputs`): a teacher reads, by key name, the keys it was trained on (`obs_keys`, its own names,
pinned by the set-up) from the student env's observation, each from the key its obs map names (`input_keys`), and
its model, normaliser included, is built on those keys with the student env's spaces (`obs_space`).

Outputs: `forward` gives the teacher's SF `action_logits` for any action space SF has (categorical logits; a Box's
means, tanh-scaled where its config says so, and log-stds, state-dependent or its learned parameter; a Tuple's parts)
and, with `values=True`, the critic's raw output as a last column; `values_in_return_units` undoes the teacher's own
return normalisation (`--normalize_returns`), so a value estimate means the same whatever the teacher trained with.

May import: Sample Factory's model code, the ground floor, `teachers.spec`, `teachers.inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from sample_factory.model.action_parameterization import ActionParameterizationDefault
from sample_factory.model.actor_critic import ActorCriticSharedWeights, create_actor_critic
from sample_factory.model.model_utils import get_rnn_size
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.checkpoints import load_verified
from sf_kickstart.errors import Fail, prefixed
from sf_kickstart.experiments import latest_checkpoint, read_config
from sf_kickstart.teachers.inputs import model_keys, same_box, teacher_view
from sf_kickstart.teachers.spec import TeacherError, TeacherSpec


def load_teacher_cfg(exp_dir: str) -> AttrDict:
    return AttrDict(read_config(exp_dir, required=True, fail=prefixed("Teacher", TeacherError)))


def teacher_checkpoint(spec: TeacherSpec) -> str:
    path = spec.checkpoint or latest_checkpoint(spec.path, spec.policy)
    if path is None:
        raise TeacherError(f"Teacher {spec.path!r} has no checkpoint: no {spec.path}/checkpoint_p{spec.policy}/checkpoint_*.pth")
    return path


@dataclass
class TeacherFiles:
    """What a teacher's experiment dir held when it was read: its config.json and one checkpoint."""

    spec: TeacherSpec
    cfg: AttrDict
    checkpoint_path: str
    checkpoint: Dict  # the SF checkpoint dict (model state dict, env_steps, ...)
    sha256: str  # of the checkpoint file's bytes it was loaded from


def read_teacher(spec: TeacherSpec) -> TeacherFiles:
    """Read the teacher's config.json and checkpoint (`spec.checkpoint`, else its latest one; with `spec.sha256`,
    only if the file still has those bytes). TeacherError or the loader's CheckpointLoadError when they cannot be."""
    path = teacher_checkpoint(spec)
    ckpt, sha256 = load_verified(path, "cpu", trust=spec.trust, sha256=spec.sha256)
    return TeacherFiles(spec, load_teacher_cfg(spec.path), path, ckpt, sha256)


def build_model(files: TeacherFiles, obs_space, action_space, fail: Fail):
    """SF's actor-critic from the teacher's config.json with its checkpoint's weights (strict)."""
    try:
        model = create_actor_critic(files.cfg, obs_space, action_space)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"could not be built from its config.json ({type(exc).__name__}: {exc})") from exc
    try:
        model.load_state_dict(files.checkpoint["model"], strict=True)
    except RuntimeError as exc:
        raise fail(
            f"checkpoint {files.checkpoint_path!r} does not fit the architecture in its config.json for the "
            f"observation/action spaces it is to run on:\n{exc}"
        ) from exc
    return model


def spaces_match(a, b) -> bool:
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return set(a.spaces) == set(b.spaces) and all(spaces_match(a[k], b[k]) for k in a.spaces)
    return same_box(a, b)


def check_action_space(name: str, teacher_act, student_act) -> None:
    """The teacher's action space is the student's (observations: `inputs.teacher_keys`, key by key)."""
    if not spaces_match(teacher_act, student_act):
        raise TeacherError(
            f"Teacher {name!r} action space does not match the student's: teacher {teacher_act}, student {student_act}"
        )


class _LogitsAndState(torch.nn.Module):
    """A teacher's forward reduced to what kickstarting needs: raw obs -> (logits, new rnn state), with `values` the
    critic's raw output appended as the last column of the logits. SF's full forward also samples actions and
    computes log-probs, which at rollout batch sizes costs more than the layers."""

    def __init__(self, model, keys: List[str], lean_tail: bool, values: bool = False):
        super().__init__()
        self.model = model
        self.keys = list(keys)
        self.lean_tail = lean_tail
        self.values = values

    def forward(self, *inputs):
        m = self.model
        obs = {k: x for k, x in zip(self.keys, inputs[:-1])}
        normalized = m.normalize_obs(obs)
        normalized = {k: x.type(m.type_for_input_tensor(k)) for k, x in normalized.items()}
        x = m.forward_head(normalized)
        x, new_rnn_states = m.forward_core(x, inputs[-1])
        if self.lean_tail:
            decoded = m.decoder(x)
            logits = m.action_parameterization.distribution_linear(decoded)
            if self.values:
                logits = torch.cat([logits, m.critic_linear(decoded)], dim=1)
        else:
            result = m.forward_tail(x, values_only=False, sample_actions=False)
            logits = result["action_logits"]
            if self.values:
                logits = torch.cat([logits, result["values"].reshape(-1, 1)], dim=1)
        return logits, new_rnn_states


def example_inputs(obs_space, keys, rnn_size, n, device, generator):
    inputs = []
    for k in keys:
        sp = obs_space[k]
        if np.issubdtype(sp.dtype, np.integer):
            hi = int(min(np.max(sp.high), 255)) if np.all(np.isfinite(sp.high)) else 255
            x = torch.randint(0, hi + 1, (n, *sp.shape), generator=generator).to(_torch_dtype(sp.dtype))
        else:
            x = torch.rand((n, *sp.shape), generator=generator).to(_torch_dtype(sp.dtype))  # float64: MuJoCo
        inputs.append(x.to(device))
    inputs.append((torch.rand((n, rnn_size), generator=generator) - 0.5).to(device))
    return inputs


def trace_if_exact(module, example_args, checks, rtol: float):
    """TorchScript `module` traced on `example_args`, kept only if it reproduces the eager module on every argument
    tuple in `checks` (other batch sizes / routings: no baked-in size or data-dependent branch). None when tracing
    fails or differs: the caller then runs eagerly."""
    import warnings

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, tuple(example_args), check_trace=False)
            for args in checks:
                if not all(torch.allclose(x, y, atol=1e-5, rtol=rtol) for x, y in zip(traced(*args), module(*args))):
                    return None
        return traced
    except Exception:  # noqa: BLE001 - any architecture TorchScript cannot trace runs eagerly
        return None


def _torch_dtype(np_dtype):
    from sample_factory.algo.utils.torch_utils import to_torch_dtype

    return to_torch_dtype(np_dtype)


class FrozenTeacher:
    """One teacher's model in eval mode, with its own normaliser and recurrent-state size.

    Its forward is traced with TorchScript when the trace reproduces the eager forward exactly on other batch sizes
    (per-call overhead, not FLOPs, dominates a small teacher at rollout batch sizes); otherwise it runs eagerly."""

    def __init__(
        self, teacher: Union[TeacherSpec, TeacherFiles], obs_space, action_space, device="cpu", fast: bool = True,
        fail: Optional[Fail] = None, values: bool = False,
    ):
        """`teacher`: what `read_teacher` read, or a spec to read now. `fail`: how a model that cannot be built from
        it is raised (default: a TeacherError naming the teacher). `values`: `forward`'s logits get the critic's raw
        output as one more, last, column (`values_in_return_units` undoes its return normalisation)."""
        files = teacher if isinstance(teacher, TeacherFiles) else read_teacher(teacher)
        self.spec, self.cfg = files.spec, files.cfg
        self.checkpoint_path, self.sha256 = files.checkpoint_path, files.sha256
        fail = fail or prefixed(f"Teacher {self.spec.name!r}", TeacherError)
        # the keys it reads (its own names; pinned by the set-up), each from the student env's key its obs map names
        self.obs_keys = list(self.spec.obs_keys if self.spec.obs_keys is not None else model_keys(self.cfg, obs_space))
        try:
            self.input_keys, self.obs_space = teacher_view(self.obs_keys, self.spec.obs_map, obs_space)
        except TeacherError as exc:
            raise fail(str(exc)) from None
        model = build_model(files, self.obs_space, action_space, fail)
        model.model_to_device(torch.device(device))
        self.device = torch.device(device)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.rnn_size = get_rnn_size(self.cfg)
        # public: SF's default shared-weights actor-critic with the default head: one linear layer giving the
        # categorical logits or a Gaussian's state-dependent means and log-stds (value head skipped unless `values`)
        self.lean_tail = isinstance(model, ActorCriticSharedWeights) and isinstance(
            getattr(model, "action_parameterization", None), ActionParameterizationDefault
        )
        self.env_steps = int(files.checkpoint.get("env_steps", 0))

        self.values = values
        self.eager = _LogitsAndState(model, self.obs_keys, self.lean_tail, values).eval()
        self.traced = self._try_trace(self.obs_space, torch.device(device)) if fast else None

    @property
    def mapped(self) -> bool:
        """It reads some key from a student env key of another name (`--teacher_obs_map`)."""
        return self.input_keys != self.obs_keys

    def _try_trace(self, obs_space, device):
        gen = torch.Generator().manual_seed(0)
        example, *checks = [example_inputs(obs_space, self.obs_keys, self.rnn_size, n, device, gen) for n in (3, 1, 7)]
        return trace_if_exact(self.eager, example, checks, rtol=1e-5)

    def view(self, obs: Dict) -> Dict:
        """What its model reads of the student env's observation `obs` (a dict by env key): {its own key: obs[the
        env key it reads it from]}, in `obs_keys` order."""
        return {k: obs[source] for k, source in zip(self.obs_keys, self.input_keys)}

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        """Logits and new recurrent state from the student env's raw (unnormalised) observations: each key it reads
        from `input_keys`, normalised by its own normaliser."""
        device = self.device
        inputs = [torch.as_tensor(x).to(device) for x in self.view(obs).values()]
        inputs.append(rnn_states.to(device).float())
        fn = self.traced if self.traced is not None else self.eager
        return fn(*inputs)

    @torch.no_grad()
    def values_in_return_units(self, raw: Tensor) -> Tensor:
        """The critic's raw output [N] as a return estimate: a teacher trained with `--normalize_returns` predicts
        normalised returns, which its own returns normaliser (SF's code, as SF's learner does) denormalises."""
        values = raw.reshape(-1, 1).float().clone()
        if self.model.returns_normalizer is not None:
            self.model.returns_normalizer(values, denormalize=True)  # in place
        return values.reshape(-1)


