"""The GPU check (scripts/gpu_check.py) under pytest, and the CPU halves of what it checks.

Every check of the script runs on cuda when torch sees a GPU and is skipped, with the reason,
when it does not. The CPU tests run everywhere: measurement ignores autocast and TF32 (and
restores torch's flags), the BatchNorm reset equals torch's cumulative average without host
syncs, the training loop reads the device back every ``check_every`` steps only, determinism is
an error, and device errors become one line naming the cell.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core machine

from tsim.config import from_dict  # noqa: E402
from tsim.deep import barrier, mnist, models, study, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device: torch.cuda.is_available() is False")


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load_script()


# ---------------------------------------------------------------------- the GPU check itself
@needs_cuda
@pytest.mark.parametrize("name", list(gpu_check.CHECKS))
def test_gpu_check_on_cuda(name):
    cfg = gpu_check.deep_config("cuda")
    with study.torch_settings(cfg, "cuda"):
        gpu_check.CHECKS[name]("cuda")


def test_gpu_check_script_dry_run_on_cpu(tmp_path, capsys):
    """The script's code paths on the CPU (a subset, to stay fast): passes, writes its JSON report."""
    out = tmp_path / "check.json"
    rc = gpu_check.main(["--device", "cpu", "--only", "tf32,planted_recovery,self_barrier,oom", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    report = json.loads(out.read_text())
    assert set(report["checks"]) == {"tf32", "planted_recovery", "self_barrier", "oom"}
    assert all(r["passed"] for r in report["checks"].values()) and "torch" in report["versions"]
    assert printed.count("PASS") == 4


def test_gpu_check_script_refuses_without_cuda(capsys):
    if CUDA:
        pytest.skip("a CUDA device is present; the refusal is for machines without one")
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA device" in err


# ---------------------------------------------------------------------- precision of measurement
def _data(n_train=256, n_test=128, shape=(1, 6, 6)):
    arrays = mnist.teacher_arrays(shape, n_train, n_test, width=16, depth=2, classes=3, seed=0)
    return [torch.from_numpy(a) for a in arrays]


def _trained(arch="vgg", norm="batch", epochs=1, **kw):
    X, y, Xt, yt = _data()
    net = models.build(arch, (1, 6, 6), 3, depth=1, base=4, norm=norm, seed=0)
    train.train(net, X, y, lr=0.05, epochs=epochs, batch=64, seed=0, **kw)
    return net, (X, y, Xt, yt)


def _cpu_autocast(device, amp, dtype="bfloat16"):
    """Autocast on the CPU too: emulates train.amp where there is no GPU."""
    return torch.autocast("cpu", dtype=barrier.AMP_DTYPES[dtype]) if amp else barrier.autocast(device, False)


def test_evaluation_ignores_autocast_and_amp(monkeypatch):
    """train.amp changes training (emulated by CPU autocast) but never a measurement."""
    net, (X, y, Xt, yt) = _trained()
    with torch.no_grad():
        assert not torch.equal(net(Xt), _forward_autocast(net, Xt))  # autocast does change a forward pass
    plain = barrier.evaluate(net, Xt, yt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = barrier.evaluate(net, Xt, yt)
        path_in = barrier.barrier(net, net.state_dict(), net.state_dict(), Xt, yt, grid=3, X_reset=X, batch=64)
    path_out = barrier.barrier(net, net.state_dict(), net.state_dict(), Xt, yt, grid=3, X_reset=X, batch=64)
    assert plain == inside
    assert (path_in.loss.losses == path_out.loss.losses).all() and path_in.loss.value == path_out.loss.value
    monkeypatch.setattr(train, "autocast", _cpu_autocast)
    amp_net, _ = _trained(amp=True)
    fp_net, _ = _trained(amp=False)
    assert any(not torch.equal(v, fp_net.state_dict()[k]) for k, v in amp_net.state_dict().items())
    assert barrier.evaluate(fp_net, Xt, yt) == plain  # amp off: the same net, the same numbers


def _forward_autocast(net, X):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return net(X).float()


def test_reset_bn_is_measured_in_full_precision():
    net, (X, *_rest) = _trained()
    ref = copy.deepcopy(net)
    barrier.reset_bn(ref, X, batches=3, batch=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        barrier.reset_bn(net, X, batches=3, batch=64)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k


def test_measurement_turns_tf32_off_and_restores_the_flags():
    before = barrier.tf32_state()
    try:
        with barrier.tf32(True):
            assert barrier.tf32_state() == {"matmul": True, "cudnn": True}
            with barrier.full_precision("cpu"):
                assert barrier.tf32_state() == {"matmul": False, "cudnn": False}
            assert barrier.tf32_state() == {"matmul": True, "cudnn": True}
        assert barrier.tf32_state() == before
    finally:
        barrier._set_tf32(before["matmul"], before["cudnn"])


# ---------------------------------------------------------------------- no per-step host syncs
class _SyncCounter:
    """Counts host reads of tensors (item, float, int, bool) while active."""

    NAMES = ("item", "__float__", "__int__", "__bool__")

    def __init__(self, monkeypatch):
        self.n = 0
        for name in self.NAMES:
            orig = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(orig))

    def _wrap(self, orig):
        def counted(t, *a, **k):
            self.n += 1
            return orig(t, *a, **k)
        return counted


def _reset_bn_reference(model, X, batches, batch):
    """torch's own cumulative average (momentum None): reads num_batches_tracked per layer per batch."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(batches):
            model(X[i * batch:(i + 1) * batch])
    model.eval()
    return model


def test_reset_bn_equals_cumulative_average_without_syncs(monkeypatch):
    net, (X, *_rest) = _trained(arch="resnet")
    ref = _reset_bn_reference(copy.deepcopy(net), X, 4, 64)
    counter = _SyncCounter(monkeypatch)
    barrier.reset_bn(net, X, batches=4, batch=64)
    assert counter.n == 0
    for k, v in ref.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    _reset_bn_reference(copy.deepcopy(net), X, 4, 64)
    assert counter.n > 0  # torch's momentum=None path does sync: the count can fail


def test_evaluate_syncs_once(monkeypatch):
    net, (_, _, Xt, yt) = _trained(arch="mlp", norm="none")
    counter = _SyncCounter(monkeypatch)
    barrier.evaluate(net, Xt, yt, batch=16)  # 8 batches
    assert counter.n <= 1


def test_training_reads_the_device_every_k_steps(monkeypatch):
    X, y, _, _ = _data(n_train=512)
    losses = []
    for check_every, expected_reads in ((1, 3 * 8 + 3), (4, 3 * 2 + 3), (100, 3)):
        net = models.build("mlp", (1, 6, 6), 3, depth=2, base=8, seed=0)
        counter = _SyncCounter(monkeypatch)
        st = train.train(net, X, y, lr=0.05, epochs=3, batch=64, seed=0, check_every=check_every)
        assert counter.n == expected_reads and st.steps == 24, (check_every, counter.n)
        losses.append(st.epoch_loss)
        monkeypatch.undo()
    assert losses[0] == losses[1] == losses[2]  # when the host looks changes nothing


@pytest.mark.parametrize("check_every", [1, 7, 1000])
def test_divergence_is_caught_whenever_it_is_checked(check_every):
    X, y, _, _ = [torch.from_numpy(a) for a in mnist.teacher_arrays((8,), 256, 64, width=8, depth=1, classes=3,
                                                                     seed=1)]
    net = models.build("mlp", (8,), 3, depth=2, base=8, seed=0)
    st = train.train(net, X * 1e3, y, lr=1e3, epochs=5, batch=32, momentum=0.9, seed=0, check_every=check_every)
    assert st.status == "diverged" and len(st.epoch_loss) < 5
    assert all(torch.isfinite(v).all() for v in net.state_dict().values())


# ---------------------------------------------------------------------- determinism and device errors
def _cfg(device="cpu", **run):
    cfg = from_dict({"study": "deep", "data": {"dataset": "teacher", "shape": [1, 6, 6], "n_train": 64,
                                               "n_test": 32}, "run": {"device": "cpu", **run}})
    from dataclasses import replace

    return replace(cfg, run=replace(cfg.run, device=device))


def test_determinism_is_an_error_and_settings_are_restored():
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cfg = _cfg(deterministic=True)
    with pytest.raises(ValueError, match=r"^run.deterministic = true but put_ has no deterministic implementation "
                                         r"on cpu in cell \(arch=mlp") as e:
        with study.device_errors(cfg), study.torch_settings(cfg, "cpu"):
            assert torch.are_deterministic_algorithms_enabled()
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
            torch.zeros(4).put_(torch.tensor([1]), torch.tensor([1.0]))
    assert "\n" not in str(e.value)
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) \
        == before
    with study.torch_settings(_cfg(deterministic=False), "cpu"):
        torch.zeros(4).put_(torch.tensor([1]), torch.tensor([1.0]))  # allowed when not asked for


@pytest.mark.parametrize("exc,expected", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                                 "of 79.1 GiB of which 1.2 GiB is free.\nIf reserved but unallocated..."),
     r"^CUDA out of memory in cell \(arch=mlp, width=1, depth=3, batch=128, device=cuda\) "
     r"\(Tried to allocate 2.00 GiB\): lower train.batch or model.width.$"),
    (RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ..."),
     r"^device error in cell \(arch=mlp.*\): CUDA error: an illegal memory access was encountered CUDA kernel"),
    (RuntimeError("Deterministic behavior was enabled with either `torch.use_deterministic_algorithms(True)` ... "
                  "CUBLAS_WORKSPACE_CONFIG=:4096:8"), r"^run.deterministic = true needs CUBLAS_WORKSPACE_CONFIG"),
])
def test_device_errors_become_one_line(exc, expected):
    with pytest.raises(ValueError, match=expected) as e:
        with study.device_errors(_cfg("cuda")):
            raise exc
    assert "\n" not in str(e.value) and e.value.__cause__ is exc


def test_other_errors_pass_unchanged():
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with study.device_errors(_cfg()):
            raise RuntimeError("shape mismatch")
