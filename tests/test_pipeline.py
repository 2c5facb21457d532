"""One pipeline: every study trains its students through one helper, so the same config and seeds
give the same students whichever study asks; the layers import only downwards; torch stays in deep."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tsim.config import from_dict
from tsim.studies import STUDIES, steps
from tsim.sweep.grid import resolve

ROOT = Path(__file__).resolve().parents[1]
TWO_LAYER = sorted(n for n, s in STUDIES.items() if s.kind == "two_layer")


def _config(method: str):
    raw = {"teacher": {"M": 2, "d": 4}, "student": {"m": 3, "sigma0": 1.0, "init_exponent": 1.0},
           "train": {"method": method, "steps": 60, "lr": 0.2, "n": 64, "batch": 16, "n_test": 64,
                     "record_every": 10},
           "sweep": {"pairs": 2, "grid": 5},
           "align": {"k": 3, "checkpoints": 3, "prune_levels": 1, "methods": ["weight"], "simplex_grid": 3}}
    return from_dict(raw)


def _record(monkeypatch, study: str) -> dict:
    """Run one study's cell with the student helpers wrapped; return {(group, i): (W0, W_final)}."""
    seen: dict = {}
    inits, trains = steps.init_students, steps.train_students

    def init(cfg, d, slots):
        W0, a0 = inits(cfg, d, slots)
        for e, slot in enumerate(slots):
            seen.setdefault(slot, [None, None])[0] = W0[e].copy()
        return W0, a0

    def train(cfg, groups, k=2, checkpoints=None):
        T, res = trains(cfg, groups, k, checkpoints)
        for j, g in enumerate(groups):
            for i in range(k):
                seen[(int(g), i)][1] = res.W[j * k + i].copy()
        return T, res

    mod = importlib.import_module(f"tsim.studies.{study}")
    monkeypatch.setattr(steps, "init_students", init)
    monkeypatch.setattr(steps, "train_students", train)
    for name, fn in (("init_students", init), ("train_students", train)):
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, fn)
    return seen


@pytest.mark.parametrize("method", ["population", "gd", "sgd"])
def test_every_study_trains_the_students_of_lmc(monkeypatch, method):
    base = _config(method)
    ref = _record(monkeypatch, "lmc")
    STUDIES["lmc"].run(replace(base, study="lmc"), range(2))
    monkeypatch.undo()
    assert set(ref) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert all(W0 is not None and W is not None for W0, W in ref.values())
    checked = 0
    for study in TWO_LAYER:
        if study == "lmc" or (study == "pruning" and method != "population"):
            continue
        seen = _record(monkeypatch, study)
        STUDIES[study].run(replace(base, study=study), range(2))
        monkeypatch.undo()
        for slot in set(seen) & set(ref):
            W0, W = seen[slot]
            assert np.array_equal(W0, ref[slot][0]), (study, slot, "init")  # init_exponent honoured everywhere
            if W is not None:
                assert np.array_equal(W, ref[slot][1]), (study, slot, "trained")
            checked += 1
        assert {(0, 0), (0, 1)} <= set(seen), study
    assert checked >= 2 * (len(TWO_LAYER) - 1 - (method != "population"))


def test_init_scale_follows_init_exponent():
    cfg = _config("population")
    W0, _ = steps.init_students(cfg, 4, [(0, 0)])
    wide = resolve(replace(cfg, student=replace(cfg.student, m=300)), {})
    W1, _ = steps.init_students(wide, 4, [(0, 0)])
    # std sigma0 m^-1 / sqrt(d): 100 times smaller rows at 100 times the width
    ratio = np.linalg.norm(W0[0], axis=1).mean() / np.linalg.norm(W1[0], axis=1).mean()
    assert 50 < ratio < 200


def _imports(path: Path) -> set[str]:
    """Modules a file imports (absolute names, relative ones resolved), lazy imports included."""
    mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    if path.name == "__init__.py":
        mod = pkg
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


LAYERS = {  # a module may import its own layer's and lower layers' modules only
    "tsim._kernels": 0, "tsim.errors": 1, "tsim.checks": 1, "tsim.network": 1, "tsim.teacher": 1, "tsim.data": 1,
    "tsim.losses": 1, "tsim.train": 1, "tsim.match": 1, "tsim.barriers": 1, "tsim.sparsity": 1, "tsim.fit": 1,
    "tsim.alignment": 2, "tsim.deep": 2, "tsim.studies": 3, "tsim.sweep": 4,
    "tsim.config": 5, "tsim.results": 5, "tsim.cli": 6,
}


def _layer(name: str):
    hits = [k for k in LAYERS if name == k or name.startswith(k + ".")]
    return LAYERS[max(hits, key=len)] if hits else None


def test_layers_only_look_down_and_torch_numba_stay_home():
    files = [p for p in (ROOT / "tsim").rglob("*.py")]
    assert len(files) > 30
    for path in files:
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        own = _layer(mod)
        for name in _imports(path):
            if name.split(".")[0] == "torch":
                assert mod.startswith("tsim.deep"), f"{mod} imports torch"
            if name.split(".")[0] == "numba":
                assert mod.startswith("tsim._kernels"), f"{mod} imports numba"
            other = _layer(name)
            if other is not None and own is not None and name != "tsim":
                assert other <= own, f"{mod} (layer {own}) imports {name} (layer {other})"


def test_no_import_cycles():
    mods = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / "tsim").rglob("*.py")
            if p.name != "__init__.py"}
    graph = {m: {n for n in _imports(p) if n in mods and n != m} for m, p in mods.items()}
    state: dict = {}

    def visit(m, stack):
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, "import cycle: " + " -> ".join(stack + [m, n])
            if n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_importing_tsim_and_every_face_imports_neither_torch_nor_breaks_module_names():
    code = ("import sys, tsim, tsim.cli, tsim.studies, tsim.results.report, tsim.alignment, tsim.barriers; "
            "import tsim.barriers as b, tsim.alignment as a; "
            "assert b.BarrierResult and a.ActivationMoments and a.align is tsim.align; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_one_vocabulary_of_methods():
    from tsim.alignment import METHODS
    from tsim.barriers import ALIGNERS
    from tsim.config import ALIGN_METHODS
    from tsim.config.deep import METHODS as DEEP

    assert tuple(METHODS) == ALIGN_METHODS == tuple(ALIGNERS)
    assert DEEP[0] == "naive" and set(DEEP[1:]) <= set(METHODS)
