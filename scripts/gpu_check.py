"""GPU check of tsim's deep path: run it once on any machine with a CUDA GPU (a few minutes, < 8).

    .venv/bin/python scripts/gpu_check.py                # all checks on cuda, JSON to gpu_check.json
    .venv/bin/python scripts/gpu_check.py --only oom,self_barrier --out DIR/check.json
    .venv/bin/python scripts/gpu_check.py --device cpu   # a dry run of the same code on the CPU

Each check prints one line, ``PASS`` or ``FAIL``, its seconds and what it measured; the JSON
file holds the versions (torch, CUDA, cuDNN, GPU) and every measured number. Exit code 0 when
every check passes, 1 when one fails, 2 (one line on stderr) when ``--device cuda`` finds no GPU.
``tests/test_deep_gpu.py`` runs the same checks under pytest (skipped without CUDA).

Checks (all tiny models on synthetic teacher data, so no dataset is needed):

- ``invariance``: outputs of MLP / VGG / ResNet (BatchNorm and LayerNorm) unchanged under random
  permutations from their specs, on the device, in full precision;
- ``tf32``: measurement runs with TF32 off (flags read back, float32 matmul/conv error ~1e-6
  against float64) even inside a TF32 region, whose flags are restored after;
- ``amp_training``: training with amp off, bfloat16 and float16 autocast (float16 with loss
  scaling) learns, amp changes the trained weights on cuda, and evaluation of a net gives the
  same bits inside and outside an autocast region (measurement ignores amp);
- ``determinism``: VGG and ResNet train under ``use_deterministic_algorithms(True)`` without an
  error, and an op with no deterministic implementation is an error translated to one line;
- ``planted_recovery``: weight matching and activation matching recover a planted permutation;
- ``self_barrier``: the barrier of a net with itself is 0 (BatchNorm reset, evaluation repeat
  bit for bit), and after weight matching a permuted copy has barrier ~0;
- ``repeatability``: two identical runs of a deep cell give bitwise identical rows;
- ``cpu_vs_cuda``: the same quick cell on cpu and on cuda; the barrier gap is reported (and must be
  small); skipped on a cpu dry run;
- ``oom``: an allocation beyond the device memory inside a cell becomes the one-line
  "... out of memory in cell ...: lower train.batch or model.width." error.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before any CUDA work (deterministic cuBLAS)

import torch  # noqa: E402

from tsim.deep import barrier, match, mnist, models, spec, study, train  # noqa: E402

#: a quick deep cell (teacher data, VGG with BatchNorm) used by the pipeline-level checks
QUICK = {
    "study": "deep",
    "data": {"dataset": "teacher", "shape": [1, 8, 8], "n_train": 1024, "n_test": 512, "classes": 4,
             "teacher_width": 32, "teacher_depth": 2, "seed": 0},
    "model": {"arch": "vgg", "depth": 1, "base": 8, "width": 1, "norm": "batch"},
    "train": {"epochs": 2, "batch": 128, "lr": 0.05, "momentum": 0.9},
    "match": {"grid": 5, "am_examples": 512, "bn_batches": 4},
    "sweep": {"pairs": 1},
    "run": {"device": "auto", "deterministic": True, "tf32": False},
}
ARCHS = (("mlp", (1, 8, 8)), ("vgg", (1, 8, 8)), ("resnet", (1, 8, 8)))
TIMING_COLUMNS = ("train_seconds", "examples_per_s", "weight_seconds", "activation_seconds")


# ---------------------------------------------------------------------- helpers
def teacher_data(device: str, n_train: int = 1024, n_test: int = 512, shape=(1, 8, 8), seed: int = 0):
    """(X_train, y_train, X_test, y_test) of a 4-class deep ReLU teacher, on ``device``."""
    arrays = mnist.teacher_arrays(tuple(shape), n_train, n_test, width=32, depth=2, classes=4, seed=seed)
    return tuple(torch.from_numpy(a).to(device) for a in arrays)


def small_model(arch: str, shape, norm: str, device: str, seed: int = 0):
    """A small net of ``arch`` on ``device`` (4 classes)."""
    base = 32 if arch == "mlp" else 8
    return models.build(arch, shape, 4, depth=2 if arch == "mlp" else 1, width=1, base=base, norm=norm,
                        seed=seed).to(device)


def randomise_norms(model, seed: int = 1):
    """Give norm layers non-trivial affine parameters and running statistics (in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if "norm" in k and v.is_floating_point():
                v.copy_(torch.rand(v.shape, generator=g).to(v.device) + 0.5)
    return model.eval()


def deep_config(device: str, **sections):
    """The QUICK cell (sections updated), validated and prepared as ``tsim run`` does."""
    from tsim.config import from_dict
    from tsim.studies.deep import prepare

    raw = copy.deepcopy(QUICK)
    for sec, values in sections.items():
        raw[sec].update(values)
    return prepare(from_dict(raw), device)


def numeric_row(row: dict) -> dict:
    """The row without its wall-clock fields."""
    return {k: v for k, v in row.items() if k not in TIMING_COLUMNS}


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# ---------------------------------------------------------------------- checks
def check_invariance(device: str) -> dict:
    """max |f(x) - f_pi(x)| / max |f(x)| for MLP / VGG / ResNet with BatchNorm and LayerNorm."""
    out = {}
    g = torch.Generator().manual_seed(2)
    with barrier.full_precision(device):
        for arch, shape in ARCHS:
            for norm in ("batch", "layer"):
                m = randomise_norms(small_model(arch, shape, norm, device))
                sp = spec.spec_for(m)
                x = torch.randn(16, *shape, generator=g).to(device)
                with torch.no_grad():
                    scale = float(m(x).abs().max())
                err = max(spec.invariance_error(m, sp, x, g) for _ in range(3)) / max(scale, 1e-12)
                out[f"{arch}_{norm}"] = err
                assert err <= 1e-5, f"{arch}/{norm}: relative invariance error {err:.2e} > 1e-5"
    return out


def _relative_error(fn, device: str) -> float:
    """max |fn(x) in float32 - fn(x) in float64| / max |fn(x)| for random inputs on ``device``."""
    g = torch.Generator().manual_seed(8)
    a, b = torch.randn(512, 512, generator=g), torch.randn(512, 512, generator=g)
    exact = fn(a.double(), b.double())
    got = fn(a.to(device), b.to(device)).double().cpu()
    return float((got - exact).abs().max() / exact.abs().max())


def check_tf32(device: str) -> dict:
    """Measurement runs with TF32 off: flags read back False and a float32 matmul and convolution
    are accurate to ~1e-6 inside :func:`full_precision` (TF32 gives ~1e-3 on Ampere and later),
    even when the caller had TF32 on; the caller's flags come back afterwards."""
    conv = (lambda a, b: torch.nn.functional.conv2d(a[None, None], b[None, None, :5, :5]))
    out = {}
    with barrier.tf32(True):
        out["tf32_matmul_error"] = _relative_error(torch.matmul, device)
        out["tf32_conv_error"] = _relative_error(conv, device)
        with barrier.full_precision(device):
            out["eval_flags"] = barrier.tf32_state()
            out["eval_matmul_error"] = _relative_error(torch.matmul, device)
            out["eval_conv_error"] = _relative_error(conv, device)
        out["flags_after"] = barrier.tf32_state()
    assert out["eval_flags"] == {"matmul": False, "cudnn": False}, out["eval_flags"]
    assert out["flags_after"] == {"matmul": True, "cudnn": True}, "TF32 flags not restored"
    assert out["eval_matmul_error"] < 1e-5 and out["eval_conv_error"] < 1e-5, out
    return out


def _train(arch: str, data, device: str, amp: bool, amp_dtype: str = "bfloat16", seed: int = 0, epochs: int = 5):
    net = small_model(arch, data[0].shape[1:], "batch", device, seed=seed)
    st = train.train(net, data[0], data[1], lr=0.1, epochs=epochs, batch=128, seed=seed, amp=amp,
                     amp_dtype=amp_dtype)
    return net, st


def majority_error(y) -> float:
    """Test error of always predicting the most frequent class."""
    return 1.0 - float(torch.bincount(y.cpu()).max()) / len(y)


def check_amp_training(device: str) -> dict:
    """Training with amp off / bfloat16 / float16 learns (MLP and VGG); amp changes training on cuda
    only; evaluation is bitwise the same inside and outside an autocast region."""
    data = teacher_data(device, n_train=2048)
    out = {"majority_error": majority_error(data[3])}
    nets = {}
    for arch in ("mlp", "vgg"):
        for label, amp, dtype in (("fp32", False, "bfloat16"), ("bf16", True, "bfloat16"),
                                  ("fp16", True, "float16")):
            net, st = _train(arch, data, device, amp, dtype)
            loss, err = barrier.evaluate(net, data[2], data[3])
            out[f"{arch}_{label}_test_error"], out[f"{arch}_{label}_train_loss"] = err, st.epoch_loss[-1]
            assert st.status == "ok" and st.epoch_loss[-1] < st.epoch_loss[0], f"{arch}/{label}: did not learn {st}"
            if arch == "mlp":
                assert err < out["majority_error"] - 0.1, \
                    f"{arch}/{label}: test error {err:.3f}, majority-class error {out['majority_error']:.3f}"
            nets[arch, label] = net
    sd32, sd16 = nets["vgg", "fp32"].state_dict(), nets["vgg", "bf16"].state_dict()
    differs = any(not torch.equal(v, sd16[k]) for k, v in sd32.items())
    out["amp_changes_training"] = differs
    assert differs == (device == "cuda"), f"amp changed training on {device}: {differs}"
    plain = barrier.evaluate(nets["vgg", "bf16"], data[2], data[3])
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        inside = barrier.evaluate(nets["vgg", "bf16"], data[2], data[3])
    out["eval_inside_autocast_equal"] = plain == inside
    assert plain == inside, f"evaluation changed under autocast: {plain} vs {inside}"
    return out


def check_determinism(device: str) -> dict:
    """VGG and ResNet train under use_deterministic_algorithms(True); a nondeterministic op errors."""
    cfg = deep_config(device)
    data = teacher_data(device, n_train=512)
    out = {}
    with study.torch_settings(cfg, device):
        for arch in ("vgg", "resnet"):
            _, st = _train(arch, data, device, amp=False, epochs=1)
            out[f"{arch}_status"] = st.status
            assert st.status == "ok", f"{arch}: {st}"
        try:
            with study.device_errors(cfg):
                x = torch.zeros(4, device=device)
                x.put_(torch.tensor([1, 2], device=device), torch.tensor([1.0, 2.0], device=device))
            raise AssertionError("put_ ran under use_deterministic_algorithms(True) without an error")
        except ValueError as exc:
            out["error"] = str(exc)
            assert "no deterministic implementation" in str(exc) and "\n" not in str(exc), exc
    return out


def _planted(arch: str, shape, device: str, noise: float):
    """(A with BatchNorm statistics of its own inputs, spec, planted perms q, state_dict of B = q(A) + noise)."""
    a = small_model(arch, shape, "batch", device, seed=3)
    X = torch.randn(512, *shape, generator=torch.Generator().manual_seed(7)).to(device)
    barrier.reset_bn(a, X, batches=4, batch=128)  # realistic statistics: no unit dead on the probe inputs
    sp = spec.spec_for(a)
    g = torch.Generator().manual_seed(4)
    q = spec.random_perms(spec.check_spec(sp, a.state_dict()), g)
    sd_b = spec.apply_perm(sp, q, a.state_dict())
    if noise:
        sd_b = {k: (v + noise * v.std() * torch.randn(v.shape, generator=g).to(device)
                    if v.is_floating_point() and v.ndim > 1 else v) for k, v in sd_b.items()}
    return a, sp, q, sd_b


def check_planted_recovery(device: str) -> dict:
    """Weight matching (1% noise) and activation matching recover a planted permutation of every arch."""
    out = {}
    for arch, shape in ARCHS:
        a, sp, q, sd_b = _planted(arch, shape, device, noise=0.01)
        res = match.weight_matching(sp, a.state_dict(), sd_b, seed=0)
        wrong = [p for p, perm in q.items() if not torch.equal(res.perms[p].cpu(), torch.argsort(perm))]
        out[f"{arch}_weight_wrong"] = wrong
        assert not wrong, f"{arch}: weight matching missed {wrong}"
        a, sp, q, sd_b = _planted(arch, shape, device, noise=0.0)
        b = copy.deepcopy(a)
        b.load_state_dict(sd_b)
        X = torch.randn(400, *shape, generator=torch.Generator().manual_seed(5)).to(device)
        with barrier.full_precision(device):
            res = match.activation_matching(a, b, sp, X, batch=128)
        wrong = [p for p, perm in q.items() if not torch.equal(res.perms[p].cpu(), torch.argsort(perm))]
        out[f"{arch}_activation_wrong"] = wrong
        assert not wrong, f"{arch}: activation matching missed {wrong}"
    return out


def check_self_barrier(device: str) -> dict:
    """barrier(A, A) = 0 with BatchNorm resets; WM of a permuted copy gives barrier ~0."""
    data = teacher_data(device, n_train=512)
    net, _ = _train("resnet", data, device, amp=False)
    sd = net.state_dict()
    r = barrier.barrier(net, sd, sd, data[2], data[3], grid=5, X_reset=data[0], bn_batches=4, batch=128)
    out = {"self_loss": r.loss.value, "self_error": r.error.value, "self_losses_spread": float(
        r.loss.losses.max() - r.loss.losses.min())}
    assert out["self_losses_spread"] == 0.0, f"evaluation of one net differs between t: {r.loss.losses}"
    assert abs(r.loss.value) <= 1e-12 and abs(r.error.value) <= 1e-12, out
    sp = spec.spec_for(net)
    q = spec.random_perms(spec.check_spec(sp, sd), torch.Generator().manual_seed(6))
    sd_b = spec.apply_perm(sp, q, sd)
    res = match.weight_matching(sp, sd, sd_b, seed=0)
    r = barrier.barrier(net, sd, spec.apply_perm(sp, res.perms, sd_b), data[2], data[3], grid=5,
                        X_reset=data[0], bn_batches=4, batch=128)
    out["planted_wm_loss"] = r.loss.value
    assert abs(r.loss.value) <= 1e-5, f"barrier after matching a permuted copy: {r.loss.value:.2e}"
    return out


def check_repeatability(device: str) -> dict:
    """Two runs of the same cell give bitwise identical rows (timings aside)."""
    cfg = deep_config(device)
    rows = [numeric_row(study.run_pairs(cfg, [0])[0]) for _ in range(2)]
    diff = sorted(k for k in rows[0] if not same(rows[0][k], rows[1].get(k)))
    out = {"differing_fields": diff, "barrier_loss_weight": rows[0]["barrier_loss_weight"],
           "train_precision": rows[0]["train_precision"], "eval_precision": rows[0]["eval_precision"]}
    assert not diff, f"two identical runs differ in {diff}"
    assert rows[0]["deterministic"] is True and rows[0]["tf32_eval"] is False, rows[0]
    return out


def check_cpu_vs_cuda(device: str) -> dict:
    """The QUICK cell (MLP variant) on cpu and on cuda: gaps of barriers and test losses."""
    if device != "cuda":
        return {"skipped": "needs cuda"}
    rows = {}
    for dev in ("cpu", "cuda"):
        cfg = deep_config(dev, model={"arch": "mlp", "depth": 2, "base": 64, "norm": "none"})
        rows[dev] = study.run_pairs(cfg, [0])[0]
    out = {}
    for key in ("barrier_loss_naive", "barrier_loss_weight", "barrier_loss_activation", "test_loss_a"):
        c, g = rows["cpu"][key], rows["cuda"][key]
        out[f"{key}_cpu"], out[f"{key}_cuda"], out[f"{key}_gap"] = c, g, abs(c - g)
        assert abs(c - g) <= 0.05 + 0.25 * abs(c), f"{key}: cpu {c:.4g} vs cuda {g:.4g}"
    assert (rows["cpu"]["device"], rows["cuda"]["device"]) == ("cpu", "cuda"), "rows do not name their device"
    return out


def check_oom(device: str) -> dict:
    """An allocation far beyond memory inside a cell becomes the one-line out-of-memory error."""
    cfg = deep_config(device)
    try:
        with study.device_errors(cfg):
            torch.empty(2 ** 48, dtype=torch.uint8, device=device)  # 256 TiB
        raise AssertionError("a 256 TiB allocation succeeded")
    except ValueError as exc:
        msg = str(exc)
    assert "out of memory in cell" in msg and "lower train.batch or model.width" in msg and "\n" not in msg, msg
    return {"message": msg}


CHECKS = {"invariance": check_invariance, "tf32": check_tf32, "amp_training": check_amp_training,
          "determinism": check_determinism, "planted_recovery": check_planted_recovery, "self_barrier": check_self_barrier,
          "repeatability": check_repeatability, "cpu_vs_cuda": check_cpu_vs_cuda, "oom": check_oom}


# ---------------------------------------------------------------------- runner
def run_checks(device: str, names=None, echo=print) -> dict:
    """Run the named checks (all by default) on ``device`` under the run settings of a deep cell
    (deterministic algorithms); return {name: {passed, seconds, measured or error}}. A check that
    fails or crashes is reported and the others still run."""
    results = {}
    settings = deep_config(device)  # deterministic, as every cell of `tsim run`
    for name in names or CHECKS:
        t0 = time.perf_counter()
        try:
            with study.torch_settings(settings, device):
                measured, passed, error = CHECKS[name](device), True, None
        except AssertionError as exc:
            measured, passed, error = None, False, str(exc) or "assertion failed"
        except Exception as exc:  # a crash fails this check; the others still run
            measured, passed, error = None, False, f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        seconds = time.perf_counter() - t0
        results[name] = {"passed": passed, "seconds": round(seconds, 2), "measured": measured, "error": error}
        shown = error if error else json.dumps(measured, default=str)
        echo(f"{'PASS' if passed else 'FAIL'} {name:17s} {seconds:7.1f} s  {shown[:300]}")
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="GPU check of tsim's deep path (< 8 minutes on one GPU).")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cuda (default) or a cpu dry run")
    p.add_argument("--only", help="comma-separated check names: " + ", ".join(CHECKS))
    p.add_argument("--out", default="gpu_check.json", help="JSON report (default gpu_check.json)")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: torch sees no CUDA device (torch.cuda.is_available() is False); run it on a GPU "
              "machine with a CUDA build of torch, or use --device cpu for a dry run.", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.only.split(",")] if args.only else list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"gpu_check: error: unknown checks {unknown}; choose from {', '.join(CHECKS)}.", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    versions = study.torch_versions()
    print(json.dumps({k: versions[k] for k in ("torch", "cuda", "cudnn", "gpu", "gpu_capability")}))
    t0 = time.perf_counter()
    results = run_checks(args.device, names)
    wall = time.perf_counter() - t0
    report = {"device": args.device, "versions": versions, "wall_s": round(wall, 1), "checks": results}
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    failed = [n for n, r in results.items() if not r["passed"]]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed in {wall:.0f} s; report: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
