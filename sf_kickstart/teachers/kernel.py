"""One compiled CPU kernel for a StackedTeachers group: each teacher's rows through that teacher's weights, all layers,
in one call.

Why: at rollout batch sizes on CPU a teacher's cost is not FLOPs but per-op overhead and cold caches (the student's
forward runs between two teacher calls and evicts the teachers' weights). A torch implementation of K stacked teachers
is ~40 dispatched ops (grouping, padding, one baddbmm per layer, GRU gates, un-padding), each paying the cold start;
the kernel is one call that streams each present teacher's weights once (they are laid out contiguously, teacher by
teacher) and, for binary observation keys, reads only the table rows of the active inputs.
`python -m benchmarks.teacher_cost` measures it against the torch implementation next to the student's forward.

The network family is StackedTeachers' (SF's shared-weights actor-critic: per-key MLP encoders, optional 1-layer GRU,
MLP decoder, one linear head: categorical, or a Gaussian's state-dependent means and log-stds, plus the critic's column
with teacher values). `KernelExecutor` is the kernel as one executor of the teacher bank; the bank
uses it only after checking that it reproduces every member teacher's own forward (else the torch executor runs, as
it does without numba or off the CPU).

Kernel inputs are named (`Net`: parameters, layer and key tables, `Program`; `Route`; `Batch`; `Outputs`), NamedTuples
numba passes by value.
"""

from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Optional, Tuple

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
    def _route_rows(route, dense_x, binary_x, member, tidx_out):
        """member[r] and tidx_out[r] from the argmax of row r's task id (route.source -1: every row is task 0)."""
        for r in range(member.shape[0]):
            task = 0
            if route.source >= 0:
                best = -np.inf
                for j in range(route.width):
                    c = route.column + j
                    v = dense_x[r, c] if route.source == 0 else np.float32(binary_x[r, c])
                    if v > best:
                        best = v
                        task = j
            member[r] = route.task_member[task]
            tidx_out[r] = route.task_teacher[task]

    @njit(cache=True, nogil=True)
    def _folded_binary(p, layers, first, binary_x, rows, col, dim):
        """A binary key's folded first layer: bias + the table rows of the active inputs, activated."""
        m = rows.shape[0]
        n_out, w_off, b_off = layers[first, N_OUT], layers[first, W_OFF], layers[first, B_OFF]
        v = np.empty((m, n_out), dtype=np.float32)
        for a in range(m):
            v[a] = p[b_off : b_off + n_out]
            v_row = v[a]
            for j in range(dim):
                if binary_x[rows[a], col + j] != 0:
                    t = p[w_off + j * n_out : w_off + (j + 1) * n_out]
                    for o in range(n_out):
                        v_row[o] += t[o]
        _activate(v, layers[first, ACT])
        return v

    @njit(cache=True, nogil=True)
    def _one_hot_rows(dense_x, rows, col, dim, hot, key):
        """hot[a, key] = the hot index of rows that are exactly one-hot (else -1); True when all of them are."""
        all_hot = True
        for a in range(rows.shape[0]):
            ones = 0
            for j in range(dim):
                xv = dense_x[rows[a], col + j]
                if xv == 1.0:
                    ones += 1
                    hot[a, key] = j
                elif xv != 0.0:
                    ones = 2
            if ones != 1:
                hot[a, key] = -1
                all_hot = False
        return all_hot

    @njit(cache=True, nogil=True)
    def _normalized_dense(p, dense_x, rows, col, dim, nm):
        """The teacher's normaliser on a dense key: clip((x - mean) * istd)."""
        v = np.empty((rows.shape[0], dim), dtype=np.float32)
        for a in range(rows.shape[0]):
            for j in range(dim):
                z = (dense_x[rows[a], col + j] - p[nm + j]) * p[nm + dim + j]
                c = p[nm + 2 * dim + j]
                v[a, j] = min(max(z, -c), c)
        return v

    @njit(cache=True, nogil=True)
    def _mlp(p, layers, first, last, v):
        for li in range(first, last):
            v = _linear(p, v, layers[li, W_OFF], layers[li, B_OFF], layers[li, N_IN], layers[li, N_OUT], layers[li, ACT])
        return v

    @njit(cache=True, nogil=True)
    def _encode(net, p, batch, rows, hot):
        """Every key's encoder output for one teacher's rows, concatenated [m, enc_width]; hot: one-hot rows."""
        keys, layers = net.keys, net.layers
        x = np.empty((rows.shape[0], net.program.enc_width), dtype=np.float32)
        for key in range(keys.shape[0]):
            first, last = keys[key, FIRST], keys[key, LAST]
            col, dim, out0 = keys[key, COL], keys[key, DIM], keys[key, OUT_OFF]
            if keys[key, BINARY]:
                v = _mlp(p, layers, first + 1, last, _folded_binary(p, layers, first, batch.binary_x, rows, col, dim))
            else:
                if keys[key, ONEHOT_OFF] >= 0 and _one_hot_rows(batch.dense_x, rows, col, dim, hot, key):
                    width = layers[last - 1, N_OUT] if last > first else dim
                    x[:, out0 : out0 + width] = 0.0  # encoder and W_ih block skipped: precomputed contribution
                    continue
                v = _mlp(p, layers, first, last, _normalized_dense(p, batch.dense_x, rows, col, dim, keys[key, NORM_OFF]))
            x[:, out0 : out0 + v.shape[1]] = v
            for a in range(rows.shape[0]):
                if hot[a, key] >= 0:
                    x[a, out0 : out0 + v.shape[1]] = 0.0
        return x

    @njit(cache=True, nogil=True)
    def _gru(net, p, x, hm, hot):
        """torch.nn.GRU's step, with the precomputed W_ih contributions of one-hot rows added."""
        g, hs = net.program, net.program.hidden
        gi = _linear(p, x, g.w_ih, g.b_ih, g.gru_in, 3 * hs, 0)
        for key in range(net.keys.shape[0]):
            pre = net.keys[key, ONEHOT_OFF]
            if pre >= 0:
                for a in range(x.shape[0]):
                    j = hot[a, key]
                    if j >= 0:
                        c = p[pre + j * 3 * hs : pre + (j + 1) * 3 * hs]
                        for o in range(3 * hs):
                            gi[a, o] += c[o]
        gh = _linear(p, hm, g.w_hh, g.b_hh, hs, 3 * hs, 0)
        out = np.empty((x.shape[0], hs), dtype=np.float32)
        for a in range(x.shape[0]):
            for j in range(hs):
                rg = 1.0 / (1.0 + math.exp(-(gi[a, j] + gh[a, j])))
                zg = 1.0 / (1.0 + math.exp(-(gi[a, hs + j] + gh[a, hs + j])))
                ng = math.tanh(gi[a, 2 * hs + j] + rg * gh[a, 2 * hs + j])
                out[a, j] = ng + zg * (hm[a, j] - ng)
        return out

    @njit(cache=True, nogil=True)
    def _teacher_rows(net, k, batch, rows, out):
        """One teacher's rows through all of its layers; results scattered into out."""
        p = net.params[k * net.block : (k + 1) * net.block]
        hot = np.full((rows.shape[0], net.keys.shape[0]), -1, dtype=np.int64)
        x = _encode(net, p, batch, rows, hot)
        prog, layers = net.program, net.layers
        if prog.hidden > 0:
            hm = np.empty((rows.shape[0], prog.hidden), dtype=np.float32)
            for a in range(rows.shape[0]):
                hm[a] = batch.h[rows[a]]
            x = _gru(net, p, x, hm, hot)
            for a in range(rows.shape[0]):
                out.h[rows[a]] = x[a]
        x = _mlp(p, layers, prog.dec_first, prog.dec_last, x)
        head = prog.head
        lg = _linear(p, x, layers[head, W_OFF], layers[head, B_OFF], layers[head, N_IN], layers[head, N_OUT], 0)
        for a in range(rows.shape[0]):
            out.logits[rows[a]] = lg[a]

    @njit(cache=True, nogil=True)
    def _stack_forward(net, route, batch, out):
        """Every row through its teacher's weights (net: a StackKernel's tables), rows routed first when route has
        tasks (else batch.member is given). Writes out.logits, out.h and (routing) out.tidx."""
        member = batch.member
        if route.task_member.shape[0] > 0:
            _route_rows(route, batch.dense_x, batch.binary_x, member, out.tidx)
        n = member.shape[0]
        order = np.argsort(member, kind="mergesort")
        start = 0
        while start < n:
            k = member[order[start]]
            stop = start + 1
            while stop < n and member[order[stop]] == k:
                stop += 1
            _teacher_rows(net, k, batch, order[start:stop], out)
            start = stop

    @njit(cache=True, nogil=True)
    def _forward(params, block, layers, keys, program, task_member, task_teacher, source, column, width,
                 member, binary_x, dense_x, h, logits, h_out, tidx):
        """The entry point: `StackKernel.__call__` passes the fields of Net, Route, Batch and Outputs (in their
        order) as plain arrays and ints, which numba dispatches fast (NamedTuple arguments cost more to type-check
        than a small batch costs to compute); they are named again here."""
        p = program
        prog = Program(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9])
        _stack_forward(
            Net(params, block, layers, keys, prog), Route(task_member, task_teacher, source, column, width),
            Batch(member, binary_x, dense_x, h), Outputs(logits, h_out, tidx),
        )


class Program(NamedTuple):
    """Where the non-encoder parts of a teacher's block are: widths and offsets into its parameter block / layer table."""

    enc_width: int  # concatenated encoder outputs (the GRU's / decoder's input width)
    hidden: int  # GRU hidden size, 0 without a recurrent core
    w_ih: int
    w_hh: int
    b_ih: int
    b_hh: int
    gru_in: int
    dec_first: int  # decoder layers: rows dec_first..dec_last-1 of the layer table
    dec_last: int
    head: int  # the action head's row of the layer table


class Net(NamedTuple):
    """A stacked group's parameters: K teacher-major blocks of `block` floats and the tables describing them."""

    params: np.ndarray
    block: int
    layers: np.ndarray  # [L, 5] int64: W_OFF, B_OFF, N_IN, N_OUT, ACT
    keys: np.ndarray  # [num_keys, 8] int64: BINARY, COL, DIM, FIRST, LAST, OUT_OFF, NORM_OFF, ONEHOT_OFF
    program: Program


class Route(NamedTuple):
    """Task -> (member in the group, teacher index in the bank), and where the task id is in the inputs."""

    task_member: np.ndarray  # [T] int64 (empty: rows come with their member, no routing)
    task_teacher: np.ndarray  # [T] int64
    source: int  # 0 dense inputs, 1 binary inputs, -1 no task id (every row is task 0)
    column: int
    width: int


class Batch(NamedTuple):
    member: np.ndarray  # [n] int64, each row's member (filled by the kernel when routing)
    binary_x: np.ndarray  # [n, Db] uint8
    dense_x: np.ndarray  # [n, Dd] float32
    h: np.ndarray  # [n, H] float32


class Outputs(NamedTuple):
    logits: np.ndarray  # [n, A] float32
    h: np.ndarray  # [n, H] float32
    tidx: np.ndarray  # [n] float32 teacher index (routing only)


NO_ROUTE = Route(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), -1, 0, 0)
_NO_TIDX = np.zeros(0, dtype=np.float32)


class _Layout:
    """Builds one teacher-major parameter block per teacher and the layer table, from a StackedTeachers layout."""

    def __init__(self, k: int):
        self.k = k
        self.parts: List[np.ndarray] = []  # [K, size] pieces of every teacher's block, in block order
        self.size = 0
        self.layers: List[List[int]] = []

    def put(self, t) -> int:
        arr = np.asarray(t.cpu().numpy() if hasattr(t, "cpu") else t, dtype=np.float32).reshape(self.k, -1)
        self.parts.append(arr)
        self.size += arr.shape[1]
        return self.size - arr.shape[1]

    def add_linear(self, w, b) -> None:  # w [K, in, out], b [K, 1, out]
        self.layers.append([self.put(w), self.put(b), int(w.shape[1]), int(w.shape[2]), 0])

    def add_mlp(self, mlp) -> None:
        for kind, val in mlp:
            if kind == "linear":
                self.add_linear(*val)
            else:
                self.layers[-1][ACT] = ACT_CODES[val]

    def add_key(self, stack, key: str, col: int, out: int) -> List[int]:
        """A key's encoder; its key-table row (BINARY, COL, DIM, FIRST, LAST, OUT_OFF, NORM_OFF, ONEHOT_OFF)."""
        dim, first, norm_off = stack.key_dims[key], len(self.layers), -1
        if key in stack.folded:
            self.add_linear(*stack.folded[key])
            self.add_mlp(stack.encoders[key][1:])
        else:
            mean, istd, clip = stack.affine_normalizer(key, dim)
            norm_off = self.put(np.concatenate([mean, istd, np.broadcast_to(clip, (self.k, dim))], axis=1))
            self.add_mlp(stack.encoders[key])
        one_hot_off = self.put(stack.one_hot[key]) if key in stack.one_hot else -1
        return [int(key in stack.folded), col, dim, first, len(self.layers), out, norm_off, one_hot_off]

    def width(self, row: List[int]) -> int:
        first, last, dim = row[FIRST], row[LAST], row[DIM]
        return self.layers[last - 1][N_OUT] if last > first else dim


def build_net(stack) -> Net:
    """A StackedTeachers group laid out for the kernel."""
    lay = _Layout(stack.k)
    key_rows: List[List[int]] = []
    bcol = dcol = out = 0
    for key in stack.keys:
        binary = key in stack.folded
        row = lay.add_key(stack, key, bcol if binary else dcol, out)
        bcol, dcol = (bcol + row[DIM], dcol) if binary else (bcol, dcol + row[DIM])
        key_rows.append(row)
        out += lay.width(row)
    gru = [0, 0, 0, 0, 0]
    if stack.gru is not None:  # without a core SF passes its placeholder rnn state through
        w_ih, w_hh, b_ih, b_hh = stack.gru
        gru = [lay.put(w_ih), lay.put(w_hh), lay.put(b_ih), lay.put(b_hh), int(w_ih.shape[1])]
    dec_first = len(lay.layers)
    lay.add_mlp(stack.decoder)
    dec_last = len(lay.layers)
    lay.add_linear(*stack.head)
    hidden = stack.rnn_size if stack.gru is not None else 0
    program = Program(out, hidden, *gru, dec_first, dec_last, len(lay.layers) - 1)
    return Net(
        params=np.ascontiguousarray(np.concatenate(lay.parts, axis=1).reshape(-1)),  # teacher-major blocks
        block=lay.size,
        layers=np.array(lay.layers, dtype=np.int64).reshape(-1, 5),
        keys=np.array(key_rows, dtype=np.int64).reshape(-1, 8),
        program=program,
    )


class StackKernel:
    """A StackedTeachers group as the kernel runs it: numpy in, numpy out."""

    def __init__(self, stack) -> None:
        self.keys = list(stack.keys)
        self.binary_keys = [key for key in self.keys if key in stack.folded]
        self.dense_keys = [key for key in self.keys if key not in stack.folded]
        self.net = build_net(stack)
        # Net's fields as the kernel's entry takes them (Program as an int64 array in its field order)
        self.static_args = (*self.net[:4], np.array(self.net.program, dtype=np.int64))
        self.has_gru = stack.gru is not None
        self.num_logits = int(self.net.layers[-1, N_OUT])
        self.rnn_size = stack.rnn_size
        self.route = NO_ROUTE

    @staticmethod
    def _columns(arrays: List[np.ndarray], n: int, dtype) -> np.ndarray:
        if len(arrays) == 1 and arrays[0].dtype == dtype and arrays[0].flags.c_contiguous and arrays[0].ndim == 2:
            return arrays[0]
        if not arrays:
            return np.zeros((n, 0), dtype=dtype)
        return np.ascontiguousarray(np.concatenate([a.reshape(n, -1) for a in arrays], axis=1), dtype=dtype)

    def set_route(self, task_key: Optional[str], task_to_member: np.ndarray, task_to_teacher: np.ndarray) -> None:
        """Let the kernel route rows itself (argmax of `task_key`, None: every row is task 0): one call per batch."""
        source = column = width = 0
        if task_key is None:
            source = -1
        else:  # the key table's BINARY, COL, DIM: source 1 binary / 0 dense, column, width
            source, column, width = (int(v) for v in self.net.keys[self.keys.index(task_key), [BINARY, COL, DIM]])
        as_int = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.int64))  # noqa: E731
        self.route = Route(as_int(task_to_member), as_int(task_to_teacher), source, column, width)

    def routed(self, obs: Dict[str, np.ndarray], h: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As __call__, routed by the task id (set_route). Returns logits, new h, teacher index (float32) [n]."""
        n = h.shape[0]
        tidx = np.empty(n, dtype=np.float32)
        logits, new_h = self(obs, h, np.empty(n, dtype=np.int64), tidx)
        return logits, new_h, tidx

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
        # Net, Route, Batch and Outputs, field by field
        _forward(*self.static_args, *(self.route if tidx is not None else NO_ROUTE),
                 member, binary_x, dense_x, h, logits, new_h, tidx if tidx is not None else _NO_TIDX)
        return logits, new_h


class KernelExecutor:
    """The CPU fast path as an executor of the teacher bank: a StackedTeachers group run by the compiled kernel
    (torch tensors in and out). `routed` also routes rows by their task id inside the kernel (set_route)."""

    def __init__(self, stack):
        self.stack = stack
        self.members = list(stack.members)
        self.kernel = StackKernel(stack)

    def forward(self, obs, rnn_states, member: np.ndarray):
        import torch

        logits, new_h = self.kernel({k: obs[k].numpy() for k in self.kernel.keys}, rnn_states.numpy(), member)
        return torch.from_numpy(logits), torch.from_numpy(new_h)

    def set_route(self, task_key: Optional[str], task_to_member: np.ndarray, task_to_teacher: np.ndarray) -> None:
        self.kernel.set_route(task_key, task_to_member, task_to_teacher)

    def routed(self, obs, rnn_states):
        import torch

        logits, new_h, tidx = self.kernel.routed(
            {k: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in obs.items()}, rnn_states.numpy()
        )
        return torch.from_numpy(logits), torch.from_numpy(tidx), torch.from_numpy(new_h)
