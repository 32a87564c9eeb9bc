"""The training configuration and the paper's per-task defaults.

Defaults (BRF paper / its reference scripts), per model family and task; all RF variants (``rf``,
``rf+sr``, …, ``brf``) share the BRF/RF row. Distributions: U(a,b) uniform, N(μ,σ) normal.

===========  =======  =====  ======  ==========================================  ====  =========
family/task  lr       batch  epochs  init (hidden; readout τ_out)                clip  loss
===========  =======  =====  ======  ==========================================  ====  =========
RF  smnist   0.1      256    300     ω U(15,50), b' U(0.1,1); τ_out N(20,5)      1.0   last
RF  psmnist  0.1      256    300     ω U(15,85), b' U(0.1,1); τ_out N(20,1)      1.0   per-step
RF  ecg      0.1      16     400     ω U(3,5), b' U(0.1,1); τ_out N(20,1)        none  per-step
RF  shd      0.075    32     20      ω U(5,10), b' U(2,3); τ_out N(20,5)         none  per-step
ALIF smnist  0.001    256    300     τ_m N(20,5), τ_a N(200,50); τ_out N(20,5)   none  last, TBPTT 50
ALIF psmnist 0.001    256    300     as smnist                                   none  per-step, TBPTT 50
ALIF ecg     0.05     64     400     τ_m N(20,0.5), τ_a N(7,0.2); τ_out N(20,0.5) none per-step, s=10
ALIF shd     0.075    32     20      τ_m N(20,5), τ_a N(150,10); τ_out N(20,5)   none  per-step, s=10
===========  =======  =====  ======  ==========================================  ====  =========

Hidden sizes: 256 (S-/PS-MNIST), 36 (ECG), 128 (SHD). TBPTT for ALIF is the reference mode
(optimiser step at every t with t % 50 = 0 and at t = T − 1). The loss is summed over time
(``reduction="sum"``), as the reference backpropagates. SHD is per-step as in the reference's SHD
scripts (``label_last = False``).

Ours (not from the paper):

* **LIF**: ALIF's row with τ_m as ALIF's τ_m, but full BPTT (no TBPTT) and no sub_seq_length, so
  that it compares with BRF on the same gradient path.
* **LSTM**: lr 0.001, grad-norm clip 1.0, otherwise the RF row's batch, epochs, τ_out and hidden size;
  the cell's own bias initialisation (forget bias 1).
* **A user's neuron** (``file.py:Name``): LIF's training settings with the neuron's own init.
"""

from __future__ import annotations

import dataclasses
import math

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradscape.errors import UserError
from gradscape.models.neurons import get_neuron, parse_distribution, rf_step

__all__ = ["TrainConfig", "TASKS", "default_config", "model_family", "load_toml", "TBPTT_MODES"]

TASKS = ("smnist", "psmnist", "ecg", "shd")
TBPTT_MODES = ("reference", "standard")

_HIDDEN = {"smnist": 256, "psmnist": 256, "ecg": 36, "shd": 128}

_RF = {
    "smnist": dict(lr=0.1, batch_size=256, epochs=300, clip=1.0, loss_mode="last",
                   init={"omega": "U(15,50)", "b_offset": "U(0.1,1)"}, tau_out="N(20,5)"),
    "psmnist": dict(lr=0.1, batch_size=256, epochs=300, clip=1.0, loss_mode="per_step",
                    init={"omega": "U(15,85)", "b_offset": "U(0.1,1)"}, tau_out="N(20,1)"),
    "ecg": dict(lr=0.1, batch_size=16, epochs=400, clip=None, loss_mode="per_step",
                init={"omega": "U(3,5)", "b_offset": "U(0.1,1)"}, tau_out="N(20,1)"),
    "shd": dict(lr=0.075, batch_size=32, epochs=20, clip=None, loss_mode="per_step",
                init={"omega": "U(5,10)", "b_offset": "U(2,3)"}, tau_out="N(20,5)"),
}  # fmt: skip

_ALIF = {
    "smnist": dict(lr=0.001, batch_size=256, epochs=300, clip=None, loss_mode="last", tbptt=50,
                   init={"tau_mem": "N(20,5)", "tau_adp": "N(200,50)"}, tau_out="N(20,5)"),
    "psmnist": dict(lr=0.001, batch_size=256, epochs=300, clip=None, loss_mode="per_step", tbptt=50,
                    init={"tau_mem": "N(20,5)", "tau_adp": "N(200,50)"}, tau_out="N(20,5)"),
    "ecg": dict(lr=0.05, batch_size=64, epochs=400, clip=None, loss_mode="per_step", sub_seq_length=10,
                init={"tau_mem": "N(20,0.5)", "tau_adp": "N(7,0.2)"}, tau_out="N(20,0.5)"),
    "shd": dict(lr=0.075, batch_size=32, epochs=20, clip=None, loss_mode="per_step", sub_seq_length=10,
                init={"tau_mem": "N(20,5)", "tau_adp": "N(150,10)"}, tau_out="N(20,5)"),
}  # fmt: skip


def _lif_row(task: str) -> dict[str, Any]:
    row = dict(_ALIF[task])
    row["init"] = {"tau_mem": row["init"]["tau_mem"]}
    row.pop("tbptt", None)
    row.pop("sub_seq_length", None)
    return row


def _lstm_row(task: str) -> dict[str, Any]:
    row = dict(_RF[task])
    row.update(lr=0.001, clip=1.0, init={})
    return row


def model_family(model: str) -> str:
    """``rf`` (every RF variant incl. BRF), ``alif``, ``lif``, ``lstm`` or ``custom``."""
    neuron = get_neuron(model)
    if neuron.step is rf_step:
        return "rf"
    if neuron.name in ("alif", "lif", "lstm") and ".py:" not in model:
        return neuron.name
    return "custom"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (JSON-able; recorded in ``config.json``).

    ``clip`` is the max gradient norm (None: no clipping); ``tbptt`` the truncation length K (None:
    full BPTT); ``init`` maps neuron parameters to distributions (``"U(3,5)"``); ``max_batches`` /
    ``train_samples`` / ``eval_samples`` shrink a run (tests, smoke runs); ``data_seed`` seeds the
    train/val split (kept fixed across ``seed`` so seeds differ only in initialisation and order).
    """

    model: str
    task: str
    epochs: int
    batch_size: int
    lr: float
    hidden_size: int
    init: dict[str, str] = field(default_factory=dict)
    tau_out: str = "N(20,5)"
    clip: float | None = None
    loss_mode: str = "per_step"
    sub_seq_length: int = 0
    reduction: str = "sum"
    tbptt: int | None = None
    tbptt_mode: str = "reference"
    seed: int = 0
    data_seed: int = 0
    stop_at_val_acc: float | None = None
    device: str = "auto"
    data_dir: str | None = None
    permutation: str | None = None
    download: bool = False
    ecg_exclude_unlabelled: bool = False
    surrogate: str = "double-gaussian"
    eval_batch_size: int = 256
    max_batches: int | None = None
    train_samples: int | None = None
    eval_samples: int | None = None
    fast: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        from gradscape.models.objectives import LOSS_MODES, REDUCTIONS

        _check_types(self)
        if self.task not in TASKS:
            raise UserError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.loss_mode not in LOSS_MODES:
            raise UserError(f"unknown loss mode {self.loss_mode!r}; choose one of {', '.join(LOSS_MODES)}")
        if self.reduction not in REDUCTIONS:
            raise UserError(f"unknown loss reduction {self.reduction!r}; choose sum or mean")
        if self.tbptt_mode not in TBPTT_MODES:
            raise UserError(f"unknown TBPTT mode {self.tbptt_mode!r}; choose reference or standard")
        for name in ("epochs", "batch_size", "hidden_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.tbptt is not None and self.tbptt < 1:
            raise UserError(f"--tbptt must be at least 1 (got {self.tbptt})")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive (got {self.lr})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UserError(
                f"unknown training setting(s) {sorted(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**dict(d))


#: field → (kind, lower bound): kinds "int", "float", "str", "bool"; a "?" suffix allows None.
_FIELD_RULES: dict[str, tuple[str, float | None]] = {
    "model": ("str", None), "task": ("str", None), "epochs": ("int", 1), "batch_size": ("int", 1),
    "lr": ("float", None), "hidden_size": ("int", 1), "tau_out": ("str", None), "clip": ("float?", None),
    "loss_mode": ("str", None), "sub_seq_length": ("int", 0), "reduction": ("str", None),
    "tbptt": ("int?", 1), "tbptt_mode": ("str", None), "seed": ("int", 0), "data_seed": ("int", 0),
    "stop_at_val_acc": ("float?", 0), "device": ("str", None), "data_dir": ("str?", None),
    "download": ("bool", None), "ecg_exclude_unlabelled": ("bool", None), "surrogate": ("str", None),
    "eval_batch_size": ("int", 1), "max_batches": ("int?", 1), "train_samples": ("int?", 1),
    "eval_samples": ("int?", 1), "fast": ("bool", None), "compile": ("bool", None),
}  # fmt: skip

_KIND_TEXT = {"int": "a whole number", "float": "a finite number", "str": "a string", "bool": "true or false"}


def _check_types(cfg: TrainConfig) -> None:
    """Every setting has its type and lower bound (TOML and Python callers reach here unchecked)."""
    for name, (kind, low) in _FIELD_RULES.items():
        value = getattr(cfg, name)
        base = kind.rstrip("?")
        if value is None and kind.endswith("?"):
            continue
        if base == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif base == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        elif base == "bool":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise UserError(f"setting {name} must be {_KIND_TEXT[base]}, got {value!r}")
        if low is not None and value < low:
            raise UserError(f"setting {name} must be at least {low:g}, got {value!r}")
    if cfg.stop_at_val_acc is not None and cfg.stop_at_val_acc > 100:
        raise UserError(f"setting stop_at_val_acc is a percentage (0-100), got {cfg.stop_at_val_acc!r}")
    if not isinstance(cfg.permutation, str | int | None) or isinstance(cfg.permutation, bool):
        raise UserError(
            f"setting permutation must be a file name or an integer seed, got {cfg.permutation!r}"
        )
    if not isinstance(cfg.init, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in cfg.init.items()
    ):
        raise UserError(
            f'setting init must map parameter names to distributions, e.g. omega = "U(3,5)"; got {cfg.init!r}'
        )
    for text in cfg.init.values():
        parse_distribution(text)  # a UserError naming the text if it is not U(a,b), N(m,s) or a number


def _canonical_model(model: str) -> str:
    neuron = get_neuron(model)  # raises UserError for unknown names
    return model if ".py:" in model else neuron.name


def default_config(model: str, task: str, **overrides: Any) -> TrainConfig:
    """The paper's defaults for ``model`` on ``task`` (module table), then ``overrides``.

    ``overrides`` with value None are ignored (so argparse defaults can be passed through); an
    ``init`` override is merged into the default init per parameter.
    """
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    model = _canonical_model(model)
    family = model_family(model)
    if family == "rf":
        row = dict(_RF[task])
    elif family == "alif":
        row = dict(_ALIF[task])
    elif family == "lstm":
        row = _lstm_row(task)
    else:
        row = _lif_row(task)
        if family == "custom":
            row["init"] = {}
    row.setdefault("hidden_size", _HIDDEN[task])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "init" in overrides:
        if not isinstance(overrides["init"], Mapping):
            raise UserError(
                f'setting init must be a table such as [init] omega = "U(3,5)"; got {overrides["init"]!r}'
            )
        row["init"] = {**row["init"], **{k: str(v) for k, v in dict(overrides.pop("init")).items()}}
    return TrainConfig.from_dict({"model": model, "task": task, **row, **overrides})


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file: top-level keys named as :class:`TrainConfig` fields (dashes allowed),
    e.g. ``lr = 0.05`` and ``[init]`` with ``omega = "U(3,5)"``."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {path} is a folder; give a .toml file")
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text; save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    return {k.replace("-", "_"): v for k, v in data.items()}
