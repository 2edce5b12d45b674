"""One compiled CPU kernel for a StackedTeachers group: each teacher's rows through that teacher's weights, all layers,
in one call.

Why: at rollout batch sizes on CPU a teacher's cost is not FLOPs but per-op overhead and cold caches (the student's
forward runs between two teacher calls and evicts the teachers' weights). A torch implementation of K stacked teachers
is ~40 dispatched ops (grouping, padding, one baddbmm per layer, GRU gates, un-padding), each paying the cold start;
the kernel is one call that streams each present teacher's weights once (they are laid out contiguously, teacher by
teacher) and, for binary observation keys, reads only the table rows of the active inputs.
`python -m benchmarks.teacher_cost` measures it against the torch implementation next to the student's forward.

The network family is StackedTeachers' (SF's shared-weights actor-critic: per-key MLP encoders, optional 1-layer GRU,
MLP decoder, linear categorical head). StackedTeachers uses the kernel only after checking that it reproduces every
member teacher's own forward; without numba the torch implementation runs.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is in requirements.txt; the torch path covers its absence
    njit = None

ACT_CODES = {None: 0, "ELU": 1, "ReLU": 2, "Tanh": 3}
# columns of the layer table and of the key table
W_OFF, B_OFF, N_IN, N_OUT, ACT = range(5)
BINARY, COL, DIM, FIRST, LAST, OUT_OFF, NORM_OFF, ONEHOT_OFF = range(8)


def available() -> bool:
    return njit is not None


if njit is not None:

    @njit(cache=True, nogil=True)
    def _activate(v, act):
        if act == 1:
            for a in range(v.shape[0]):
                for o in range(v.shape[1]):
                    if v[a, o] < 0:
                        v[a, o] = math.expm1(v[a, o])
        elif act == 2:
            for a in range(v.shape[0]):
                for o in range(v.shape[1]):
                    if v[a, o] < 0:
                        v[a, o] = 0.0
        elif act == 3:
            for a in range(v.shape[0]):
                for o in range(v.shape[1]):
                    v[a, o] = math.tanh(v[a, o])

    @njit(cache=True, nogil=True)
    def _linear(p, x, w_off, b_off, n_in, n_out, act):
        """x [m, n_in] @ W [n_in, n_out] + b for one teacher (p: its parameter block); each weight row read once."""
        m = x.shape[0]
        out = np.empty((m, n_out), dtype=np.float32)
        for a in range(m):
            out[a] = p[b_off : b_off + n_out]
        for i in range(n_in):
            w = p[w_off + i * n_out : w_off + (i + 1) * n_out]
            for a in range(m):
                xi = x[a, i]
                if xi != 0.0:  # one-hot ids, ReLU zeros
                    o_row = out[a]
                    for o in range(n_out):
                        o_row[o] += xi * w[o]
        _activate(out, act)
        return out

    @njit(cache=True, nogil=True)
    def _stack_forward(
        member, binary_x, dense_x, h, params, block, layers, keys, program, route, task_src, logits_out, h_out, tidx_out
    ):
        """member [n]: each row's teacher (filled here when route is given); binary_x [n, Db] uint8, dense_x [n, Dd]
        float32, h [n, H] float32; params: K contiguous parameter blocks of `block` floats; layers / keys: the tables
        above; program: enc_width, H, gru w_ih, w_hh, b_ih, b_hh offsets, gru input width, decoder first/last layer,
        head. route [2, T] (member, teacher index) per task, task_src (0 dense / 1 binary / -1 none, column, width):
        routing by the task id's argmax, teacher index written to tidx_out."""
        n = member.shape[0]
        if route.shape[1] > 0:
            for r in range(n):
                task = 0
                src, c0, width = task_src[0], task_src[1], task_src[2]
                if src >= 0:
                    best = -np.inf
                    for j in range(width):
                        v = dense_x[r, c0 + j] if src == 0 else np.float32(binary_x[r, c0 + j])
                        if v > best:
                            best = v
                            task = j
                member[r] = route[0, task]
                tidx_out[r] = route[1, task]
        enc_width, hs = program[0], program[1]
        w_ih, w_hh, b_ih, b_hh, gru_in = program[2], program[3], program[4], program[5], program[6]
        dec_first, dec_last, head = program[7], program[8], program[9]
        order = np.argsort(member, kind="mergesort")
        start = 0
        while start < n:
            k = member[order[start]]
            stop = start + 1
            while stop < n and member[order[stop]] == k:
                stop += 1
            rows = order[start:stop]
            m = stop - start
            p = params[k * block : (k + 1) * block]
            x = np.empty((m, enc_width), dtype=np.float32)
            hot = np.full((m, keys.shape[0]), -1, dtype=np.int64)  # one-hot rows of keys with a precomputed block
            for key in range(keys.shape[0]):
                first, last = keys[key, FIRST], keys[key, LAST]
                col, dim = keys[key, COL], keys[key, DIM]
                if keys[key, BINARY]:  # folded first layer: bias + the table rows of the active inputs
                    n_out, w_off = layers[first, N_OUT], layers[first, W_OFF]
                    v = np.empty((m, n_out), dtype=np.float32)
                    for a in range(m):
                        r = rows[a]
                        v[a] = p[layers[first, B_OFF] : layers[first, B_OFF] + n_out]
                        v_row = v[a]
                        for j in range(dim):
                            if binary_x[r, col + j] != 0:
                                t = p[w_off + j * n_out : w_off + (j + 1) * n_out]
                                for o in range(n_out):
                                    v_row[o] += t[o]
                    _activate(v, layers[first, ACT])
                    first += 1
                else:
                    if keys[key, ONEHOT_OFF] >= 0:  # exactly one-hot rows (task ids): encoder and W_ih block skipped
                        all_hot = True
                        for a in range(m):
                            r = rows[a]
                            ones = 0
                            for j in range(dim):
                                xv = dense_x[r, col + j]
                                if xv == 1.0:
                                    ones += 1
                                    hot[a, key] = j
                                elif xv != 0.0:
                                    ones = 2
                            if ones != 1:
                                hot[a, key] = -1
                                all_hot = False
                        if all_hot:
                            out0 = keys[key, OUT_OFF]
                            width = layers[last - 1, N_OUT] if last > first else dim
                            x[:, out0 : out0 + width] = 0.0  # zero inputs: their W_ih rows are skipped
                            continue
                    # the teacher's normaliser: clip((x - mean) * istd)
                    nm = keys[key, NORM_OFF]
                    v = np.empty((m, dim), dtype=np.float32)
                    for a in range(m):
                        r = rows[a]
                        for j in range(dim):
                            z = (dense_x[r, col + j] - p[nm + j]) * p[nm + dim + j]
                            c = p[nm + 2 * dim + j]
                            v[a, j] = min(max(z, -c), c)
                for li in range(first, last):
                    v = _linear(p, v, layers[li, W_OFF], layers[li, B_OFF], layers[li, N_IN], layers[li, N_OUT], layers[li, ACT])
                x[:, keys[key, OUT_OFF] : keys[key, OUT_OFF] + v.shape[1]] = v
                for a in range(m):
                    if hot[a, key] >= 0:
                        x[a, keys[key, OUT_OFF] : keys[key, OUT_OFF] + v.shape[1]] = 0.0
            if hs > 0:  # torch.nn.GRU
                hm = np.empty((m, hs), dtype=np.float32)
                for a in range(m):
                    hm[a] = h[rows[a]]
                gi = _linear(p, x, w_ih, b_ih, gru_in, 3 * hs, 0)
                for key in range(keys.shape[0]):  # precomputed W_ih contributions of one-hot rows
                    pre = keys[key, ONEHOT_OFF]
                    if pre >= 0:
                        for a in range(m):
                            j = hot[a, key]
                            if j >= 0:
                                c = p[pre + j * 3 * hs : pre + (j + 1) * 3 * hs]
                                g = gi[a]
                                for o in range(3 * hs):
                                    g[o] += c[o]
                gh = _linear(p, hm, w_hh, b_hh, hs, 3 * hs, 0)
                x = np.empty((m, hs), dtype=np.float32)
                for a in range(m):
                    for j in range(hs):
                        rg = 1.0 / (1.0 + math.exp(-(gi[a, j] + gh[a, j])))
                        zg = 1.0 / (1.0 + math.exp(-(gi[a, hs + j] + gh[a, hs + j])))
                        ng = math.tanh(gi[a, 2 * hs + j] + rg * gh[a, 2 * hs + j])
                        x[a, j] = ng + zg * (hm[a, j] - ng)
                    h_out[rows[a]] = x[a]
            for li in range(dec_first, dec_last):
                x = _linear(p, x, layers[li, W_OFF], layers[li, B_OFF], layers[li, N_IN], layers[li, N_OUT], layers[li, ACT])
            lg = _linear(p, x, layers[head, W_OFF], layers[head, B_OFF], layers[head, N_IN], layers[head, N_OUT], 0)
            for a in range(m):
                logits_out[rows[a]] = lg[a]
            start = stop


class StackKernel:
    """A StackedTeachers group laid out for the kernel: one parameter block per teacher and the tables describing it."""

    def __init__(self, stack) -> None:
        k = stack.k
        parts: List[np.ndarray] = []  # [K, size] pieces of every teacher's block, in block order
        offset = [0]

        def put(t) -> int:
            arr = np.asarray(t.cpu().numpy() if hasattr(t, "cpu") else t, dtype=np.float32).reshape(k, -1)
            parts.append(arr)
            offset[0] += arr.shape[1]
            return offset[0] - arr.shape[1]

        layers: List[List[int]] = []

        def add_linear(w, b) -> None:  # w [K, in, out], b [K, 1, out]
            layers.append([put(w), put(b), int(w.shape[1]), int(w.shape[2]), 0])

        def add_mlp(mlp) -> None:
            for kind, val in mlp:
                if kind == "linear":
                    add_linear(*val)
                else:
                    layers[-1][ACT] = ACT_CODES[val]

        self.keys = list(stack.keys)
        self.binary_keys = [key for key in self.keys if key in stack.folded]
        self.dense_keys = [key for key in self.keys if key not in stack.folded]
        key_rows: List[List[int]] = []
        bcol = dcol = out = 0
        for key in self.keys:
            mlp = stack.encoders[key]
            dim = stack.key_dims[key]
            first = len(layers)
            norm_off = -1
            if key in stack.folded:
                add_linear(*stack.folded[key])
                add_mlp(mlp[1:])
                row = [1, bcol, dim]
                bcol += dim
            else:
                mean, istd, clip = stack.affine_normalizer(key, dim)
                norm_off = put(np.concatenate([mean, istd, np.broadcast_to(clip, (k, dim))], axis=1))
                add_mlp(mlp)
                row = [0, dcol, dim]
                dcol += dim
            width = layers[-1][N_OUT] if len(layers) > first else dim
            # exactly one-hot rows (task ids): a precomputed W_ih contribution replaces the encoder and its W_ih block
            one_hot_off = put(stack.one_hot[key]) if key in stack.one_hot else -1
            key_rows.append(row + [first, len(layers), out, norm_off, one_hot_off])
            out += width
        self.has_gru = stack.gru is not None  # without a core SF passes its placeholder rnn state through
        program = [out, stack.rnn_size if self.has_gru else 0]
        if self.has_gru:
            w_ih, w_hh, b_ih, b_hh = stack.gru
            program += [put(w_ih), put(w_hh), put(b_ih), put(b_hh), int(w_ih.shape[1])]
        else:
            program += [0, 0, 0, 0, 0]
        dec_first = len(layers)
        add_mlp(stack.decoder)
        program += [dec_first, len(layers)]
        add_linear(*stack.head)
        program.append(len(layers) - 1)
        self.num_logits = layers[-1][N_OUT]
        self.rnn_size = stack.rnn_size
        self.block = offset[0]
        self.params = np.ascontiguousarray(np.concatenate(parts, axis=1).reshape(-1))  # teacher-major blocks
        self.layers = np.array(layers, dtype=np.int64).reshape(-1, 5)
        self.key_table = np.array(key_rows, dtype=np.int64).reshape(-1, 8)
        self.program = np.array(program, dtype=np.int64)

    @staticmethod
    def _columns(arrays: List[np.ndarray], n: int, dtype) -> np.ndarray:
        if len(arrays) == 1 and arrays[0].dtype == dtype and arrays[0].flags.c_contiguous and arrays[0].ndim == 2:
            return arrays[0]
        if not arrays:
            return np.zeros((n, 0), dtype=dtype)
        return np.ascontiguousarray(np.concatenate([a.reshape(n, -1) for a in arrays], axis=1), dtype=dtype)

    def set_route(self, task_key, task_to_member: np.ndarray, task_to_teacher: np.ndarray) -> None:
        """Let the kernel route rows itself (argmax of `task_key`, None: every row is task 0): one call per batch."""
        if task_key is None:
            self.task_src = self._NO_SRC
        else:  # the key table's BINARY, COL, DIM are the kernel's (source 1 binary / 0 dense, column, width)
            self.task_src = np.ascontiguousarray(self.key_table[self.keys.index(task_key), [BINARY, COL, DIM]])
        self.route = np.ascontiguousarray(np.stack([task_to_member, task_to_teacher]).astype(np.int64))

    def routed(self, obs: Dict[str, np.ndarray], h: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As __call__, routed by the task id (set_route). Returns logits, new h, teacher index (float32) [n]."""
        n = h.shape[0]
        tidx = np.empty(n, dtype=np.float32)
        logits, new_h = self(obs, h, np.empty(n, dtype=np.int64), tidx)
        return logits, new_h, tidx

    _NO_ROUTE = np.zeros((2, 0), dtype=np.int64)
    _NO_SRC = np.array([-1, 0, 0], dtype=np.int64)
    _NO_TIDX = np.zeros(0, dtype=np.float32)

    def __call__(
        self, obs: Dict[str, np.ndarray], h: np.ndarray, member: np.ndarray, tidx=None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """obs: key -> [n, D]; h: [n, >= H] float32; member: [n] int64 (routed(): filled by the kernel, with the
        teacher index written to tidx). Returns logits [n, A], new h [n, H]."""
        n = member.shape[0]
        binary = []
        for key in self.binary_keys:
            x = obs[key]
            binary.append(x.view(np.uint8) if x.dtype.itemsize == 1 else (x != 0).astype(np.uint8))
        binary_x = self._columns(binary, n, np.uint8)
        dense_x = self._columns([obs[key] for key in self.dense_keys], n, np.float32)
        h = np.array(h[:, : self.rnn_size], dtype=np.float32, order="C")  # a copy: returned as is without a core
        logits = np.empty((n, self.num_logits), dtype=np.float32)
        new_h = np.empty_like(h) if self.has_gru else h
        routing = tidx is not None
        _stack_forward(
            member, binary_x, dense_x, h, self.params, self.block, self.layers, self.key_table, self.program,
            self.route if routing else self._NO_ROUTE, self.task_src if routing else self._NO_SRC, logits, new_h,
            tidx if routing else self._NO_TIDX,
        )
        return logits, new_h
