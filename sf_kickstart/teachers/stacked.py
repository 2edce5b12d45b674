"""Several teachers of one architecture run as one computation (the fast path of the teacher bank).

`stack_signature(teacher)` says whether a teacher belongs to the family this module runs (SF's shared-weights
actor-critic: MLP encoders per obs key, GRU(1 layer) or no core, MLP decoder, one linear action head, SF's
observation normaliser without per-channel/norm-only variants) and which teachers can be stacked together.
Action heads: the linear head is SF's `ActionParameterizationDefault`, so the family covers categorical heads and
Gaussian heads with state-dependent std (`--adaptive_stddev=True`: the head's output is the means and log-stds, the
logits SF stores), and Tuples of them, exactly; SF's learned-log-std parameterisation (`--adaptive_stddev=False`,
with `--continuous_tanh_scale`) is not a linear head, so such a teacher is outside the family (`lean_tail` False) and
runs as a single teacher. Teacher values (`FrozenTeacher.values`): the critic's linear layer reads the same decoder
output, so it is one more output column of the stacked head (the kernel runs it unchanged).
`StackedTeachers` holds the member teachers' parameters stacked per layer ([K, ...]) with each teacher's normaliser,
the binary keys' first layer folded into a lookup table and the one-hot task-id contribution precomputed; its torch
`forward` (TorchScript-traced when exact) runs rows grouped per teacher. The numba CPU kernel (`teachers.kernel`)
is a second executor built from the same stacked layout.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from sf_kickstart.teachers.frozen import FrozenTeacher, trace_if_exact


_ACTIVATIONS = {"ELU": torch.nn.functional.elu, "ReLU": torch.relu, "Tanh": torch.tanh}


def run_layers(layers, x: Tensor) -> Tensor:
    """A stacked MLP ([("linear", (w [K, in, out], b [K, 1, out])) | ("act", name)]) on x [K, rows, in]."""
    for kind, val in layers:
        x = torch.baddbmm(val[1], x, val[0]) if kind == "linear" else _ACTIVATIONS[val](x)
    return x


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


def stack_signature(teacher: FrozenTeacher):
    """Hashable description of a teacher's computation if it belongs to the family StackedTeachers runs
    (SF's shared-weights actor-critic: MLP encoders per obs key, GRU(1 layer) or no core, MLP decoder, one linear
    action head, categorical or Gaussian with state-dependent std, SF's observation normaliser without
    per-channel/norm-only variants); None otherwise."""
    m = teacher.model
    if not teacher.lean_tail:
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
    return (tuple(enc_kinds), core_kind, tuple(dec_kinds), shapes, teacher.rnn_size, norm, teacher.values)


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

    An executor of the teacher bank (`forward(obs, rnn_states, member)`, `members`): TorchScript-traced torch, rows
    grouped per teacher and padded to the largest group ([K, width, ...]), one torch.baddbmm per layer over the K
    groups. Its stacked layout (`keys`, `key_dims`, `encoders`, `folded`, `one_hot`, `gru`, `decoder`, `head`,
    `affine_normalizer`) is also what the CPU kernel executor is built from."""

    def __init__(self, teachers: Sequence[FrozenTeacher], obs_space, members: Sequence[int] = ()):
        first = teachers[0]
        self.members = list(members) or list(range(len(teachers)))
        self.k = len(teachers)
        self.rnn_size = first.rnn_size
        self.device = first.device
        sds = [t.model.state_dict() for t in teachers]

        def stacked_linear(*prefixes):  # layers reading one input, their outputs side by side
            w = torch.cat([torch.stack([sd[f"{p}.weight"] for sd in sds]).transpose(1, 2) for p in prefixes], 2)
            b = torch.cat([torch.stack([sd[f"{p}.bias"] for sd in sds]).unsqueeze(1) for p in prefixes], 2)
            return w.contiguous(), b  # [K, in, out], [K, 1, out]

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
            b_ih, b_hh = (torch.stack([sd[f"core.core.bias_{g}_l0"] for sd in sds]).unsqueeze(1) for g in ("ih", "hh"))
            self.gru = (w_ih, w_hh, b_ih, b_hh)
        dec = getattr(m.decoder, "mlp", None)
        self.decoder = mlp(dec, "decoder.mlp") if _layer_kinds(dec) else []
        critic = ("critic_linear",) if first.values else ()  # reads the same decoder output: the head's last column
        self.head = stacked_linear("action_parameterization.distribution_linear", *critic)
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
        a = self.normalize(key, zeros)
        b1 = self.normalize(key, zeros + 1.0)
        return (w * (b1 - a).transpose(1, 2)).contiguous(), b + torch.bmm(a, w)

    @torch.no_grad()
    def _one_hot_contribution(self, key: str, start: int, width: int) -> Tensor:
        """[K, D, 3H]: the key's encoder on each unit vector (own normaliser) times rows start:start+width of W_ih."""
        k, d = self.k, self.key_dims[key]
        eye = torch.eye(d, device=self.gru[0].device).expand(k, d, d)
        return torch.bmm(run_layers(self.encoders[key], self.normalize(key, eye)), self.gru[0][:, start : start + width])

    def affine_normalizer(self, key: str, dim: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """normalize as clip((x - mean) * istd, -clip, clip) per teacher: mean, istd [K, dim], clip [dim]."""
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
        eager computation on another batch size, routing and padding width."""
        h = example_h[:, : self.rnn_size]
        cut = max(1, example_member.shape[0] // 2 - 1)
        small_member = np.zeros(cut, dtype=np.int64)  # every row on teacher 0: another width and routing
        self.traced = trace_if_exact(
            self.core,
            self._padded(example_obs, h, self.plan(example_member)),
            [self._padded({k: v[:cut] for k, v in example_obs.items()}, h[:cut], self.plan(small_member))],
            rtol=1e-4,
        )

    def _padded(self, obs: Dict[str, Tensor], h: Tensor, plan: _Plan) -> List[Tensor]:
        """The torch core's inputs: every key's rows and h, grouped per teacher ([K, width, ...])."""
        return [obs[key][plan.gidx] for key in self.keys] + [h[:, : self.rnn_size][plan.gidx]]

    def normalize(self, key: str, x: Tensor) -> Tensor:
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

    def core_and_head(self, x, h):
        if self.gru is not None:  # torch.nn.GRU's equations, gates r and z computed together
            w_ih, w_hh, b_ih, b_hh = self.gru
            hs = self.rnn_size
            gi = torch.baddbmm(b_ih, x, w_ih)
            gh = torch.baddbmm(b_hh, h, w_hh)
            rz = torch.sigmoid(gi[..., : 2 * hs] + gh[..., : 2 * hs])
            n = torch.tanh(gi[..., 2 * hs :] + rz[..., :hs] * gh[..., 2 * hs :])
            h = n + rz[..., hs:] * (h - n)
            x = h
        x = run_layers(self.decoder, x)
        return torch.baddbmm(self.head[1], x, self.head[0]), h

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, member: np.ndarray) -> Tuple[Tensor, Tensor]:
        """obs, rnn_states: the group's rows; member[i] in [0, K) is row i's teacher. Returns logits, new states."""
        plan = self.plan(member)
        logits, new_h = (self.traced if self.traced is not None else self.core)(*self._padded(obs, rnn_states, plan))
        num_logits = logits.shape[-1]
        out = torch.cat([logits, new_h], dim=-1).reshape(-1, num_logits + new_h.shape[-1])[plan.inv]
        return out[:, :num_logits], out[:, num_logits:]


class _StackCore(torch.nn.Module):
    """The stacked layers on rows grouped per teacher ([K, width, ...]) -> logits, new h ([K, width, ...])."""

    def __init__(self, stack: StackedTeachers):
        super().__init__()
        self.stack = stack

    def forward(self, *inputs):
        st = self.stack
        encoded = [run_layers(st.encoders[key], st.normalize(key, x.float())) for key, x in zip(st.keys, inputs[:-1])]
        x = encoded[0] if len(encoded) == 1 else torch.cat(encoded, dim=-1)
        return st.core_and_head(x, inputs[-1])


