"""Config validation: each field rejects a generated bad value naming itself; every experiment validates."""
import dataclasses
import tomllib
from pathlib import Path

import pytest

from tsim import config as C
from tsim.cli import default_config_text

REPO = Path(__file__).resolve().parents[1]


def all_fields():
    for sec, cls in C.SECTIONS.items():
        for f in dataclasses.fields(cls):
            yield sec, f


@pytest.mark.parametrize("sec,f", list(all_fields()), ids=lambda x: getattr(x, "name", x))
def test_each_field_rejects_a_bad_value_naming_itself(sec, f):
    bad = f.metadata["rule"].bad_value()
    with pytest.raises(C.ConfigError) as err:
        C.from_dict({sec: {f.name: bad}})
    assert err.value.field == f"{sec}.{f.name}"
    assert str(err.value).startswith(f"{sec}.{f.name}")


def test_unknown_key_lists_allowed():
    with pytest.raises(C.ConfigError, match=r"unknown key train\.lrr.*Allowed keys in \[train\]: .*lr"):
        C.from_dict({"train": {"lrr": 0.1}})
    with pytest.raises(C.ConfigError, match="unknown section"):
        C.from_dict({"trian": {}})


def test_messages_name_rule_value_and_fix():
    with pytest.raises(C.ConfigError) as e:
        C.from_dict({"train": {"lr": -0.1}})
    assert str(e.value) == ("train.lr must be a float > 0; got -0.1. Set a positive step size such as 0.05.")
    with pytest.raises(C.ConfigError) as e:
        C.from_dict({"student": {"m": 0}})
    assert "student.m must be an integer >= 1; got 0" in str(e.value)
    with pytest.raises(C.ConfigError) as e:
        C.from_dict({"teacher": {"M": 4, "d": 2}})
    assert str(e.value).startswith("teacher.d must be >= teacher.M (4) for an orthonormal teacher; got 2.")


def test_cross_rule_checked_in_every_cell():
    with pytest.raises(C.ConfigError, match="teacher.d"):
        C.from_dict({"teacher": {"M": 4, "d": [8, 3]}})


def test_sweep_axes_and_grid():
    cfg = C.from_dict({"student": {"m": [2, 4]}, "train": {"lr": {"logspace": [-2, 0, 3]}},
                       "teacher": {"d": {"range": [8, 10]}}})
    pts = C.grid(cfg)
    assert len(pts) == 2 * 3 * 3
    lrs = sorted({p["train.lr"] for p in pts})
    assert lrs == pytest.approx([0.01, 0.1, 1.0])
    cell = C.resolve(cfg, pts[-1])
    assert cell.student.m == 4 and cell.teacher.d == 10 and cell.axes == ()
    geo = C.from_dict({"student": {"m": {"geomspace": [1, 64, 7]}}})
    assert C.grid(geo)[-1]["student.m"] == 64 and len(C.grid(geo)) == 7
    with pytest.raises(C.ConfigError, match="student.m must be an integer >= 1; got 0"):
        C.from_dict({"student": {"m": [0, 2]}})
    with pytest.raises(C.ConfigError, match="cannot be swept"):
        C.from_dict({"sweep": {"pairs": [1, 2]}})
    with pytest.raises(C.ConfigError, match="logspace"):
        C.from_dict({"train": {"lr": {"logspce": [1, 2, 3]}}})


def test_quick_overrides():
    raw = {"student": {"m": [2, 4, 8]}, "quick": {"student": {"m": [2]}}}
    assert len(C.grid(C.from_dict(raw))) == 3
    assert len(C.grid(C.from_dict(raw, quick=True))) == 1


def test_default_and_every_experiment_validates():
    C.from_dict(tomllib.loads(default_config_text()))
    C.from_dict(tomllib.loads(default_config_text()), quick=True)
    from tsim.cli import read_raw

    paths = sorted((REPO / "experiments").glob("*.toml"))
    assert len(paths) >= 10
    for path in paths:
        raw = read_raw(str(path))
        for quick in (False, True):
            cfg = C.from_dict(raw, quick=quick)  # one loader for every study, deep included
            assert cfg.study == raw.get("study", "lmc"), path.name
            assert isinstance(cfg, C.DeepConfig) == (cfg.study == "deep"), path.name
