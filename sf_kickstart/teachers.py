"""Frozen teachers loaded from Sample Factory experiment directories, and the bank that routes task_id → teacher.

A teacher is any SF experiment dir: its own `config.json` decides the architecture (built with SF's model factory,
so plain SF checkpoints work), its latest `checkpoint_p<policy>/checkpoint_*.pth` gives the weights and its own
observation-normaliser statistics. Teachers run in eval mode without gradients; they are never child modules of the
student (not in its state_dict, optimizer or checkpoints).

`--teacher=DIR` is one teacher for every task. `--teachers=MAP.yaml` maps suite task names to teachers:

    DoorKey-5x5: doorkey_teacher                 # experiment dir (or name under --train_dir)
    DoorKey-8x8: {path: doorkey_teacher, rho: 0.5}
    MemoryS7:    {path: /abs/path/memory_teacher, policy: 0}

One teacher may serve several tasks (teachers are identified by their resolved directory); tasks absent from the map
get no kickstart term. ρ is per teacher (default 1).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from sample_factory.model.action_parameterization import ActionParameterizationDefault
from sample_factory.model.actor_critic import ActorCriticSharedWeights, create_actor_critic
from sample_factory.model.model_utils import get_rnn_size
from sample_factory.utils.attr_dict import AttrDict
from sample_factory.utils.utils import log

from sf_kickstart import stack_kernel
from sf_kickstart.suites.registry import TASK_ID_KEY


class TeacherError(ValueError):
    """A teacher that cannot be used: missing, no checkpoint, corrupt, or incompatible spaces."""


@dataclass
class TeacherSpec:
    path: str  # resolved experiment directory
    rho: float = 1.0
    policy: int = 0
    tasks: List[str] = field(default_factory=list)  # task names it supervises; [] with a single --teacher = all
    checkpoint: Optional[str] = None  # a given checkpoint file instead of the latest (evaluation, enjoy)

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))


def resolve_experiment_dir(path: str, train_dir: Optional[str]) -> str:
    from sf_kickstart.zoo import resolve_teacher_uri

    resolved = resolve_teacher_uri(path, train_dir)  # zoo:NAME, hf://user/repo -> a local experiment dir
    if resolved is not None:
        return resolved
    candidates = [path]
    if train_dir and not os.path.isabs(path):
        candidates.append(os.path.join(train_dir, path))
    for c in candidates:
        if os.path.isdir(c):
            return os.path.abspath(c)
    raise TeacherError(
        f"Teacher {path!r} does not exist (looked in: {', '.join(os.path.abspath(c) for c in candidates)}). "
        f"A teacher is a Sample Factory experiment directory with config.json and checkpoint_p0/"
    )


def latest_checkpoint(exp_dir: str, policy: int = 0) -> str:
    ckpt_dir = os.path.join(exp_dir, f"checkpoint_p{policy}")
    checkpoints = sorted(glob.glob(os.path.join(ckpt_dir, "checkpoint_*.pth")))
    if not checkpoints:
        raise TeacherError(f"Teacher {exp_dir!r} has no checkpoint: no {ckpt_dir}/checkpoint_*.pth")
    return checkpoints[-1]


def load_checkpoint_file(path: str, device="cpu") -> Dict:
    """torch.load with weights_only=False (SF checkpoints hold numpy scalars; torch>=2.6 changed the default)."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable
        raise TeacherError(f"Checkpoint {path!r} could not be loaded ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise TeacherError(f"Checkpoint {path!r} is not a Sample Factory checkpoint (no 'model' state dict)")
    return ckpt


def load_teacher_cfg(exp_dir: str) -> AttrDict:
    cfg_path = os.path.join(exp_dir, "config.json")
    if not os.path.isfile(cfg_path):
        raise TeacherError(f"Teacher {exp_dir!r} has no config.json: not a Sample Factory experiment directory")
    try:
        with open(cfg_path) as f:
            return AttrDict(json.load(f))
    except json.JSONDecodeError as exc:
        raise TeacherError(f"Teacher config {cfg_path!r} is not valid JSON: {exc}") from exc


def _describe_space(space) -> str:
    if isinstance(space, spaces.Dict):
        return "{" + ", ".join(f"{k}: {_describe_space(v)}" for k, v in space.spaces.items()) + "}"
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)}/{space.dtype}"
    return str(space)


def spaces_match(a, b) -> bool:
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return set(a.spaces) == set(b.spaces) and all(spaces_match(a[k], b[k]) for k in a.spaces)
    if isinstance(a, spaces.Box) and isinstance(b, spaces.Box):
        return a.shape == b.shape and a.dtype == b.dtype
    return a == b


def check_spaces(name: str, teacher_obs, teacher_act, student_obs, student_act) -> None:
    if not spaces_match(teacher_obs, student_obs):
        raise TeacherError(
            f"Teacher {name!r} observation space does not match the student's:\n"
            f"  teacher: {_describe_space(teacher_obs)}\n  student: {_describe_space(student_obs)}"
        )
    if not spaces_match(teacher_act, student_act):
        raise TeacherError(
            f"Teacher {name!r} action space does not match the student's: teacher {teacher_act}, student {student_act}"
        )


class _LogitsAndState(torch.nn.Module):
    """A teacher's forward reduced to what kickstarting needs: raw obs -> (logits, new rnn state). SF's full forward
    also samples actions, computes log-probs and values, which at rollout batch sizes costs more than the layers."""

    def __init__(self, model, keys: List[str], lean_tail: bool):
        super().__init__()
        self.model = model
        self.keys = list(keys)
        self.lean_tail = lean_tail

    def forward(self, *inputs):
        m = self.model
        obs = {k: x for k, x in zip(self.keys, inputs[:-1])}
        normalized = m.normalize_obs(obs)
        normalized = {k: x.type(m.type_for_input_tensor(k)) for k, x in normalized.items()}
        x = m.forward_head(normalized)
        x, new_rnn_states = m.forward_core(x, inputs[-1])
        if self.lean_tail:
            logits = m.action_parameterization.distribution_linear(m.decoder(x))
        else:
            logits = m.forward_tail(x, values_only=False, sample_actions=False)["action_logits"]
        return logits, new_rnn_states


def _example_inputs(obs_space, keys, rnn_size, n, device, generator):
    inputs = []
    for k in keys:
        sp = obs_space[k]
        if np.issubdtype(sp.dtype, np.integer):
            hi = int(min(np.max(sp.high), 255)) if np.all(np.isfinite(sp.high)) else 255
            x = torch.randint(0, hi + 1, (n, *sp.shape), generator=generator).to(_torch_dtype(sp.dtype))
        else:
            x = torch.rand((n, *sp.shape), generator=generator)
        inputs.append(x.to(device))
    inputs.append((torch.rand((n, rnn_size), generator=generator) - 0.5).to(device))
    return inputs


def _trace_if_exact(module, example_args, checks, rtol: float):
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

    def __init__(self, spec: TeacherSpec, obs_space, action_space, device="cpu", fast: bool = True):
        self.spec = spec
        self.cfg = load_teacher_cfg(spec.path)
        self.checkpoint_path = spec.checkpoint or latest_checkpoint(spec.path, spec.policy)
        ckpt = load_checkpoint_file(self.checkpoint_path, "cpu")
        try:
            model = create_actor_critic(self.cfg, obs_space, action_space)
        except Exception as exc:  # noqa: BLE001
            raise TeacherError(
                f"Could not build teacher {spec.name!r} from its config.json ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            model.load_state_dict(ckpt["model"], strict=True)
        except RuntimeError as exc:
            raise TeacherError(
                f"Teacher {spec.name!r} checkpoint {self.checkpoint_path!r} does not fit the architecture in its "
                f"config.json for the student's observation/action spaces:\n{exc}"
            ) from exc
        model.model_to_device(torch.device(device))
        self.device = torch.device(device)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.rnn_size = get_rnn_size(self.cfg)
        # SF's default shared-weights actor-critic with the default (categorical) head: skip the value head too
        self._lean_tail = isinstance(model, ActorCriticSharedWeights) and isinstance(
            getattr(model, "action_parameterization", None), ActionParameterizationDefault
        )
        self.env_steps = int(ckpt.get("env_steps", 0))

        self.obs_keys = sorted(obs_space.spaces.keys()) if isinstance(obs_space, spaces.Dict) else ["obs"]
        self.eager = _LogitsAndState(model, self.obs_keys, self._lean_tail).eval()
        self.traced = self._try_trace(obs_space, torch.device(device)) if fast else None

    def _try_trace(self, obs_space, device):
        if not isinstance(obs_space, spaces.Dict):
            return None
        gen = torch.Generator().manual_seed(0)
        example, *checks = [_example_inputs(obs_space, self.obs_keys, self.rnn_size, n, device, gen) for n in (3, 1, 7)]
        return _trace_if_exact(self.eager, example, checks, rtol=1e-5)

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        """Logits and new recurrent state from raw (unnormalised) observations."""
        device = self.device
        inputs = [torch.as_tensor(obs[k]).to(device) for k in self.obs_keys]
        inputs.append(rnn_states.to(device).float())
        fn = self.traced if self.traced is not None else self.eager
        return fn(*inputs)


_ACTIVATIONS = {"ELU": torch.nn.functional.elu, "ReLU": torch.relu, "Tanh": torch.tanh}


def _layer_kinds(seq) -> Optional[List[str]]:
    """['Linear', 'ELU', ...] for an SF MLP (possibly a TorchScript Sequential); None if anything else is in it."""
    if seq is None or type(seq).__name__ == "Identity" or getattr(seq, "original_name", "") == "Identity":
        return []
    kinds = []
    for _, mod in seq.named_children():
        kind = getattr(mod, "original_name", type(mod).__name__)
        if kind != "Linear" and kind not in _ACTIVATIONS:
            return None
        kinds.append(kind)
    return kinds


def stack_signature(teacher: "FrozenTeacher"):
    """Hashable description of a teacher's computation if it belongs to the family StackedTeachers runs
    (SF's shared-weights actor-critic: MLP encoders per obs key, GRU(1 layer) or no core, MLP decoder, linear
    categorical head, SF's observation normaliser without per-channel/norm-only variants); None otherwise."""
    m = teacher.model
    if not teacher._lean_tail:
        return None
    norm = _normalizer_signature(m.obs_normalizer)
    if norm is None:
        return None
    enc = m.encoder
    if type(enc).__name__ != "MultiInputEncoder":
        return None
    enc_kinds = []
    for key in enc.obs_keys:
        sub = enc.encoders[key]
        if type(sub).__name__ != "MlpEncoder":
            return None
        kinds = _layer_kinds(sub.mlp_head)
        if kinds is None:
            return None
        enc_kinds.append((key, tuple(kinds)))
    core_kind = type(m.core).__name__
    if core_kind == "ModelCoreRNN":
        if not m.core.is_gru or m.core.rnn_num_layers != 1:
            return None
    elif core_kind != "ModelCoreIdentity":
        return None
    dec_kinds = _layer_kinds(getattr(m.decoder, "mlp", None))
    if dec_kinds is None:
        return None
    shapes = tuple((k, tuple(v.shape)) for k, v in m.state_dict().items() if "obs_normalizer" not in k)
    return (tuple(enc_kinds), core_kind, tuple(dec_kinds), shapes, teacher.rnn_size, norm)


def _unit_box(obs_space, key: str) -> Optional[spaces.Box]:
    """The key's space if it is a flat Box bounded within [0, 1], else None."""
    sp = obs_space.spaces.get(key) if isinstance(obs_space, spaces.Dict) else None
    if not isinstance(sp, spaces.Box) or len(sp.shape) != 1:
        return None
    return sp if bool(np.all(sp.low >= 0) and np.all(sp.high <= 1)) else None


def binary_space(obs_space, key: str) -> bool:
    """A flat observation key whose values can only be 0 or 1 (integer or bool dtype, bounds within [0, 1])."""
    sp = _unit_box(obs_space, key)
    return sp is not None and (np.issubdtype(sp.dtype, np.integer) or np.issubdtype(sp.dtype, np.bool_))


def task_id_like_space(obs_space, key: str) -> bool:
    """A short flat key bounded within [0, 1] (a task id): its exactly one-hot rows are worth precomputing."""
    sp = _unit_box(obs_space, key)
    return sp is not None and sp.shape[0] <= 64


def _normalizer_signature(normalizer):
    """SF's ObservationNormalizer: mean subtraction and scaling of "obs", then per-key running mean/std (clipped).
    Returns the parts that must be equal across a stack, or None for a variant the stack does not implement."""
    rms = {}
    if normalizer.running_mean_std is not None:
        for key, mod in normalizer.running_mean_std.running_mean_std.items():
            if getattr(mod, "per_channel", False) or getattr(mod, "norm_only", False) or len(mod.input_shape) != 1:
                return None
            rms[key] = (float(mod.clip), float(mod.eps))
    return (float(normalizer.sub_mean) if normalizer.should_sub_mean else 0.0,
            float(normalizer.scale) if normalizer.should_scale else 1.0, tuple(sorted(rms.items())))


class _Plan:
    """Rows grouped per teacher and padded to the largest group: gidx [K, width] row indices (padding repeats row 0),
    inv [n] the slot of each row in the flattened [K * width] layout."""

    def __init__(self, member: np.ndarray, k: int, device: torch.device):
        n = member.shape[0]
        order = np.argsort(member, kind="stable")
        member_sorted = member[order]
        counts = np.bincount(member_sorted, minlength=k)
        width = int(counts.max())
        pos = np.arange(n) - (np.cumsum(counts) - counts)[member_sorted]
        gidx = np.zeros((k, width), dtype=np.int64)
        gidx[member_sorted, pos] = order
        inv = np.empty(n, dtype=np.int64)
        inv[order] = member_sorted * width + pos
        self.gidx = torch.from_numpy(gidx).to(device)
        self.inv = torch.from_numpy(inv).to(device)


class StackedTeachers:
    """Several teachers with one architecture run as one computation whose cost does not grow with the number of
    teachers beyond their share of the rows.

    On CPU it is one compiled kernel call (`stack_kernel`): each row through its own teacher's weights, binary
    observation keys (one-hot grids) through the table rows of their active inputs only, with the observation
    normaliser folded in exactly. At rollout batch sizes the teachers' cost is per-op overhead and cold caches (the
    student's forward runs between two calls), which one call touching only the needed weights avoids.
    Elsewhere (GPU, or no numba) it is TorchScript-traced torch: rows grouped per teacher and padded to the largest
    group ([K, width, ...]), one torch.baddbmm per layer over the K groups."""

    def __init__(self, teachers: Sequence["FrozenTeacher"], obs_space):
        first = teachers[0]
        self.k = len(teachers)
        self.rnn_size = first.rnn_size
        self.device = first.device
        sds = [t.model.state_dict() for t in teachers]

        def stacked_linear(prefix):
            w = torch.stack([sd[f"{prefix}.weight"] for sd in sds]).transpose(1, 2).contiguous()  # [K, in, out]
            b = torch.stack([sd[f"{prefix}.bias"] for sd in sds]).unsqueeze(1)  # [K, 1, out]
            return w, b

        def mlp(seq, prefix):
            layers = []
            for (name, mod), kind in zip(seq.named_children(), _layer_kinds(seq)):
                layers.append(("linear", stacked_linear(f"{prefix}.{name}")) if kind == "Linear" else ("act", kind))
            return layers

        m = first.model
        self.sub_mean, self.scale, rms = _normalizer_signature(m.obs_normalizer)
        self.norm = {}
        for key, (clip, eps) in rms:
            mean = torch.stack([sd[f"obs_normalizer.running_mean_std.running_mean_std.{key}.running_mean"] for sd in sds])
            var = torch.stack([sd[f"obs_normalizer.running_mean_std.running_mean_std.{key}.running_var"] for sd in sds])
            inv_std = 1.0 / torch.sqrt(var.float() + eps)
            self.norm[key] = (mean.float().unsqueeze(1), inv_std.unsqueeze(1), clip)  # [K, 1, D]
        self.keys = list(m.encoder.obs_keys)
        self.key_dims = {k: int(np.prod(obs_space[k].shape)) for k in self.keys}  # SF's env_info: always a Dict
        self.encoders = {k: mlp(m.encoder.encoders[k].mlp_head, f"encoder.encoders.{k}.mlp_head") for k in self.keys}
        self.gru = None
        if type(m.core).__name__ == "ModelCoreRNN":
            w_ih = torch.stack([sd["core.core.weight_ih_l0"] for sd in sds]).transpose(1, 2).contiguous()
            w_hh = torch.stack([sd["core.core.weight_hh_l0"] for sd in sds]).transpose(1, 2).contiguous()
            b_ih = torch.stack([sd["core.core.bias_ih_l0"] for sd in sds]).unsqueeze(1)
            b_hh = torch.stack([sd["core.core.bias_hh_l0"] for sd in sds]).unsqueeze(1)
            self.gru = (w_ih, w_hh, b_ih, b_hh)
        dec = getattr(m.decoder, "mlp", None)
        self.decoder = mlp(dec, "decoder.mlp") if _layer_kinds(dec) else []
        self.head = stacked_linear("action_parameterization.distribution_linear")
        # binary observation keys whose encoder starts with a linear layer: that layer with the normaliser folded in
        self.folded: Dict[str, Tuple[Tensor, Tensor]] = {}
        for key in self.keys:
            layers = self.encoders[key]
            if binary_space(obs_space, key) and layers and layers[0][0] == "linear":
                self.folded[key] = self._fold_binary_first_layer(key, *layers[0][1])
        # short [0, 1] keys (task ids) feeding the GRU: per teacher and hot index, their encoder's output times their
        # block of W_ih, for rows that are exactly one-hot
        self.one_hot: Dict[str, Tensor] = {}
        if self.gru is not None:
            start = 0
            for key in self.keys:
                linears = [val for kind, val in self.encoders[key] if kind == "linear"]
                width = linears[-1][0].shape[2] if linears else self.key_dims[key]
                if key not in self.folded and task_id_like_space(obs_space, key):
                    self.one_hot[key] = self._one_hot_contribution(key, start, width)
                start += width
        self.kernel = None
        if self.device.type == "cpu" and stack_kernel.available():
            self.kernel = stack_kernel.StackKernel(self)
        self.core = _StackCore(self)
        self.traced = None
        self._plans: Dict[bytes, _Plan] = {}

    def _fold_binary_first_layer(self, key: str, w: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        """For inputs in {0, 1}, every per-input transform before the first layer (SF's mean subtraction, scaling,
        running mean/std with clipping) maps input j to a_j (when 0) or b_j (when 1), so
        layer(norm(x)) = (bias + a @ W) + sum over active j of (b_j - a_j) W_j: a lookup of the active inputs.
        Returns the table [K, D, out] and the folded bias [K, 1, out]."""
        k, d, _ = w.shape
        zeros = torch.zeros(k, 1, d, device=w.device)
        a = self._normalize(key, zeros)
        b1 = self._normalize(key, zeros + 1.0)
        return (w * (b1 - a).transpose(1, 2)).contiguous(), b + torch.bmm(a, w)

    @torch.no_grad()
    def _one_hot_contribution(self, key: str, start: int, width: int) -> Tensor:
        """[K, D, 3H]: the key's encoder on each unit vector (own normaliser) times rows start:start+width of W_ih."""
        k, d = self.k, self.key_dims[key]
        eye = torch.eye(d, device=self.gru[0].device).expand(k, d, d)
        return torch.bmm(self._run(self.encoders[key], self._normalize(key, eye)), self.gru[0][:, start : start + width])

    def affine_normalizer(self, key: str, dim: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """_normalize as clip((x - mean) * istd, -clip, clip) per teacher: mean, istd [K, dim], clip [dim]."""
        sub, scale = (self.sub_mean, self.scale) if key == "obs" else (0.0, 1.0)
        if key in self.norm:
            mean, inv_std, clip = self.norm[key]
            mean = (sub + scale * mean.reshape(self.k, dim)).cpu().numpy()
            istd = (inv_std.reshape(self.k, dim) / scale).cpu().numpy()
            return mean, istd, np.full(dim, clip, dtype=np.float32)
        return np.full((self.k, dim), sub), np.full((self.k, dim), 1.0 / scale), np.full(dim, np.inf, dtype=np.float32)

    def plan(self, member: np.ndarray) -> _Plan:
        """Envs keep their task (hence their teacher) for whole episodes and requests come from fixed groups of envs,
        so the same routing recurs: plans are cached."""
        key = member.tobytes()
        plan = self._plans.get(key)
        if plan is None:
            plan = _Plan(member, self.k, self.device)
            if len(self._plans) > 1024:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def trace(self, example_obs: Dict[str, Tensor], example_h: Tensor, example_member: np.ndarray) -> None:
        """TorchScript the torch core (no data-dependent Python control flow in it); kept only if it reproduces the
        eager computation on another batch size, routing and padding width. Nothing to do for the kernel."""
        if self.kernel is not None:
            return
        h = example_h[:, : self.rnn_size]
        cut = max(1, example_member.shape[0] // 2 - 1)
        small_member = np.zeros(cut, dtype=np.int64)  # every row on teacher 0: another width and routing
        self.traced = _trace_if_exact(
            self.core,
            self._padded(example_obs, h, self.plan(example_member)),
            [self._padded({k: v[:cut] for k, v in example_obs.items()}, h[:cut], self.plan(small_member))],
            rtol=1e-4,
        )

    def _padded(self, obs: Dict[str, Tensor], h: Tensor, plan: _Plan) -> List[Tensor]:
        """The torch core's inputs: every key's rows and h, grouped per teacher ([K, width, ...])."""
        return [obs[key][plan.gidx] for key in self.keys] + [h[:, : self.rnn_size][plan.gidx]]

    def _normalize(self, key: str, x: Tensor) -> Tensor:
        """x: [K, rows, D] float; each teacher's own normaliser statistics (as SF's ObservationNormalizer)."""
        if key == "obs":
            if self.sub_mean != 0.0:
                x = x - self.sub_mean
            if self.scale != 1.0:
                x = x * (1.0 / self.scale)
        if key in self.norm:
            mean, inv_std, clip = self.norm[key]
            x = ((x - mean) * inv_std).clamp(-clip, clip)
        return x

    @staticmethod
    def _run(layers, x):
        for kind, val in layers:
            x = torch.baddbmm(val[1], x, val[0]) if kind == "linear" else _ACTIVATIONS[val](x)
        return x

    def _core_and_head(self, x, h):
        if self.gru is not None:  # torch.nn.GRU's equations, gates r and z computed together
            w_ih, w_hh, b_ih, b_hh = self.gru
            hs = self.rnn_size
            gi = torch.baddbmm(b_ih, x, w_ih)
            gh = torch.baddbmm(b_hh, h, w_hh)
            rz = torch.sigmoid(gi[..., : 2 * hs] + gh[..., : 2 * hs])
            n = torch.tanh(gi[..., 2 * hs :] + rz[..., :hs] * gh[..., 2 * hs :])
            h = n + rz[..., hs:] * (h - n)
            x = h
        x = self._run(self.decoder, x)
        return torch.baddbmm(self.head[1], x, self.head[0]), h

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, member: np.ndarray) -> Tuple[Tensor, Tensor]:
        """obs, rnn_states: the group's rows; member[i] in [0, K) is row i's teacher. Returns logits, new states."""
        if self.kernel is not None:
            logits, new_h = self.kernel({k: obs[k].numpy() for k in self.keys}, rnn_states.numpy(), member)
            return torch.from_numpy(logits), torch.from_numpy(new_h)
        plan = self.plan(member)
        logits, new_h = (self.traced if self.traced is not None else self.core)(*self._padded(obs, rnn_states, plan))
        num_logits = logits.shape[-1]
        out = torch.cat([logits, new_h], dim=-1).reshape(-1, num_logits + new_h.shape[-1])[plan.inv]
        return out[:, :num_logits], out[:, num_logits:]


class _StackCore(torch.nn.Module):
    """The stacked layers on rows grouped per teacher ([K, width, ...]) -> logits, new h ([K, width, ...])."""

    def __init__(self, stack: "StackedTeachers"):
        super().__init__()
        self.stack = stack

    def forward(self, *inputs):
        st = self.stack
        encoded = [st._run(st.encoders[key], st._normalize(key, x.float())) for key, x in zip(st.keys, inputs[:-1])]
        x = encoded[0] if len(encoded) == 1 else torch.cat(encoded, dim=-1)
        return st._core_and_head(x, inputs[-1])


def parse_teacher_map(path: str, train_dir: Optional[str], task_names: Sequence[str]) -> List[TeacherSpec]:
    import yaml

    if not os.path.isfile(path):
        raise TeacherError(f"--teachers map file {path!r} does not exist")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise TeacherError(f"--teachers map {path!r} is not valid YAML: {exc}") from exc
    if isinstance(data, dict) and "teachers" in data and isinstance(data["teachers"], dict):
        data = data["teachers"]
    if not isinstance(data, dict) or not data:
        raise TeacherError(f"--teachers map {path!r} must be a non-empty mapping task name -> experiment dir")

    unknown = [t for t in data if t not in task_names]
    if unknown:
        raise TeacherError(
            f"--teachers map {path!r} names task(s) {unknown} that are not in this suite. Suite tasks: {list(task_names)}"
        )

    by_path: Dict[Tuple[str, int], TeacherSpec] = {}
    for task, entry in data.items():
        if isinstance(entry, str):
            entry = dict(path=entry)
        if not isinstance(entry, dict) or "path" not in entry:
            raise TeacherError(f"--teachers map entry for {task!r} must be a path or {{path: ..., rho: ...}}")
        rho = float(entry.get("rho", 1.0))
        if not np.isfinite(rho) or rho < 0:
            raise TeacherError(f"--teachers map: rho for {task!r} must be >= 0, got {rho}")
        resolved = resolve_experiment_dir(str(entry["path"]), train_dir)
        key = (resolved, int(entry.get("policy", 0)))
        if key in by_path:
            spec = by_path[key]
            if "rho" in entry and spec.rho != rho:
                raise TeacherError(f"--teachers map gives teacher {spec.name!r} two different rho values")
            spec.tasks.append(task)
        else:
            by_path[key] = TeacherSpec(path=resolved, rho=rho, policy=key[1], tasks=[task])
    return list(by_path.values())


def teacher_specs_from_cfg(cfg, task_names: Sequence[str]) -> List[TeacherSpec]:
    teacher = getattr(cfg, "teacher", None)
    teachers = getattr(cfg, "teachers", None)
    if teacher and teachers:
        raise TeacherError("Give either --teacher (one teacher for all tasks) or --teachers (a map), not both")
    if teachers:
        return parse_teacher_map(teachers, cfg.train_dir, task_names)
    if teacher:
        return [TeacherSpec(path=resolve_experiment_dir(teacher, cfg.train_dir), tasks=list(task_names))]
    return []


def task_owners(specs: Sequence[TeacherSpec], task_names: Sequence[str]) -> List[int]:
    """Index of the teacher supervising each task (-1: no teacher). A map names each task once, so a task has at most
    one owner."""
    owners = [-1] * len(task_names)
    for i, spec in enumerate(specs):
        for task in spec.tasks:
            owners[list(task_names).index(task)] = i
    return owners


class TeacherBank:
    """All teachers of a run, routed by task id. Teacher recurrent states share one block of width max(rnn sizes):
    an env is on one task (hence one teacher) for a whole episode, and the block is zeroed at episode ends."""

    def __init__(
        self, specs: Sequence[TeacherSpec], task_names: Sequence[str], obs_space, action_space, device="cpu",
        fast: bool = True,
    ):
        """fast=False (validation in the main process): load and check every teacher, skip tracing and stacking."""
        self.specs = list(specs)
        self.task_names = list(task_names)
        self.teachers = [FrozenTeacher(s, obs_space, action_space, device, fast=fast) for s in self.specs]
        self.device = torch.device(device)
        self.task_to_teacher = np.array(task_owners(self.specs, self.task_names), dtype=np.int64)
        self.rnn_size = max((t.rnn_size for t in self.teachers), default=0)
        self.has_task_id = isinstance(obs_space, spaces.Dict) and TASK_ID_KEY in obs_space.spaces
        # execution groups: teachers of one stackable architecture run together (a group of one too: it gets the
        # stack's sparse input layer), the others one by one with their own (traced) forward
        self.groups: List[Tuple[List[int], Optional[StackedTeachers]]] = []
        by_sig: Dict = {}
        for i, t in enumerate(self.teachers):
            sig = stack_signature(t) if fast else None
            if sig is None:
                self.groups.append(([i], None))
            else:
                by_sig.setdefault(sig, []).append(i)
        for members in by_sig.values():
            stacked = StackedTeachers([self.teachers[i] for i in members], obs_space)
            matches = self._stack_matches(stacked, members, obs_space)
            if not matches and stacked.kernel is not None:
                log.warning(f"CPU teacher kernel unusable for {[self.specs[i].name for i in members]}: torch path")
                stacked.kernel = None
                matches = self._stack_matches(stacked, members, obs_space)
            if matches:
                self.groups.append((members, stacked))
            else:
                self.groups.extend(([i], None) for i in members)
        self.member_of = np.full(max(len(self.teachers), 1), -1, dtype=np.int64)
        for members, _ in self.groups:
            self.member_of[members] = np.arange(len(members))
        # fast paths: one group serves every task; on CPU its kernel routes the rows itself
        self.whole = self.groups[0] if len(self.groups) == 1 and bool((self.task_to_teacher >= 0).all()) else None
        self.routing_kernel = None
        if self.whole is not None and self.whole[1] is not None and self.whole[1].kernel is not None:
            self.routing_kernel = self.whole[1].kernel
            self.routing_kernel.set_route(
                TASK_ID_KEY if self.has_task_id else None, self.member_of[self.task_to_teacher], self.task_to_teacher
            )

    def _stack_matches(self, stacked: "StackedTeachers", members: List[int], obs_space) -> bool:
        """The stacked computation must reproduce every member's own forward before it is used."""
        try:
            return self._stack_reproduces_members(stacked, members, obs_space)
        except Exception as exc:  # noqa: BLE001 - e.g. an architecture the kernel cannot compile: not a fast path
            log.warning(f"Stacked teachers {[self.specs[i].name for i in members]} failed their check: {exc!r}")
            return False

    def _stack_reproduces_members(self, stacked: "StackedTeachers", members: List[int], obs_space) -> bool:
        gen = torch.Generator().manual_seed(1)
        n = 4 * len(members) + 1
        inputs = _example_inputs(obs_space, self.teachers[members[0]].obs_keys, stacked.rnn_size, n, self.device, gen)
        obs = dict(zip(self.teachers[members[0]].obs_keys, inputs[:-1]))
        h = inputs[-1]
        member = torch.randint(0, len(members), (n,), generator=gen).numpy()
        stacked.trace(obs, h, member)  # the torch path only
        logits, new_h = stacked.forward(obs, h, member)
        for j, i in enumerate(members):
            sel = torch.from_numpy(member == j).to(self.device)
            if not sel.any():
                continue
            ref_l, ref_h = self.teachers[i].forward({k: v[sel] for k, v in obs.items()}, h[sel])
            if not (torch.allclose(logits[sel], ref_l, atol=1e-5, rtol=1e-4) and torch.allclose(new_h[sel], ref_h, atol=1e-5, rtol=1e-4)):
                return False
        return True

    def __len__(self):
        return len(self.teachers)

    def teacher_of_rows(self, obs: Dict[str, Tensor], n: int) -> np.ndarray:
        """Index of the teacher of each row's task (-1: none), on the host (routing plans are built there)."""
        if not self.has_task_id:
            return np.repeat(self.task_to_teacher[:1], n)
        task_id = obs[TASK_ID_KEY]
        task = task_id.numpy().argmax(axis=-1) if task_id.device.type == "cpu" else task_id.argmax(dim=-1).cpu().numpy()
        return self.task_to_teacher[task]

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, num_logits: int):
        """obs: raw (unnormalised) observations; rnn_states: [N, self.rnn_size].
        Returns teacher logits [N, num_logits] (0 where no teacher), teacher index [N] (-1 = none), new states."""
        n = rnn_states.shape[0]
        if self.routing_kernel is not None and rnn_states.device.type == "cpu":
            logits, new_h, tidx = self.routing_kernel.routed(
                {k: v.numpy() if isinstance(v, Tensor) else np.asarray(v) for k, v in obs.items()}, rnn_states.numpy()
            )
            return torch.from_numpy(logits), torch.from_numpy(tidx), torch.from_numpy(new_h)
        obs = {k: torch.as_tensor(v).to(self.device) for k, v in obs.items()}
        rnn_states = rnn_states.to(self.device)
        tidx = self.teacher_of_rows(obs, n)
        tidx_out = torch.from_numpy(tidx.astype(np.float32)).to(self.device)
        if self.whole is not None:
            members, stacked = self.whole
            if stacked is not None:
                logits, new_h = stacked.forward(obs, rnn_states, self.member_of[tidx])
            else:
                logits, new_h = self.teachers[members[0]].forward(obs, rnn_states[:, : self.rnn_size])
            return logits.float(), tidx_out, new_h
        logits = torch.zeros(n, num_logits, device=self.device)
        new_rnn = torch.zeros_like(rnn_states)
        for members, stacked in self.groups:
            rows_np = np.flatnonzero(np.isin(tidx, members))
            if rows_np.size == 0:
                continue
            rows = torch.from_numpy(rows_np).to(self.device)
            sub_obs = {k: v[rows] for k, v in obs.items()}
            if stacked is None:
                t = self.teachers[members[0]]
                sub_logits, sub_h = t.forward(sub_obs, rnn_states[rows, : t.rnn_size])
            else:
                sub_logits, sub_h = stacked.forward(sub_obs, rnn_states[rows], self.member_of[tidx[rows_np]])
            logits[rows] = sub_logits.float()
            new_rnn[rows, : sub_h.shape[1]] = sub_h
        return logits, tidx_out, new_rnn
