"""Configs: constraints (:mod:`.constraints`), sections (:mod:`.sections` two-layer, :mod:`.deep`),
loading and sweep axes (:mod:`.loader`). ``load``/``from_dict`` pick the sections from the study."""
from ..errors import ConfigError
from .constraints import Choice, Interval, IntTuple, Text, TextList, as_dict, rule
from .deep import DeepConfig
from ..sweep.grid import grid, resolve
from .loader import check_cross, from_dict, load, parse_section, parse_sections
from .sections import (ALIGN_METHODS, MEASURES, PLOTS, SECTIONS, AlignConfig, AnalysisConfig, Config, OutputConfig,
                       StudentConfig, SweepConfig, TeacherConfig, TrainConfig, derive_teacher)

__all__ = ["ALIGN_METHODS", "MEASURES", "PLOTS", "SECTIONS", "AlignConfig", "AnalysisConfig", "Choice", "Config",
           "ConfigError", "DeepConfig", "IntTuple", "Interval", "OutputConfig", "StudentConfig", "SweepConfig",
           "TeacherConfig", "Text", "TextList", "TrainConfig", "as_dict", "check_cross", "derive_teacher",
           "from_dict", "grid", "load", "parse_section", "parse_sections", "resolve", "rule"]
