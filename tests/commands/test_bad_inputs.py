"""Bad input never crashes: a table of hostile and careless inputs for every command (issue 13).

Each row runs ``gradscape.cli.main(argv)`` in-process (argparse errors end in ``SystemExit(2)``) and
asserts the promise of :mod:`gradscape.cli`: exit code 2, exactly one non-empty line on stderr, no
``Traceback`` anywhere, and (where the row says) the line names the bad value or what to do. Every
row uses tiny settings, so that a value wrongly *accepted* fails fast with exit 0 instead of running
a long job. The broken neuron files are the fixtures of ``tests/models/test_neuron_files.py``.

Then property-based tests (``hypothesis``): generated landscape grid specs, TOML values for
:class:`~gradscape.models.training_config.TrainConfig` and checkpoint dicts for
:func:`~gradscape.models.checkpoints.open_checkpoint` either work or raise
:class:`~gradscape.errors.UserError`, never another exception.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from gradscape.cli import main
from gradscape.errors import UserError

DATA = Path(__file__).resolve().parents[1] / "data"
BROKEN = DATA / "broken_neurons"
BUNDLED_BRF = files("gradscape.bundled") / "checkpoints" / "ecg_brf.pt"

# --------------------------------------------------------------------------- cheap base commands
TRAIN = [
    "train", "--model", "alif", "--task", "ecg", "--hidden", "4", "--batch-size", "4",
    "--train-samples", "4", "--eval-samples", "4", "--epochs", "1", "--device", "cpu", "--no-progress",
]  # fmt: skip
EVAL = ["evaluate", "--task", "ecg", "--samples", "2", "--device", "cpu", "--no-progress"]
SPECTRUM = ["spectrum", "--neuron", "brf", "--device", "cpu", "--no-progress"]
SPECTRUM_CK = [
    "spectrum", "--checkpoint", "bundled:brf", "--task", "ecg", "--samples", "2", "--steps", "20",
    "--flow-samples", "1", "--lyapunov", "1", "--device", "cpu", "--no-progress",
]  # fmt: skip
LAND = [
    "landscape", "--checkpoint", "bundled:brf", "--task", "ecg", "--samples", "2", "--batch-size", "2",
    "--steps", "10", "--grid", "-1:1:3", "--device", "cpu", "--no-progress",
]  # fmt: skip
FIG = ["figures", "--profile", "smoke", "--only", "fig1", "--device", "cpu", "--no-progress"]
DEMO = ["demo", "--quick", "--device", "cpu"]
CURVES = ["curves", "--bundled", "ecg"]

EVIL_NEURON = """
from pathlib import Path
Path({marker!r}).write_text("the neuron file ran")
raise SystemExit("this file must never be imported by opening a checkpoint")
"""


class _Evil:
    """Pickles to a call of ``os.system``: the classic malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _save(obj: Any, path: Path) -> str:
    torch.save(obj, path)
    return str(path)


def _bundled() -> dict[str, Any]:
    """The bundled ECG BRF model as a gradscape checkpoint dict (what ``save_checkpoint`` writes)."""
    from gradscape.models.checkpoints import FORMAT, model_config, open_checkpoint

    net = open_checkpoint("bundled:brf").model
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return {"format": FORMAT, "model": model_config(net), "state_dict": state, "epoch": 0}


def _reference_dict() -> dict[str, Any]:
    """The bundled ECG BRF file as saved by the BRF authors (``model_state_dict`` layout)."""
    return dict(torch.load(BUNDLED_BRF, map_location="cpu", weights_only=True))


def _make_fixtures(root: Path) -> dict[str, str]:
    p: dict[str, str] = {}
    f = root / "a_file.txt"
    f.write_text("not a folder\n")
    p["file"] = str(f)
    p["under_file"] = str(f / "sub")
    (root / "empty").mkdir()
    p["empty_dir"] = str(root / "empty")
    p["marker"] = str(root / "marker.txt")

    # checkpoints
    text = root / "notes.pt"
    text.write_text("epoch 3, accuracy 86 %\n" * 5)
    p["ck_text"] = str(text)
    (root / "empty.pt").write_bytes(b"")
    p["ck_empty"] = str(root / "empty.pt")
    p["ck_evil"] = _save(_Evil(Path(p["marker"])), root / "evil.pt")
    with open(root / "evil_plain.pt", "wb") as fh:  # a bare pickle, not torch's zip format
        pickle.dump(_Evil(Path(p["marker"])), fh)
    p["ck_evil_plain"] = str(root / "evil_plain.pt")
    p["ck_list"] = _save([1, 2, 3], root / "list.pt")
    p["ck_tensor"] = _save(torch.zeros(3), root / "tensor.pt")
    ck = _bundled()
    p["ck_no_model"] = _save({k: v for k, v in ck.items() if k != "model"}, root / "no_model.pt")
    p["ck_no_state"] = _save({k: v for k, v in ck.items() if k != "state_dict"}, root / "no_state.pt")
    model = {k: v for k, v in ck["model"].items() if k != "input_size"}
    p["ck_no_input_size"] = _save({**ck, "model": model}, root / "no_input_size.pt")
    p["ck_model_str"] = _save({**ck, "model": "brf"}, root / "model_str.pt")
    p["ck_state_list"] = _save({**ck, "state_dict": [1, 2]}, root / "state_list.pt")
    w = ck["state_dict"]["hidden.weight"]
    state = {**ck["state_dict"], "hidden.weight": w.tolist()}
    p["ck_weight_list"] = _save({**ck, "state_dict": state}, root / "weight_list.pt")
    state = {**ck["state_dict"], "hidden.weight": w.flatten()}
    p["ck_weight_1d"] = _save({**ck, "state_dict": state}, root / "weight_1d.pt")
    p["ck_neg_hidden"] = _save({**ck, "model": {**ck["model"], "hidden_size": -4}}, root / "neg_hidden.pt")
    p["ck_str_hidden"] = _save({**ck, "model": {**ck["model"], "hidden_size": "36"}}, root / "str_hidden.pt")
    p["ck_unknown_neuron"] = _save({**ck, "model": {**ck["model"], "neuron": "nosuch"}}, root / "nosuch.pt")
    evil_py = root / "evil_neuron.py"
    evil_py.write_text(EVIL_NEURON.format(marker=p["marker"]))
    model = {**ck["model"], "neuron": f"{evil_py}:Leaky"}
    p["ck_neuron_file"] = _save({**ck, "model": model}, root / "neuron_file.pt")
    ref = _reference_dict()
    p["ref_ok"] = _save(ref, root / "ref_ok.pt")
    rs = ref["model_state_dict"]
    bad = {**rs, "hidden.linear.weight": rs["hidden.linear.weight"][:-2]}  # 34 rows for 36 neurons
    p["ref_wrong_shape"] = _save({**ref, "model_state_dict": bad}, root / "ref_wrong_shape.pt")
    bad = {k: v for k, v in rs.items() if k != "hidden.linear.weight"}
    p["ref_no_weight"] = _save({**ref, "model_state_dict": bad}, root / "ref_no_weight.pt")
    bad = {**rs, "hidden.linear.weight": rs["hidden.linear.weight"].flatten()}
    p["ref_weight_1d"] = _save({**ref, "model_state_dict": bad}, root / "ref_weight_1d.pt")
    bad = {**rs, "hidden.linear.weight": rs["hidden.linear.weight"].tolist()}
    p["ref_weight_list"] = _save({**ref, "model_state_dict": bad}, root / "ref_weight_list.pt")

    # TOML configs
    tomls = {
        "lr_str": 'lr = "x"\n',
        "hidden_list": "hidden_size = [1]\n",
        "batch_float": "batch_size = 3.5\n",
        "epochs_str": 'epochs = "abc"\n',
        "init_str": 'init = "x"\n',
        "init_bad_dist": '[init]\nomega = "Q(1,2)"\n',
        "syntax": "lr = = 1\n",
        "unknown_key": "nosuch = 1\n",
        "model_number": "model = 3\n",
        "lr_neg": "lr = -1.0\n",
        "epochs_zero": "epochs = 0\n",
        "seed_bool": "seed = true\n",
        "nan_lr": "lr = nan\n",
    }
    for name, body in tomls.items():
        (root / f"{name}.toml").write_text(body, encoding="utf-8")
        p[f"toml_{name}"] = str(root / f"{name}.toml")
    (root / "latin1.toml").write_bytes('surrogate = "gaußian"\n'.encode("latin-1"))
    p["toml_latin1"] = str(root / "latin1.toml")
    (root / "config_dir.toml").mkdir()
    p["toml_dir"] = str(root / "config_dir.toml")

    # landscape results
    a = root / "not_a_result.npz"
    a.write_text("hello\n")
    p["npz_text"] = str(a)
    np.savez(root / "no_meta.npz", loss=np.zeros((3, 3)))
    p["npz_no_meta"] = str(root / "no_meta.npz")
    return p


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The broken files the table refers to as ``{name}``, plus a tiny run and a tiny landscape."""
    from gradscape.models.training import default_config, train

    root = tmp_path_factory.mktemp("bad")
    p = _make_fixtures(root)
    cfg = default_config("alif", "ecg").replace(
        epochs=1, hidden_size=4, batch_size=4, train_samples=4, eval_samples=4, device="cpu"
    )
    train(cfg, root / "run", progress=False)
    p["run"] = str(root / "run")
    for name, damage in (
        ("run_truncated", lambda d: _truncate(d / "last.pt")),
        ("run_bad_status", lambda d: (d / "status.json").write_text("{not json")),
        ("run_status_list", lambda d: (d / "status.json").write_text("[1, 2]")),
        ("run_status_latin1", lambda d: (d / "status.json").write_bytes(b'{"status": "\xff"}')),
        ("run_no_last", lambda d: (d / "last.pt").unlink()),
        ("run_partial", lambda d: None),
    ):
        shutil.copytree(root / "run", root / name)
        (root / name / "status.json").write_text('{"status": "running", "epoch": 0}')
        damage(root / name)
        p[name] = str(root / name)
    assert main([*LAND, "--out", str(root / "land")]) == 0
    result = root / "land" / "brf" / "landscape.npz"
    p["npz_ok"] = str(result)
    with np.load(result, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(root / "bad_meta.npz", **{**arrays, "meta": np.array("{not json")})
    p["npz_bad_meta"] = str(root / "bad_meta.npz")
    np.savez(root / "meta_list.npz", **{**arrays, "meta": np.array("[1, 2]")})
    p["npz_meta_list"] = str(root / "meta_list.npz")
    np.savez(root / "loss_shape.npz", **{**arrays, "loss": arrays["loss"].ravel()[:4]})
    p["npz_loss_shape"] = str(root / "loss_shape.npz")
    _truncate(Path(p["npz_ok"]), root / "truncated.npz")
    p["npz_truncated"] = str(root / "truncated.npz")
    return p


def _truncate(path: Path, to: Path | None = None) -> None:
    data = path.read_bytes()
    (to or path).write_bytes(data[: len(data) // 2])


def _neuron(case: str) -> str:
    spec = next(c for c in json.loads((BROKEN / "cases.json").read_text())["cases"] if c["case"] == case)
    return f"{BROKEN / spec['file']}:{spec['name']}"


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Case:
    """``argv`` with ``{name}`` placeholders (fixtures, ``{out}`` a fresh folder); ``says``: fragments
    the one line must contain (case-insensitive); ``never``: fragments it must not contain."""

    id: str
    argv: tuple[str, ...]
    says: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    out: bool = True  # append --out {out} (unless argv names --out itself)
    xfail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def C(id: str, *argv: str, says: str | tuple[str, ...] = (), **kw: Any) -> Case:
    return Case(id, tuple(argv), (says,) if isinstance(says, str) else tuple(says), **kw)


OUT_FILE = ("--out", "{file}")
OUT_UNDER = ("--out", "{under_file}")
#: torch's advice to retry an unsafe load, in any of its wordings, is the wrong advice for an attacker's file
NO_RETRY = ("weights_only", "still be loaded", "Re-running", "trusted source", "KeyError")

# fmt: off
CASES: list[Case] = [
    # ---- train: numbers out of range (the bound is in the message)
    C("train/batch-size=0", *TRAIN, "--batch-size", "0", says=(">= 1", "'0'")),
    C("train/batch-size=-1", *TRAIN, "--batch-size", "-1", says=">= 1"),
    C("train/train-samples=-5", *TRAIN, "--train-samples", "-5", says=">= 1"),
    C("train/eval-samples=0", *TRAIN, "--eval-samples", "0", says=">= 1"),
    C("train/threads=-1", *TRAIN, "--threads", "-1", says=">= 1"),
    C("train/seed=-1", *TRAIN, "--seed", "-1", says=">= 0"),
    C("train/data-seed=-1", *TRAIN, "--data-seed", "-1", says=">= 0"),
    C("train/max-batches=0", *TRAIN, "--max-batches", "0", says=">= 1"),
    C("train/stop-at-val-acc=nan", *TRAIN, "--stop-at-val-acc", "nan", says="finite"),
    C("train/stop-at-val-acc=101", *TRAIN, "--stop-at-val-acc", "101", says="100"),
    C("train/epochs=0", *TRAIN, "--epochs", "0", says=">= 1"),
    C("train/epochs=abc", *TRAIN, "--epochs", "abc", says="'abc'"),
    C("train/hidden=0", *TRAIN, "--hidden", "0", says=">= 1"),
    C("train/lr=nan", *TRAIN, "--lr", "nan", says="nan"),
    C("train/lr=-1", *TRAIN, "--lr", "-1", says="-1"),
    C("train/lr=0", *TRAIN, "--lr", "0", says="lr"),
    C("train/lr=inf", *TRAIN, "--lr", "inf", says="inf"),
    C("train/clip=inf", *TRAIN, "--clip", "inf", says="finite"),
    C("train/tbptt=-1", *TRAIN, "--tbptt", "-1", says=">= 0"),
    C("train/eval-batch-size=0", *TRAIN, "--eval-batch-size", "0", says=">= 1"),
    # ---- train: names and specs
    C("train/model=nosuch", *TRAIN, "--model", "nosuch", says="nosuch"),
    C("train/task=nosuch", *TRAIN, "--task", "nosuch", says="nosuch"),
    C("train/no-model", "train", "--task", "ecg", says="--model"),
    C("train/init=omega", *TRAIN, "--init", "omega", says="PARAM=DIST"),
    C("train/init-dist=Q", *TRAIN, "--init", "omega=Q(1,2)", says="Q(1,2)"),
    C("train/init-param=nosuch", *TRAIN, "--init", "nosuch=U(1,2)", says="nosuch"),
    C("train/tau-out=N(a,b)", *TRAIN, "--tau-out", "N(a,b)", says="N(a,b)"),
    C("train/surrogate=nosuch", *TRAIN, "--surrogate", "nosuch", says="nosuch"),
    C("train/seeds=5-2", *TRAIN, "--seeds", "5-2", says="5-2"),
    C("train/seeds=x", *TRAIN, "--seeds", "x", says="'x'"),
    C("train/seeds=-1", *TRAIN, "--seeds", "-1", says="-1"),
    C("train/permutation=missing", *TRAIN, "--task", "psmnist", "--permutation", "/nonexistent/p.pt",
      says="/nonexistent/p.pt"),
    C("train/permutation=text", *TRAIN, "--task", "psmnist", "--permutation", "{ck_text}", says="notes.pt"),
    C("train/data-dir=missing", *TRAIN, "--data-dir", "/nonexistent/data", says="/nonexistent/data"),
    C("train/data-dir=empty", *TRAIN, "--data-dir", "{empty_dir}", says="empty"),
    C("train/data-dir=file", *TRAIN, "--data-dir", "{file}", says="a_file.txt"),
    # ---- train: output folder, device
    C("train/out=file", *TRAIN, *OUT_FILE, says=("a_file.txt", "folder")),
    C("train/out=under-file", *TRAIN, *OUT_UNDER, says="sub"),
    C("train/device=meta", *TRAIN, "--device", "meta", says="meta"),
    C("train/device=mps", *TRAIN, "--device", "mps", says="mps"),
    C("train/device=cuda:99", *TRAIN, "--device", "cuda:99", says="cuda:99"),
    C("train/device=gpu", *TRAIN, "--device", "gpu", says="gpu"),
    # ---- train: TOML configs
    C("train/toml-lr-str", *TRAIN, "--config", "{toml_lr_str}", says="lr"),
    C("train/toml-hidden-list", *TRAIN[:5], "--config", "{toml_hidden_list}", says="hidden_size"),
    C("train/toml-batch-float", *TRAIN[:5], "--config", "{toml_batch_float}", says="batch_size"),
    C("train/toml-epochs-str", *TRAIN[:5], "--config", "{toml_epochs_str}", says="epochs"),
    C("train/toml-init-str", *TRAIN, "--config", "{toml_init_str}", says="init"),
    C("train/toml-init-dist", *TRAIN, "--config", "{toml_init_bad_dist}", says="Q(1,2)"),
    C("train/toml-not-utf8", *TRAIN, "--config", "{toml_latin1}", says="UTF-8"),
    C("train/toml-folder", *TRAIN, "--config", "{toml_dir}", says="folder"),
    C("train/toml-syntax", *TRAIN, "--config", "{toml_syntax}", says="TOML"),
    C("train/toml-unknown-key", *TRAIN, "--config", "{toml_unknown_key}", says="nosuch"),
    C("train/toml-model-number", "train", "--task", "ecg", "--config", "{toml_model_number}", says="model"),
    C("train/toml-lr-neg", *TRAIN, "--config", "{toml_lr_neg}", says="lr"),
    C("train/toml-epochs-0", *TRAIN[:5], "--config", "{toml_epochs_zero}", says="epochs"),
    C("train/toml-seed-bool", *TRAIN, "--config", "{toml_seed_bool}", says="seed"),
    C("train/toml-lr-nan", *TRAIN, "--config", "{toml_nan_lr}", says="lr"),
    C("train/toml-missing", *TRAIN, "--config", "/nonexistent.toml", says="does not exist"),
    # ---- train: neuron files (fixtures of tests/models/test_neuron_files.py)
    *(
        C(f"train/neuron-{case}", *TRAIN, "--model", _neuron(case), says=frag)
        for case, frag in (
            ("no_step", "'step'"),
            ("step_arity", "four arguments"),
            ("plain_tuple", "plain tuple"),
            ("three_values", "returned 3 values"),
            ("raises_at_import", "RuntimeError"),
            ("file_missing", "does not exist"),
        )
    ),
    # ---- train --resume: damaged or different runs
    C("train/resume-truncated-last.pt", *TRAIN, "--resume", "--out", "{run_truncated}",
      says=("last.pt", "damaged")),
    C("train/resume-status-not-json", *TRAIN, "--resume", "--out", "{run_bad_status}", says="status.json"),
    C("train/resume-status-list", *TRAIN, "--resume", "--out", "{run_status_list}", says="status.json"),
    C("train/resume-status-latin1", *TRAIN, "--resume", "--out", "{run_status_latin1}", says="status.json"),
    C("train/resume-other-lr", *TRAIN, "--lr", "0.5", "--resume", "--out", "{run_partial}", says="lr"),
    C("train/resume-other-data-seed", *TRAIN, "--data-seed", "3", "--resume", "--out", "{run_partial}",
      says="data_seed"),
    C("train/resume-other-samples", *TRAIN, "--train-samples", "8", "--resume", "--out", "{run_partial}",
      says="train_samples"),
    C("train/resume-finished-other-data-seed", *TRAIN, "--data-seed", "3", "--resume", "--out", "{run}",
      says="data_seed"),
    # ---- evaluate: malformed checkpoints
    C("evaluate/ck=text", *EVAL, "--checkpoint", "{ck_text}", says="notes.pt", never=NO_RETRY),
    C("evaluate/ck=empty", *EVAL, "--checkpoint", "{ck_empty}", says="empty.pt"),
    C("evaluate/ck=malicious", *EVAL, "--checkpoint", "{ck_evil}", says="evil.pt", never=NO_RETRY,
      extra={"marker_absent": True}),
    C("evaluate/ck=malicious-plain-pickle", *EVAL, "--checkpoint", "{ck_evil_plain}", says="evil_plain.pt",
      never=NO_RETRY, extra={"marker_absent": True}),
    C("evaluate/ck=list", *EVAL, "--checkpoint", "{ck_list}", says="list"),
    C("evaluate/ck=tensor", *EVAL, "--checkpoint", "{ck_tensor}", says="tensor.pt"),
    C("evaluate/ck-no-model", *EVAL, "--checkpoint", "{ck_no_model}", says="model", never=NO_RETRY),
    C("evaluate/ck-no-state_dict", *EVAL, "--checkpoint", "{ck_no_state}", says="state_dict"),
    C("evaluate/ck-no-input_size", *EVAL, "--checkpoint", "{ck_no_input_size}", says="input_size"),
    C("evaluate/ck-model-str", *EVAL, "--checkpoint", "{ck_model_str}", says="model"),
    C("evaluate/ck-state-list", *EVAL, "--checkpoint", "{ck_state_list}", says="state_dict"),
    C("evaluate/ck-weight-list", *EVAL, "--checkpoint", "{ck_weight_list}", says="hidden.weight"),
    C("evaluate/ck-weight-1d", *EVAL, "--checkpoint", "{ck_weight_1d}", says="hidden.weight"),
    C("evaluate/ck-hidden=-4", *EVAL, "--checkpoint", "{ck_neg_hidden}", says="hidden_size"),
    C("evaluate/ck-hidden='36'", *EVAL, "--checkpoint", "{ck_str_hidden}", says="hidden_size"),
    C("evaluate/ck-neuron=nosuch", *EVAL, "--checkpoint", "{ck_unknown_neuron}", says="nosuch"),
    C("evaluate/ck-names-neuron-file", *EVAL, "--checkpoint", "{ck_neuron_file}", says="--trust-neuron-file",
      extra={"marker_absent": True}),
    C("evaluate/ref-wrong-shape", *EVAL, "--model", "brf", "--checkpoint", "{ref_wrong_shape}",
      says="hidden.linear.weight", never=("hidden.omega",)),
    C("evaluate/ref-no-weight", *EVAL, "--model", "brf", "--checkpoint", "{ref_no_weight}",
      says="hidden.linear.weight"),
    C("evaluate/ref-weight-1d", *EVAL, "--model", "brf", "--checkpoint", "{ref_weight_1d}",
      says="hidden.linear.weight"),
    C("evaluate/ref-weight-list", *EVAL, "--model", "brf", "--checkpoint", "{ref_weight_list}",
      says="hidden.linear.weight"),
    C("evaluate/ref-needs-model", *EVAL, "--checkpoint", "{ref_ok}", says="--model"),
    C("evaluate/ck=missing", *EVAL, "--checkpoint", "/nonexistent/x.pt", says="does not exist"),
    C("evaluate/ck=empty-folder", *EVAL, "--checkpoint", "{empty_dir}", says="best.pt"),
    C("evaluate/ck=bundled:nosuch", *EVAL, "--checkpoint", "bundled:nosuch", says="nosuch"),
    C("evaluate/ck-run-without-last.pt", *EVAL, "--checkpoint", "{run_no_last}/last.pt", says="last.pt"),
    C("evaluate/ck-truncated-last.pt", *EVAL, "--checkpoint", "{run_truncated}/last.pt", says="last.pt"),
    # ---- evaluate: numbers, data, device
    C("evaluate/samples=0", *EVAL, "--checkpoint", "bundled:brf", "--samples", "0", says=">= 1"),
    C("evaluate/batch-size=0", *EVAL, "--checkpoint", "bundled:brf", "--batch-size", "0", says=">= 1"),
    C("evaluate/seed=-1", *EVAL, "--checkpoint", "bundled:brf", "--seed", "-1", says=">= 0"),
    C("evaluate/threads=0", *EVAL, "--checkpoint", "bundled:brf", "--threads", "0", says=">= 1"),
    C("evaluate/task=nosuch", *EVAL, "--checkpoint", "bundled:brf", "--task", "nosuch", says="nosuch"),
    C("evaluate/task-mismatch", *EVAL, "--checkpoint", "bundled:brf", "--task", "smnist", says="smnist"),
    C("evaluate/data-dir=empty", *EVAL, "--checkpoint", "bundled:brf", "--data-dir", "{empty_dir}",
      says="empty"),
    C("evaluate/device=meta", *EVAL, "--checkpoint", "bundled:brf", "--device", "meta", says="meta"),
    C("evaluate/device=cuda:99", *EVAL, "--checkpoint", "bundled:brf", "--device", "cuda:99",
      says="cuda:99"),
    # ---- spectrum
    C("spectrum/param-omega=1e9", *SPECTRUM, "--param", "omega=1e9", says="100"),
    C("spectrum/param-omega=abc", *SPECTRUM, "--param", "omega=abc", says="abc"),
    C("spectrum/param-omega=nan", *SPECTRUM, "--param", "omega=nan", says="omega"),
    C("spectrum/param-nosuch", *SPECTRUM, "--param", "nosuch=1", says="nosuch"),
    C("spectrum/param-no-value", *SPECTRUM, "--param", "omega", says="NAME=VALUE"),
    C("spectrum/state-nosuch", *SPECTRUM, "--state", "nosuch=1", says="nosuch"),
    C("spectrum/input=nan", *SPECTRUM, "--input", "nan", says="nan"),
    C("spectrum/input=inf", *SPECTRUM, "--input", "inf", says="inf"),
    C("spectrum/timeout=-1", *SPECTRUM, "--timeout", "-1", says="-1"),
    C("spectrum/timeout=0", *SPECTRUM, "--timeout", "0", says="0"),
    C("spectrum/map=bad", *SPECTRUM, "--map", "omega=a:b:c", says="omega=a:b:c"),
    C("spectrum/map-huge", *SPECTRUM, "--map", "omega=0:99:100000,b=-100:0:100000", says="100000"),
    C("spectrum/neuron=nosuch", *SPECTRUM, "--neuron", "nosuch", says="nosuch"),
    C("spectrum/neuron-default-str", *SPECTRUM, "--neuron", _neuron("default_str"), says="theta"),
    C("spectrum/neuron-plain-tuple", *SPECTRUM, "--neuron", _neuron("plain_tuple"), says="plain tuple"),
    C("spectrum/out=file", *SPECTRUM, *OUT_FILE, says="a_file.txt"),
    C("spectrum/out=under-file", *SPECTRUM, *OUT_UNDER, says="sub"),
    C("spectrum/device=meta", *SPECTRUM_CK, "--device", "meta", says="meta"),
    C("spectrum/device=mps", *SPECTRUM_CK, "--device", "mps", says="mps"),
    C("spectrum/device=cuda:99", *SPECTRUM_CK, "--device", "cuda:99", says="cuda:99"),
    C("spectrum/lyapunov=-1", *SPECTRUM_CK, "--lyapunov", "-1", says=("--lyapunov", "0")),
    C("spectrum/flow-samples=-1", *SPECTRUM_CK, "--flow-samples", "-1", says=("--flow-samples", "0")),
    C("spectrum/steps=-5", *SPECTRUM_CK, "--steps", "-5", says=("--steps", "1")),
    C("spectrum/samples=0", *SPECTRUM_CK, "--samples", "0", says=("--samples", "1")),
    C("spectrum/seed=-1", *SPECTRUM_CK, "--seed", "-1", says="-1"),
    C("spectrum/ck=text", *SPECTRUM_CK, "--checkpoint", "{ck_text}", says="notes.pt", never=NO_RETRY),
    C("spectrum/ck=malicious", *SPECTRUM_CK, "--checkpoint", "{ck_evil}", says="evil.pt", never=NO_RETRY,
      extra={"marker_absent": True}),
    C("spectrum/ck=bundled:nosuch", *SPECTRUM_CK, "--checkpoint", "bundled:nosuch", says="nosuch"),
    C("spectrum/ck-names-neuron-file", *SPECTRUM_CK, "--checkpoint", "{ck_neuron_file}",
      says="--trust-neuron-file", extra={"marker_absent": True}),
    # ---- landscape
    C("landscape/grid-1e8-points", *LAND, "--grid", "-1:1:10000", says="10000"),
    C("landscape/grid=a:b:c", *LAND, "--grid", "a:b:c", says="a:b:c"),
    C("landscape/grid-num=0", *LAND, "--grid", "-1:1:0", says="-1:1:0"),
    C("landscape/grid-nan", *LAND, "--grid", "nan:1:3", says="nan:1:3"),
    C("landscape/grid-inf", *LAND, "--grid=-1:inf:3", says="-1:inf:3"),
    C("landscape/grid-three-axes", *LAND, "--grid", "-1:1:3,-1:1:3,-1:1:3", says="-1:1:3"),
    C("landscape/grid-empty", *LAND, "--grid", "", says="grid"),
    C("landscape/samples=0", *LAND, "--samples", "0", says=("--samples", "1")),
    C("landscape/samples=-1", *LAND, "--samples", "-1", says=("--samples", "1")),
    C("landscape/batch-size=0", *LAND, "--batch-size", "0", says=("--batch-size", "1")),
    C("landscape/steps=-5", *LAND, "--steps", "-5", says=("--steps", "1")),
    C("landscape/chunk-size=0", *LAND, "--chunk-size", "0", says=("--chunk-size", "1")),
    C("landscape/seed=-1", *LAND, "--seed", "-1", says="-1"),
    C("landscape/data-seed=-1", *LAND, "--data-seed", "-1", says="-1"),
    C("landscape/vmax=nan", *LAND, "--vmax", "nan", says="nan"),
    C("landscape/out=file", *LAND, *OUT_FILE, says="a_file.txt"),
    C("landscape/out=under-file", *LAND, *OUT_UNDER, says="sub"),
    C("landscape/device=meta", *LAND, "--device", "meta", says="meta"),
    C("landscape/device=mps", *LAND, "--device", "mps", says="mps"),
    C("landscape/device=cuda:99", *LAND, "--device", "cuda:99", says="cuda:99"),
    C("landscape/task=nosuch", *LAND, "--task", "nosuch", says="nosuch"),
    C("landscape/ck=text", *LAND, "--checkpoint", "{ck_text}", says="notes.pt", never=NO_RETRY),
    C("landscape/ck=malicious", *LAND, "--checkpoint", "{ck_evil}", says="evil.pt", never=NO_RETRY,
      extra={"marker_absent": True}),
    C("landscape/ck-weight-1d", *LAND, "--checkpoint", "{ck_weight_1d}", says="hidden.weight"),
    C("landscape/ck-names-neuron-file", *LAND, "--checkpoint", "{ck_neuron_file}",
      says="--trust-neuron-file", extra={"marker_absent": True}),
    C("landscape/through-missing", *LAND, "--directions", "checkpoints", "--through", "/nonexistent.pt",
      "/nonexistent2.pt", says="/nonexistent"),
    C("landscape/plot-corrupt-meta", "landscape", "plot", "{npz_bad_meta}", says="bad_meta.npz"),
    C("landscape/plot-meta-list", "landscape", "plot", "{npz_meta_list}", says="meta_list.npz"),
    C("landscape/plot-loss-shape", "landscape", "plot", "{npz_loss_shape}", says="loss_shape.npz"),
    C("landscape/plot-no-meta", "landscape", "plot", "{npz_no_meta}", says="no_meta.npz"),
    C("landscape/plot-text", "landscape", "plot", "{npz_text}", says="not_a_result.npz"),
    C("landscape/plot-truncated", "landscape", "plot", "{npz_truncated}", says="truncated.npz"),
    C("landscape/plot-missing", "landscape", "plot", "/nonexistent.npz", says="/nonexistent.npz"),
    C("landscape/plot-out=file", "landscape", "plot", "{npz_ok}", *OUT_FILE, says="a_file.txt"),
    C("landscape/plot-nothing", "landscape", "plot", says="plot"),
    # ---- figures
    C("figures/only=,", *FIG, "--only", ",", says="--only"),
    C("figures/only=fig9", *FIG, "--only", "fig9", says="fig9"),
    C("figures/only=empty", *FIG, "--only", "", says="--only"),
    C("figures/profile=nosuch", *FIG, "--profile", "nosuch", says="nosuch"),
    C("figures/out=file", *FIG, *OUT_FILE, says="a_file.txt"),
    C("figures/out=under-file", *FIG, *OUT_UNDER, says="sub"),
    C("figures/device=meta", *FIG, "--device", "meta", says="meta"),
    C("figures/device=mps", *FIG, "--device", "mps", says="mps"),
    C("figures/device=cuda:99", *FIG, "--device", "cuda:99", says="cuda:99"),
    C("figures/data-dir=missing", *FIG, "--data-dir", "/nonexistent/data", says="/nonexistent/data"),
    C("figures/data-dir=file", *FIG, "--data-dir", "{file}", says="a_file.txt"),
    # ---- demo
    C("demo/sample=99999", *DEMO, "--sample", "99999", says="99999"),
    C("demo/sample=-1", *DEMO, "--sample", "-1", says="-1"),
    C("demo/threads=0", *DEMO, "--threads", "0", says=">= 1"),
    C("demo/threads=-1", *DEMO, "--threads", "-1", says=">= 1"),
    C("demo/seed=-1", *DEMO, "--seed", "-1", says=">= 0"),
    C("demo/out=file", *DEMO, *OUT_FILE, says="a_file.txt"),
    C("demo/out=under-file", *DEMO, *OUT_UNDER, says="sub"),
    C("demo/device=meta", *DEMO, "--device", "meta", says="meta"),
    C("demo/device=mps", *DEMO, "--device", "mps", says="mps"),
    C("demo/device=cuda:99", *DEMO, "--device", "cuda:99", says="cuda:99"),
    # ---- curves
    C("curves/bundled=nosuch", "curves", "--bundled", "nosuch", says="nosuch"),
    C("curves/rule=nosuch", *CURVES, "--rule", "nosuch", says="nosuch"),
    C("curves/nothing", "curves", says="nothing"),
    C("curves/path-missing", "curves", "/nonexistent/run", says="/nonexistent/run"),
    C("curves/path-text", "curves", "{ck_text}", says="notes.pt"),
    C("curves/empty-folder", "curves", "{empty_dir}", says="empty"),
    C("curves/out=file", *CURVES, *OUT_FILE, says="a_file.txt"),
    C("curves/out=under-file", *CURVES, *OUT_UNDER, says="sub"),
    # ---- the command line itself
    C("cli/unknown-command", "nosuch", says="nosuch"),
    C("cli/unknown-flag", *TRAIN, "--nosuch", says="--nosuch"),
]
# fmt: on

#: rows that still fail: the reason names the owner and the file (written up in /work/REQUESTS.md);
#: strict, so a fix shows up as XPASS and the row is un-marked. Empty since issue 13 was fixed.
XFAIL: dict[str, str] = {}
#: rows that must not even run until fixed: accepted, they would compute for hours
DONT_RUN: dict[str, str] = {}


def _params() -> list[Any]:
    out = []
    for case in CASES:
        reason = case.xfail or XFAIL.get(case.id, "")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        if case.id in DONT_RUN:
            marks = [pytest.mark.xfail(run=False, reason=DONT_RUN[case.id])]
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(argv)`` → (exit code, stdout, stderr); an escaping exception is a failed row.

    Warnings are added to stderr as Python's default filters would print them on a terminal (pytest
    would otherwise swallow them, hiding the extra lines a user sees).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
    return rc, captured.out, captured.err + shown


def _one_line_exit_2(rc: int, out: str, err: str, case: Case) -> str:
    assert "Traceback" not in out + err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}; stderr: {err[-800:]}"
    assert len(lines) == 1, lines
    line = lines[0]
    for frag in case.says:
        assert frag.lower() in line.lower(), f"{frag!r} not in: {line}"
    for frag in case.never:
        assert frag not in line, f"{frag!r} in: {line}"
    return line


@pytest.mark.parametrize("case", _params())
def test_bad_input_is_one_line_and_exit_2(
    case: Case, paths: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = Path(paths["marker"])
    marker.unlink(missing_ok=True)
    capsys.readouterr()
    fill = {**paths, "out": str(tmp_path / "out")}
    argv = [a.format_map(fill) for a in case.argv]
    if case.out and "--out" not in argv and argv[0] not in ("evaluate",):
        argv += ["--out", fill["out"]]
    rc, out, err = run_cli(argv, capsys)
    _one_line_exit_2(rc, out, err, case)
    if case.extra.get("marker_absent"):
        assert not marker.exists(), "the checkpoint ran code"


def test_the_table_covers_every_command_and_enough_classes() -> None:
    commands = {c.argv[0] for c in CASES}
    assert {"train", "evaluate", "spectrum", "landscape", "figures", "demo", "curves"} <= commands
    assert len({c.id for c in CASES}) == len(CASES) >= 60


def test_a_nan_neuron_is_a_result_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A neuron that produces NaN is reported in the spectrum's result (exit 0), not a LinAlgError."""
    rc, out, err = run_cli(
        ["spectrum", "--neuron", f"{BROKEN / 'nan_step.py'}:Broken", "--no-progress", "--out", str(tmp_path)],
        capsys,
    )
    assert "Traceback" not in out + err
    assert rc == 0, err
    assert "nan" in out.lower()


# --------------------------------------------------------------------------- property-based
#: A fixed budget, no deadline (the machine is shared), no example database, no shrinking (a failing
#: example is reported as generated: shrinking a checkpoint dict costs more than the whole table), and
#: hypothesis' caches kept out of the working tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "gradscape-hypothesis")
_FUZZ = settings(
    derandomize=True,  # the same examples on every machine and run: a red row is reproducible
    max_examples=60,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_number_text = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "-", "+", "1e", "0x10", "nan", "-inf", "1_000", " 3", "٣", "1e400"]),
    st.text(max_size=6),
)  # fmt: skip
_axis = st.one_of(
    st.tuples(_number_text, _number_text, _number_text).map(":".join),
    st.tuples(_number_text, _number_text).map(":".join),
    _number_text,
)
_grid_spec = st.one_of(_axis, st.lists(_axis, min_size=1, max_size=3).map(",".join), st.text(max_size=20))


@_FUZZ
@given(spec=_grid_spec, dims=st.sampled_from([1, 2]))
def test_grid_specs_parse_or_are_user_errors(spec: str, dims: int) -> None:
    from gradscape.landscape.grid import parse_grid

    try:
        grid = parse_grid(spec, dims)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert grid.dims == dims
    for axis in grid.axes:  # not axis.values: a parsed 10**12-point axis is refused later, by memory
        assert math.isfinite(axis.start) and math.isfinite(axis.stop) and axis.num >= 1
        assert axis.num == 1 or axis.start < axis.stop


_toml_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2),
)
_FIELDS = (
    "epochs", "lr", "batch_size", "hidden_size", "clip", "loss_mode", "sub_seq_length", "reduction",
    "tbptt", "tbptt_mode", "seed", "data_seed", "stop_at_val_acc", "device", "data_dir", "permutation",
    "tau_out", "surrogate", "eval_batch_size", "max_batches", "train_samples", "eval_samples", "init",
    "download", "compile", "ecg_exclude_unlabelled",
)  # fmt: skip


@_FUZZ
@given(values=st.dictionaries(st.sampled_from(_FIELDS), _toml_scalar, min_size=1, max_size=3))
def test_trainconfig_values_work_or_are_user_errors(values: dict[str, Any]) -> None:
    from gradscape.models.training_config import default_config

    values = {k: v for k, v in values.items() if v is not None}  # TOML has no null
    try:
        cfg = default_config("alif", "ecg", **values)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert cfg.epochs >= 1 and cfg.batch_size >= 1 and cfg.hidden_size >= 1
    assert math.isfinite(cfg.lr) and cfg.lr > 0


_tensor = st.one_of(
    st.lists(st.integers(0, 40), min_size=0, max_size=3).map(lambda s: torch.zeros(tuple(s))),
    st.just(torch.tensor(float("nan"))),
    st.just(torch.zeros(36, 40, dtype=torch.int64)),
)
_leaf = st.one_of(_toml_scalar, _tensor)


def _checkpoint_dicts() -> st.SearchStrategy[Any]:
    base = _bundled()

    def mutate(draw_key: str, value: Any, where: str) -> Any:
        ck = {**base, "model": dict(base["model"]), "state_dict": dict(base["state_dict"])}
        if where == "top":
            ck[draw_key] = value
        elif where == "model":
            ck["model"][draw_key] = value
        elif where == "state":
            ck["state_dict"][draw_key] = value
        elif where == "drop-model":
            ck["model"].pop(draw_key, None)
        elif where == "drop-state":
            ck["state_dict"].pop(draw_key, None)
        else:
            ck.pop(draw_key, None)
        return ck

    keys = st.sampled_from(
        [*base, *base["model"], *base["state_dict"], "model_state_dict", "nosuch", "format"]
    )
    wheres = st.sampled_from(["top", "model", "state", "drop-model", "drop-state", "drop-top"])
    mutated = st.builds(mutate, keys, _leaf, wheres)
    ref = dict(_reference_dict()["model_state_dict"])
    reference = st.builds(
        lambda k, v, drop: {"model_state_dict": {**{n: t for n, t in ref.items() if n != drop}, k: v}},
        st.sampled_from([*ref, "nosuch"]),
        _leaf,
        st.sampled_from([None, *ref]),
    )
    return st.one_of(mutated, reference, _leaf, st.lists(_leaf, max_size=3))


@settings(_FUZZ, max_examples=40)
@given(ckpt=_checkpoint_dicts(), model=st.sampled_from([None, "brf", "rf", "alif"]))
def test_checkpoint_dicts_open_or_are_user_errors(tmp_path: Path, ckpt: Any, model: str | None) -> None:
    from gradscape.models.checkpoints import open_checkpoint

    path = tmp_path / "fuzz.pt"
    torch.save(ckpt, path)
    try:
        ck = open_checkpoint(path, model)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert ck.model.hidden_size >= 1
