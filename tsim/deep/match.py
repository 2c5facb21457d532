"""Align two deep nets modulo permutation: weight_matching, activation_matching, sparsity.

Convention (stated once, tested): a result ``perms`` maps each permutation name to a LongTensor
perm such that ``apply_perm(spec, perms, sd_b)`` aligns B with A; on every permuted axis,
new unit i of B is old unit ``perm[i]`` (``w.index_select(axis, perm)``). If B is A with its
units shuffled by ``q`` (B = apply_perm(spec, q, A)) then matching returns argsort(q).

Weight matching (Ainsworth et al. 2022, arXiv:2209.04836, Alg. 1) maximises the objective
J(pi) = sum_k <W_k^A, pi(W_k^B)>. For one permutation P with all others fixed, J is linear in P:
sum_{(k, a) in P} <W_A^{(a)}, P W_B^{(a)}>, where W^{(a)} is the tensor with axis a moved first and
the rest flattened; maximising it is a linear assignment problem (LAP), solved exactly by
:func:`tsim.match.solve_assignment` on the cost rounded for ties (:func:`tsim.match.round_ties`),
the same solver and tie rule as two-layer weight matching. Coordinate descent (CD) over the
permutations, the algorithm of git-re-basin and the ``rebasin`` package, stops at the first
permutation set that no single LAP improves; from the identity that is often far from the best
(on a noisy planted copy of an MLP, below the planted permutation). :func:`weight_matching`
therefore searches in three stages, all seeded, keeping the best J:

1. **Start** (``init``): ``"layerwise"`` (default) solves the permutations one at a time from the
   input side, each from the entries whose other permuted axes are already solved (P0 from the
   first layer alone, P1 from the second layer given P0, ...); ``"anneal"`` runs graduated
   assignment (Gold & Rangarajan 1996): soft (doubly stochastic, Sinkhorn) permutations updated in
   turn while the inverse temperature rises, then rounded by one LAP each; ``"identity"`` is the
   plain start (with ``restarts=0`` it reproduces the classic CD exactly); or a dict of perms.
2. **Coordinate descent** from that start. Permutations are visited in a random order drawn from
   a seeded ``torch.Generator``; sweeps stop when none improves. A permutation whose neighbours
   (permutations sharing a tensor with it) are unchanged since its last solve is skipped: its LAP
   input, hence its answer, is the same.
3. **Restarts** (``restarts``): the first is an annealed start (when the start was not one), the
   others are kicks of the best permutations (iterated local search): a random fraction ``kick`` of
   the units of one random permutation is shuffled, then CD runs from there, visiting that
   permutation's neighbours first. A result replaces the best only if J is higher. The restarts
   may spend ``budget * max(W, MIN_WORK)`` work, W the work of stages 1-2, counted (flops of the
   cost matrices plus n^3 per LAP), not timed, so the result does not depend on the machine; a
   restart starts only if its estimated work fits. Small nets thus get the annealed restart and
   kicks (a few 1e-2 s); large ones (e.g. 3 x 512 units) about one kick, so the whole search
   stays within the time of CD from the identity. ``time_budget`` (seconds) can stop restarts
   earlier; then the result may depend on the machine's speed.

Measured (benchmarks/bench_deep.py): on noisy planted copies of MLPs (noise 2x and 8x the weight
std) the search reaches at least the planted permutation's J where CD from the identity stalls
8-12% below it; on independent pairs it ends 1-10% above CD. ``init="anneal"`` is stronger still
on trained and planted nets (on two MNIST-trained 784-512-512-512-10 MLPs: J 93.7 against 90.2
for the layerwise start and 86.9 for CD) at several times the default search's time.

Activation matching (Li et al. 2015, arXiv:1511.07543; Entezari et al. 2021, arXiv:2110.06296):
per permutation, the Pearson correlation C_ij between unit i of A and unit j of B over data
(spatial positions count as samples), perm = argmax_P sum_i C_{i P(i)}.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from tsim.deep.spec import PermutationSpec, check_spec
from tsim.match import round_ties, solve_assignment


@dataclass(frozen=True)
class MatchResult:
    """Permutations aligning B to A.

    Attributes
    ----------
    perms : dict[str, LongTensor of shape (n_P,)]
    sweeps : int, coordinate-descent sweeps of the run that gave the best J (1 for activation matching)
    objective : float, sum_k <W_k^A, pi(W_k^B)> (weight) or sum of matched correlations (activation)
    seconds : float
    restarts : int, restarts run after the first descent (weight matching)
    laps : int, linear assignment problems solved
    start : str, the start that gave the best J: "layerwise", "anneal", "identity", "given" or "kick"
    """

    perms: dict
    sweeps: int
    objective: float
    seconds: float
    restarts: int = 0
    laps: int = 0
    start: str = ""


def lap_max(C: np.ndarray) -> np.ndarray:
    """perm maximising sum_i C[i, perm[i]] for a square C (n, n): the core exact solver, ties rounded."""
    C = np.array(C, dtype=np.float64)
    return solve_assignment(round_ties(C, out=C), maximize=True)


def identity_perms(sizes: dict) -> dict:
    """{name: arange(n)}."""
    return {p: torch.arange(n) for p, n in sizes.items()}


WM_INITS = ("layerwise", "anneal", "identity")
ANNEAL_BETAS = tuple(np.geomspace(1.0, 30.0, 20))  # inverse temperatures, in units of 1 / std(C)
SINKHORN_ITERS = 20
BLAS_SERIAL_BELOW = 1024  # nets narrower than this are matched on one BLAS thread
MIN_WORK = 2e8  # restarts may always spend budget * this much work (about 1e-2 s): small nets get a real search


def _matchable(state_dict: dict, keys) -> list[str]:
    if keys is not None:
        keys = list(keys)
        unknown = [k for k in keys if k not in state_dict]
        if unknown:
            raise ValueError(f"keys not in the state_dict: {unknown}; name state_dict entries.")
        return keys
    return [k for k, v in state_dict.items() if v.is_floating_point()
            and not k.endswith(("running_mean", "running_var"))]


def _numpy64(t) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


class _Term:
    """One entry seen from permutation p: A flattened (n_p, rest), B with axis a moved first, the
    other permuted axes of B (position, name), and the last contribution A2 (pi B)^T with the
    permutation it was computed for (entries with one other permuted axis only)."""

    __slots__ = ("A2", "Am", "Bm", "others", "snap", "value", "updates", "low")

    def __init__(self, A2: np.ndarray, Bm: np.ndarray, others: list):
        self.A2, self.Bm, self.others = A2, Bm, others
        self.Am = A2.reshape(Bm.shape)
        self.snap, self.value, self.updates = None, None, 0
        self.low = None  # (A2, Bm) in float32 for the soft costs of annealing, made on first use

    def float32(self) -> tuple[np.ndarray, np.ndarray]:
        if self.low is None:
            self.low = (self.A2.astype(np.float32), self.Bm.astype(np.float32))
        return self.low


class _Objective:
    """J(pi) = sum_k <W_k^A, pi(W_k^B)> in numpy float64, with the pieces of every LAP cost cached.

    For permutation p the cost is C_p = static_p + sum over its dynamic terms A2 (pi_{-p} B)^T:
    ``static_p`` sums the entries whose other axes are not permuted (computed once); a dynamic
    term keeps A's tensor flattened (n_p, rest) and B's with axis a moved first. A term with one
    other permuted axis q keeps its last contribution: when q changed on a few units R only, the
    update is the low-rank A2[:, R] (B[:, new R] - B[:, old R])^T instead of a full product.
    ``work`` counts flops of the cost matrices plus n^3 per LAP (a machine-independent clock).
    """

    REFRESH = 64  # a cached contribution is recomputed in full after this many low-rank updates

    def __init__(self, spec: PermutationSpec, sd_a: dict, sd_b: dict, keys: list[str]):
        self.sizes = check_spec(spec, sd_a)
        self.names = list(self.sizes)
        self.entries = []  # (A, B, axes) of every key
        self.static = {p: np.zeros((n, n)) for p, n in self.sizes.items()}
        self.terms: dict = {p: [] for p in self.names}
        self.work, self.laps = 0.0, 0
        for k in keys:
            a_k, b_k = _numpy64(sd_a[k]), _numpy64(sd_b[k])
            if a_k.shape != b_k.shape:
                raise ValueError(f"entry {k!r} has shape {a_k.shape} in A but {b_k.shape} in B; "
                                 f"match nets of the same architecture.")
            self.entries.append((a_k, b_k, spec.axes[k]))
            self._add_terms(a_k, b_k, spec.axes[k])
        self.neighbours = {p: sorted({q for t in self.terms[p] for _, q in t.others}) for p in self.names}

    def _add_terms(self, a_k: np.ndarray, b_k: np.ndarray, axes: tuple) -> None:
        for a, p in enumerate(axes):
            if p is None:
                continue
            n = self.sizes[p]
            order = [a] + [i for i in range(len(axes)) if i != a]
            A2 = np.ascontiguousarray(np.moveaxis(a_k, a, 0).reshape(n, -1))
            Bm = np.ascontiguousarray(np.moveaxis(b_k, a, 0))
            others = [(j, axes[i]) for j, i in enumerate(order) if j and axes[i] is not None]
            if others:
                self.terms[p].append(_Term(A2, Bm, others))
            else:
                self.static[p] += A2 @ Bm.reshape(n, -1).T

    def cost(self, p: str, perms: dict, known=None) -> np.ndarray:
        """C_p given the other permutations; terms with a permutation outside ``known`` are left out."""
        C = self.static[p].copy()
        for t in self.terms[p]:
            if known is None or all(q in known for _, q in t.others):
                C += self._contribution(t, perms)
        return C

    def _contribution(self, t: _Term, perms: dict) -> np.ndarray:
        n = t.A2.shape[0]
        if len(t.others) == 1 and t.snap is not None and t.updates < self.REFRESH:
            j, q = t.others[0]
            new, old = perms[q], t.snap
            changed = np.flatnonzero(new != old)
            if changed.size == 0:
                return t.value
            if 2 * changed.size < len(new):
                Ad = np.take(t.Am, changed, axis=j).reshape(n, -1)
                Bd = np.take(t.Bm, new[changed], axis=j) - np.take(t.Bm, old[changed], axis=j)
                t.value = t.value + Ad @ Bd.reshape(n, -1).T
                t.snap, t.updates = new.copy(), t.updates + 1
                self.work += 2.0 * Ad.size * n
                return t.value
        Bp = t.Bm
        for j, q in t.others:
            Bp = np.take(Bp, perms[q], axis=j)
        value = t.A2 @ Bp.reshape(n, -1).T
        self.work += 2.0 * t.A2.size * n
        if len(t.others) == 1:
            t.snap, t.value, t.updates = perms[t.others[0][1]].copy(), value, 0
        return value

    def soft_cost(self, p: str, S: dict) -> np.ndarray:
        """C_p with every other permutation q replaced by a soft one S[q] (n_q, n_q), rows = A's units.

        The products run in float32 (S float32): annealing is approximate, its rounding exact."""
        C = self.static[p].copy()
        n = self.sizes[p]
        for t in self.terms[p]:
            A2, Bp = t.float32()
            for j, q in t.others:
                Bp = np.moveaxis(np.tensordot(S[q], Bp, axes=(1, j)), 0, j)
                self.work += Bp.size * self.sizes[q]
            C += A2 @ Bp.reshape(n, -1).T
            self.work += A2.size * n
        return C

    def solve(self, C: np.ndarray) -> np.ndarray:
        """The LAP argmax of C (ties rounded; C is overwritten)."""
        self.laps += 1
        self.work += float(C.shape[0]) ** 3
        return solve_assignment(round_ties(C, out=C), maximize=True)

    def value(self, perms: dict) -> float:
        """J(perms)."""
        total = 0.0
        for a_k, b_k, axes in self.entries:
            for a, q in enumerate(axes):
                if q is not None:
                    b_k = np.take(b_k, perms[q], axis=a)
            total += float(np.vdot(a_k, b_k))
        return total


class _Descent:
    """Coordinate descent state: permutations, their versions and the neighbour versions at each last solve."""

    def __init__(self, obj: _Objective, perms: dict, start: str):
        self.obj, self.start, self.sweeps = obj, start, 0
        self.perms = {p: np.array(perms[p], dtype=np.int64) for p in obj.names}
        self.version = {p: 0 for p in obj.names}
        self.seen: dict = {}

    def copy(self, start: str) -> "_Descent":
        new = _Descent(self.obj, self.perms, start)
        new.version, new.seen = dict(self.version), dict(self.seen)
        return new

    def _state(self, p: str) -> tuple:
        return tuple(self.version[q] for q in self.obj.neighbours[p]) + (self.version[p],)

    def set(self, p: str, perm: np.ndarray) -> None:
        self.perms[p] = perm
        self.version[p] += 1

    def step(self, p: str) -> bool:
        """Solve the LAP of p given the others; True when J rose."""
        if self.seen.get(p) == self._state(p):
            return False
        C = self.obj.cost(p, self.perms)
        rows = np.arange(len(C))
        old = C[rows, self.perms[p]].sum()
        new = self.obj.solve(C.copy())
        improved = C[rows, new].sum() > old + 1e-12 * max(1.0, abs(old))
        if improved:
            self.set(p, new)
        self.seen[p] = self._state(p)
        return bool(improved)

    def run(self, orders, max_iter: int) -> "_Descent":
        """Sweeps in the orders drawn from ``orders()`` until one improves nothing (or max_iter)."""
        for sweep in range(1, max_iter + 1):
            improved = False
            for p in orders():
                improved |= self.step(p)
            self.sweeps = sweep
            if not improved:
                break
        self.objective = self.obj.value(self.perms)
        return self


def _layerwise(obj: _Objective) -> dict:
    """Permutations solved one at a time in spec order (first appearance in the state_dict: the
    input side first for tsim's models), each from the entries whose other permuted axes are
    already solved."""
    perms: dict = {}
    for p in obj.names:
        perms[p] = obj.solve(obj.cost(p, perms, known=perms.keys()))
    return perms


def _sinkhorn(L: np.ndarray, iters: int | None = None, tol: float = 1e-3) -> np.ndarray:
    """The doubly stochastic scaling u_i exp(L_ij) v_j (Sinkhorn-Knopp): at most ``iters`` rounds,
    fewer once every row sums to 1 within ``tol`` (columns sum to 1 after each round)."""
    iters = SINKHORN_ITERS if iters is None else iters
    K = np.exp(np.maximum(L - L.max(axis=1, keepdims=True), -200.0))
    v = np.ones(K.shape[1])
    Kv = K @ v
    for it in range(1, iters + 1):
        u = 1.0 / np.maximum(Kv, 1e-300)
        v = 1.0 / np.maximum(K.T @ u, 1e-300)
        Kv = K @ v
        if it % 5 == 0 and float(np.abs(u * Kv - 1.0).max()) < tol:
            break
    S = (u[:, None] * K) * v[None, :]
    S[S < 1e-30] = 0.0  # no subnormal numbers: they make the next products 100x slower
    return S


def _anneal(obj: _Objective, betas=None) -> dict:
    """Graduated assignment: soft permutations S_p = sinkhorn(beta C_p / std(C_p)), updated in turn
    from uniform while beta rises, then rounded in spec order by one LAP each (rounded ones hard)."""
    S = {p: np.full((n, n), 1.0 / n, dtype=np.float32) for p, n in obj.sizes.items()}
    for beta in (ANNEAL_BETAS if betas is None else betas):
        for p in obj.names:
            C = obj.soft_cost(p, S)
            S[p] = _sinkhorn(beta * C / max(float(C.std()), 1e-300)).astype(np.float32)
            obj.work += 6.0 * C.size * SINKHORN_ITERS
    perms: dict = {}
    for p in obj.names:
        perms[p] = obj.solve(obj.soft_cost(p, S))
        S[p] = np.eye(len(perms[p]), dtype=np.float32)[perms[p]]
    return perms


def _torch_orders(names: list[str], seed: int):
    gen = torch.Generator().manual_seed(seed)
    return lambda: [names[i] for i in torch.randperm(len(names), generator=gen).tolist()]


def _kick_orders(names: list[str], first: list[str], rng: np.random.Generator):
    """Visiting orders: ``first`` (shuffled) then the rest on the first sweep; random after."""
    sweeps = [0]

    def orders():
        sweeps[0] += 1
        if sweeps[0] == 1:
            rest = [p for p in names if p not in first]
            return [first[i] for i in rng.permutation(len(first))] + [rest[i] for i in rng.permutation(len(rest))]
        return [names[i] for i in rng.permutation(len(names))]
    return orders


def _kicked(best: _Descent, rng: np.random.Generator, frac: float, names: list[str]) -> tuple[_Descent, str]:
    """A copy of ``best`` with a fraction ``frac`` of the units of one of ``names`` (drawn) shuffled."""
    p = names[int(rng.integers(len(names)))]
    n = best.obj.sizes[p]
    idx = rng.choice(n, size=min(n, max(2, int(round(frac * n)))), replace=False)
    perm = best.perms[p].copy()
    perm[idx] = perm[rng.permutation(idx)]
    new = best.copy("kick")
    new.set(p, perm)
    return new, p


def _start(obj: _Objective, init, sizes: dict) -> tuple[dict, str]:
    if isinstance(init, dict):
        missing = [p for p in sizes if p not in init]
        if missing:
            raise ValueError(f"init lacks permutations {missing}; give one per spec permutation.")
        perms = {p: np.asarray(torch.as_tensor(init[p]).cpu(), dtype=np.int64) for p in sizes}
        bad = [p for p, n in sizes.items() if not np.array_equal(np.sort(perms[p]), np.arange(n))]
        if bad:
            raise ValueError(f"init[{bad[0]!r}] is not a permutation of range({sizes[bad[0]]}).")
        return perms, "given"
    if init == "layerwise":
        return _layerwise(obj), init
    if init == "anneal":
        return _anneal(obj), init
    if init == "identity":
        return {p: np.arange(n) for p, n in sizes.items()}, init
    raise ValueError(f"init must be one of {WM_INITS} or a dict of permutations; got {init!r}.")


def _anneal_work(obj: _Objective, betas=None) -> float:
    """Estimated work of :func:`_anneal` (its soft costs, Sinkhorn rounds and rounding LAPs)."""
    per_round = 0.0
    for p, n in obj.sizes.items():
        per_round += 6.0 * n * n * SINKHORN_ITERS
        for t in obj.terms[p]:
            per_round += t.A2.size * n + sum(t.Bm.size * obj.sizes[q] for _, q in t.others)
    rounds = len(ANNEAL_BETAS if betas is None else betas)
    return (rounds + 1) * per_round + sum(float(n) ** 3 for n in obj.sizes.values())


def weight_matching(spec: PermutationSpec, sd_a: dict, sd_b: dict, seed: int = 0, max_iter: int = 100,
                    keys=None, init="layerwise", restarts: int = 8, kick: float = 0.3,
                    budget: float | None = 1.0, time_budget: float | None = None) -> MatchResult:
    """Permutations of B maximising J = sum_k <W_k^A, pi(W_k^B)> (exact LAPs; see the module docstring).

    Parameters
    ----------
    spec : PermutationSpec of both nets (same architecture).
    sd_a, sd_b : state_dicts; only float entries (default: parameters, not BatchNorm running
        statistics) named by ``keys`` enter the objective.
    seed : seeds the visiting orders (``torch.Generator``) and the restarts (numpy Generator);
        equal inputs and seed give equal outputs (unless ``time_budget`` stops the restarts).
    max_iter : at most this many sweeps per descent; a descent stops earlier after a sweep with no
        improvement.
    init : "layerwise" (default), "anneal", "identity", or a dict {name: perm} to start from.
    restarts : at most this many restarts after the first descent (0: plain CD from ``init``).
    kick : fraction of the units of one permutation shuffled by a kick restart.
    budget : the restarts may spend ``budget * max(W, MIN_WORK)`` work, W the work of stages 1-2
        (flops of the cost matrices plus n^3 per LAP: counted, not timed, so the result does not
        depend on the machine); a restart starts only if its estimated work fits. None: no limit.
    time_budget : seconds; no restart starts after this much time (None: no limit).

    Nets with fewer than ``BLAS_SERIAL_BELOW`` units per layer are matched with one BLAS thread:
    their products are too small to gain from threads, and on a busy machine threads slow them.

    Returns
    -------
    MatchResult, with ``perms`` aligning B to A (see the module docstring).
    """
    t0 = time.perf_counter()
    sizes = check_spec(spec, sd_a)
    check_spec(spec, sd_b)
    if not 0.0 < kick <= 1.0:
        raise ValueError(f"kick must be a fraction in (0, 1]; got {kick}.")
    if restarts < 0 or (budget is not None and budget < 0):
        raise ValueError(f"restarts and budget must be >= 0; got restarts={restarts}, budget={budget}.")
    with _blas_threads(sizes):
        obj = _Objective(spec, sd_a, sd_b, _matchable(sd_a, keys))
        perms, start = _start(obj, init, sizes)
        best = _Descent(obj, perms, start).run(_torch_orders(obj.names, seed), max_iter)
        limit = np.inf if budget is None else obj.work + budget * max(obj.work, MIN_WORK)
        deadline = np.inf if time_budget is None else t0 + time_budget
        rng = np.random.default_rng([seed % 2 ** 64, 1])
        best, done = _restart(obj, best, rng, restarts, kick, max_iter, limit, deadline)
    out = {p: torch.from_numpy(best.perms[p].copy()) for p in obj.names}
    return MatchResult(out, best.sweeps, best.objective, time.perf_counter() - t0, done, obj.laps, best.start)


def _blas_threads(sizes: dict):
    """A context with one BLAS thread when every permutation has fewer than BLAS_SERIAL_BELOW units."""
    if max(sizes.values(), default=0) >= BLAS_SERIAL_BELOW:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _restart(obj: _Objective, best: _Descent, rng: np.random.Generator, restarts: int, kick: float,
             max_iter: int, work_limit: float, deadline: float) -> tuple[_Descent, int]:
    """Stage 3: up to ``restarts`` descents (an annealed start first, then kicks of the best); one
    starts only if ``obj.work`` plus its estimated work (annealing: counted in advance; a kick: the
    most a kick took so far, at first the work of stages 1-2) stays within ``work_limit``, and
    before the clock ``deadline``. Returns the best descent and the number of restarts run."""
    # a permutation without neighbours is solved exactly by one LAP: kicking it is useless
    kickable = [p for p, n in obj.sizes.items() if n > 1 and obj.neighbours[p]]
    anneal = best.start != "anneal"
    kick_work, kicks = obj.work, 0
    done = 0
    while done < restarts and kickable and time.perf_counter() < deadline:
        before = obj.work
        if anneal and before + _anneal_work(obj) <= work_limit:
            cand = _Descent(obj, _anneal(obj), "anneal").run(_kick_orders(obj.names, [], rng), max_iter)
        elif before + kick_work <= work_limit:
            cand, p = _kicked(best, rng, kick, kickable)
            cand.run(_kick_orders(obj.names, obj.neighbours[p], rng), max_iter)
            kick_work = obj.work - before if kicks == 0 else max(kick_work, obj.work - before)
            kicks += 1
        else:
            break
        anneal = False
        done += 1
        if cand.objective > best.objective + 1e-12 * max(1.0, abs(best.objective)):
            best = cand
    return best, done


def _channels(h: torch.Tensor) -> torch.Tensor:
    """Activations with channels last and everything else flattened: shape (samples, C)."""
    return h.movedim(1, -1).reshape(-1, h.shape[1]) if h.ndim > 2 else h


class _Recorder:
    """Forward hooks on the spec's activation points, feeding ``fn(perm_name, acts (samples, C))``."""

    def __init__(self, model, spec: PermutationSpec, fn):
        mods = dict(model.named_modules())
        self.handles = []
        for p, names in spec.act_points.items():
            for name in names:
                self.handles.append(mods[name].register_forward_hook(
                    lambda _m, _i, out, p=p: fn(p, _channels(out.detach()).double())))

    def close(self):
        for h in self.handles:
            h.remove()


def _batches(X: torch.Tensor, batch: int):
    for i in range(0, len(X), batch):
        yield X[i:i + batch]


def activation_matching(model_a, model_b, spec: PermutationSpec, X: torch.Tensor,
                        batch: int = 500) -> MatchResult:
    """Permutations of B maximising summed Pearson correlation of hidden activations with A.

    C_ij = cov(h^A_i, h^B_j) / (std(h^A_i) std(h^B_j)) over the n examples of X (times spatial
    positions), accumulated per permutation over all its activation points; a unit with zero
    variance gets std 1 (its correlations are 0). Both models run in eval mode.

    Parameters
    ----------
    X : Tensor, shape (n, *in_shape), on the models' device.
    """
    t0 = time.perf_counter()
    stats: dict = {}

    def feed(tag):
        def fn(p, h):
            s = stats.setdefault(p, {})
            s.setdefault(tag, []).append(h)
        return fn

    objective = 0.0
    perms = {}
    acc: dict = {}
    for model in (model_a, model_b):
        model.eval()
    rec_a, rec_b = _Recorder(model_a, spec, feed("a")), _Recorder(model_b, spec, feed("b"))
    try:
        with torch.no_grad():
            for xb in _batches(X, batch):
                model_a(xb)
                model_b(xb)
                for p, s in stats.items():
                    ha, hb = torch.cat(s["a"], 0), torch.cat(s["b"], 0)
                    a = acc.setdefault(p, {"n": 0, "sa": 0, "sb": 0, "saa": 0, "sbb": 0, "sab": 0})
                    a["n"] += ha.shape[0]
                    a["sa"] = a["sa"] + ha.sum(0)
                    a["sb"] = a["sb"] + hb.sum(0)
                    a["saa"] = a["saa"] + (ha * ha).sum(0)
                    a["sbb"] = a["sbb"] + (hb * hb).sum(0)
                    a["sab"] = a["sab"] + ha.T @ hb
                stats.clear()
    finally:
        rec_a.close()
        rec_b.close()
    for p, a in acc.items():
        n = a["n"]
        ma, mb = a["sa"] / n, a["sb"] / n
        cov = a["sab"] / n - torch.outer(ma, mb)
        sa = (a["saa"] / n - ma * ma).clamp_min(0).sqrt()
        sb = (a["sbb"] / n - mb * mb).clamp_min(0).sqrt()
        sa = torch.where(sa > 1e-12, sa, torch.ones_like(sa))
        sb = torch.where(sb > 1e-12, sb, torch.ones_like(sb))
        corr = (cov / torch.outer(sa, sb)).cpu()
        perm = torch.from_numpy(lap_max(corr.numpy()))
        perms[p] = perm
        objective += float(corr[torch.arange(len(perm)), perm].sum())
    return MatchResult(perms, 1, objective, time.perf_counter() - t0)


def unit_activity(model, spec: PermutationSpec, X: torch.Tensor, batch: int = 500) -> np.ndarray:
    """Mean post-ReLU activation of every hidden unit over X (and spatial positions).

    Returns
    -------
    ndarray, shape (total units,): one entry per (activation point, channel), in spec order.
    """
    sums: dict = {}
    mods = dict(model.named_modules())
    handles = []
    model.eval()
    for p, names in spec.act_points.items():
        for name in names:
            handles.append(mods[name].register_forward_hook(
                lambda _m, _i, out, name=name: sums.__setitem__(
                    name, sums.get(name, 0) + _channels(out.detach()).double().mean(0) * out.shape[0])))
    try:
        with torch.no_grad():
            for xb in _batches(X, batch):
                model(xb)
    finally:
        for h in handles:
            h.remove()
    return np.concatenate([(sums[n] / len(X)).cpu().numpy() for names in spec.act_points.values()
                           for n in names])


def sparsity(activity: np.ndarray, tol: float = 0.01) -> dict:
    """Fraction of hidden units that are dead or near zero.

    ``dead``: mean activation exactly 0 (never active on the probe set); ``sparse``: mean
    activation <= tol * (mean over all units). Both in [0, 1].
    """
    activity = np.asarray(activity, dtype=np.float64)
    if activity.size == 0:
        return {"dead": 0.0, "sparse": 0.0}
    scale = activity.mean()
    return {"dead": float(np.mean(activity <= 0.0)), "sparse": float(np.mean(activity <= tol * scale))}
