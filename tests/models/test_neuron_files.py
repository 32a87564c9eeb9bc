"""Loading a user's neuron file: every deliberately broken file (tests/data/broken_neurons/cases.json)
is one UserError line naming the field; the sha256 record refuses a changed file without running it;
a NaN-producing neuron loads."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from gradscape.cli import main
from gradscape.errors import UserError
from gradscape.models import TorchOps, get_neuron
from gradscape.models.neurons import (
    NeuronFileSpec,
    is_neuron_file_spec,
    load_neuron_file,
    neuron_file_sha256,
    validate_neuron,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data"
BROKEN = DATA / "broken_neurons"
CASES: list[dict[str, Any]] = json.loads((BROKEN / "cases.json").read_text())["cases"]


def _case_path(case: dict[str, Any], tmp_path: Path) -> Path:
    if "source" in case:
        path = tmp_path / f"{case['case']}.py"
        path.write_text(case["source"])
        return path
    return BROKEN / case["file"]


def test_the_broken_files_cover_the_required_kinds() -> None:
    kinds = {c["case"] for c in CASES}
    required = {
        "no_step", "step_arity", "plain_tuple", "reordered_fields", "wrong_field_count",
        "membrane_not_field", "default_str", "default_none", "default_list", "init_state_field",
        "syntax_error", "file_missing", "name_missing", "raises_at_import", "step_raises",
    }  # fmt: skip
    assert required <= kinds
    for c in CASES:  # a file case that is not meant to be missing exists and is named in the table
        if "file" in c and c["case"] not in ("file_missing",):
            assert (BROKEN / c["file"]).is_file(), c
    assert not (BROKEN / "no_such_file.py").exists()


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_broken_neuron_file_is_one_line_naming_the_field(case: dict[str, Any], tmp_path: Path) -> None:
    path = _case_path(case, tmp_path)
    with pytest.raises(UserError) as info:
        get_neuron(f"{path}:{case['name']}")
    message = str(info.value)
    assert "\n" not in message
    assert case["fragment"] in message
    assert case["field"] in message
    assert str(path) in message  # the file is named


def test_each_broken_file_is_otherwise_a_working_neuron(tmp_path: Path) -> None:
    """The table's files differ from a good neuron only in the one defect: undoing the
    membrane defect of one of them gives a file that loads (so the error is not from elsewhere)."""
    text = (BROKEN / "membrane_not_field.py").read_text().replace('membrane=("x",)', 'membrane=("u",)')
    fixed = tmp_path / "fixed.py"
    fixed.write_text(text)
    neuron = load_neuron_file(f"{fixed}:Broken")
    assert neuron.membrane == ("u",) and neuron.state_fields == ("u", "w")


def test_nan_producing_step_loads_and_produces_nan() -> None:
    """A NaN/diverging neuron is a result, not a load error: its step gives NaN at x = 0 (log(−1))."""
    neuron = load_neuron_file(f"{BROKEN / 'nan_step.py'}:Broken")
    p = neuron.make_params({"tau": torch.tensor([20.0])})
    _, s = neuron.step(TorchOps(), torch.zeros(1, 1), neuron.initial_state(torch.zeros(1, 1)), p)
    assert torch.isnan(s.u).all()


def test_same_fields_in_the_same_order_under_another_class_is_accepted(tmp_path: Path) -> None:
    text = (BROKEN / "reordered_fields.py").read_text()
    text = text.replace("    w: Any\n    u: Any\n", "    u: Any\n    w: Any\n").replace(
        "Swapped(0.9 * s.w + 0.1 * z, u - z * p.theta)", "Swapped(u - z * p.theta, 0.9 * s.w + 0.1 * z)"
    )
    assert "Swapped(u - z" in text
    f = tmp_path / "same_order.py"
    f.write_text(text)
    assert load_neuron_file(f"{f}:Broken").state_fields == ("u", "w")


def test_the_shipped_neurons_pass_the_validation() -> None:
    for spec in (f"{ROOT / 'examples' / 'my_neuron.py'}:QIF", f"{DATA / 'custom_neuron.py'}:Leaky"):
        neuron = load_neuron_file(spec)
        assert neuron.source is not None and neuron.source.sha256 == neuron_file_sha256(neuron.source.path)


@pytest.mark.parametrize(
    ("command", "case"),
    [
        (["train", "--task", "ecg", "--epochs", "1", "--model"], "reordered_fields"),
        (["train", "--task", "ecg", "--epochs", "1", "--model"], "membrane_not_field"),
        (["spectrum", "--neuron"], "default_str"),
        (["spectrum", "--neuron"], "wrong_field_count"),
    ],
)
def test_cli_rejects_broken_file_with_one_line(
    command: list[str], case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = next(c for c in CASES if c["case"] == case)
    rc = main([*command, f"{BROKEN / spec['file']}:{spec['name']}", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out
    assert spec["fragment"] in lines[0] and spec["field"] in lines[0]
    assert not (tmp_path / "out" / "checkpoints").exists()


# --------------------------------------------------------------------------- spec and sha256
MARKER_NEURON = textwrap.dedent('''
    """Writes a marker file next to itself when its top-level code runs."""
    from dataclasses import dataclass
    from pathlib import Path
    from typing import Any, NamedTuple

    from gradscape.models import Neuron, Normal

    marker = Path(__file__).with_suffix(".ran")
    marker.write_text(marker.read_text() + "x" if marker.exists() else "x")


    class S(NamedTuple):
        u: Any


    @dataclass(frozen=True)
    class P:
        tau: Any


    def step(ops, x, s, p):
        u = ops.exp(-1 / ops.abs(p.tau)) * s.u + x
        z = ops.spike(u - 1.0)
        return z, S(u - z)


    M = Neuron(name="marker", step=step, state=S, params=P, init={"tau": Normal(5.0, 1.0)}, membrane=("u",))
''')


def test_spec_parse_round_trip_and_sha256(tmp_path: Path) -> None:
    f = tmp_path / "n.py"
    f.write_text(MARKER_NEURON)
    spec = NeuronFileSpec.parse(f"{f}:M")
    assert (spec.path, spec.name, spec.sha256) == (f, "M", None) and str(spec) == f"{f}:M"
    assert not f.with_suffix(".ran").exists()  # parsing and hashing never run the file
    digest = neuron_file_sha256(f)
    assert digest == hashlib.sha256(f.read_bytes()).hexdigest()
    hashed = spec.hashed()
    assert hashed.sha256 == digest and NeuronFileSpec.from_dict(hashed.to_dict()) == hashed
    assert json.loads(json.dumps(hashed.to_dict())) == {"path": str(f), "name": "M", "sha256": digest}
    assert not f.with_suffix(".ran").exists()
    assert is_neuron_file_spec(f"{f}:M") and is_neuron_file_spec(spec) and not is_neuron_file_spec("brf")


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"path": "a.py"}, "malformed neuron-file record"),
        ({"path": "a.py", "name": 3}, "malformed neuron-file record"),
        ({"path": "a.py", "name": "M", "sha256": "xyz"}, "is not 64 lowercase hex digits"),
        ({"path": "a.txt", "name": "M"}, "must be a .py file"),
        ([1, 2], "malformed neuron-file record"),
    ],
)
def test_malformed_records_are_user_errors(record: Any, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        NeuronFileSpec.from_dict(record)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("n.py", "must look like path/to/file.py:Name"),
        ("n.txt:M", "must be a .py file"),
        ("n.py:1x", "is not a Python name"),
    ],
)
def test_malformed_specs(text: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        NeuronFileSpec.parse(text)


def test_file_named_without_object_says_to_add_it() -> None:
    with pytest.raises(UserError, match=r"my_neuron\.py:Name"):
        get_neuron(str(ROOT / "examples" / "my_neuron.py"))


def test_changed_file_is_refused_naming_both_hashes_without_running_it(tmp_path: Path) -> None:
    f = tmp_path / "n.py"
    f.write_text(MARKER_NEURON)
    recorded = NeuronFileSpec.parse(f"{f}:M").hashed()
    f.write_text(MARKER_NEURON + "\n# edited\n")
    now = neuron_file_sha256(f)
    assert now != recorded.sha256
    for call in (
        lambda: load_neuron_file(f"{f}:M", expected_sha256=recorded.sha256),
        lambda: load_neuron_file(recorded),  # the spec's own recorded hash
        lambda: get_neuron(recorded),
    ):
        with pytest.raises(UserError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and recorded.sha256 in message and now in message
    assert not f.with_suffix(".ran").exists()  # the changed file's code never ran
    # the matching hash loads (and runs the file once), a second load reuses it
    neuron = load_neuron_file(f"{f}:M", expected_sha256=now)
    assert neuron.source == NeuronFileSpec(f, "M", now)
    assert load_neuron_file(NeuronFileSpec(f, "M", now)) is neuron
    assert f.with_suffix(".ran").read_text() == "x"


def test_source_survives_replace_and_network(tmp_path: Path) -> None:
    from gradscape.models import RecurrentNetwork

    f = tmp_path / "n.py"
    f.write_text(MARKER_NEURON)
    net = RecurrentNetwork(f"{f}:M", 2, 3, 2, seed=0)
    assert net.neuron.source is not None and net.neuron.source.sha256 == neuron_file_sha256(f)
    assert net.neuron.replace(description="d").source == net.neuron.source
    # built-in neurons have no file
    assert get_neuron("brf").source is None


def test_a_copy_of_a_file_elsewhere_is_its_own_module(tmp_path: Path) -> None:
    """Same bytes at two paths: the same sha256, two loads (one per path), each validated."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(MARKER_NEURON)
    shutil.copy(a, b)
    na, nb = load_neuron_file(f"{a}:M"), load_neuron_file(f"{b}:M")
    assert na.source.sha256 == nb.source.sha256 and na.source.path != nb.source.path


def test_validate_neuron_checks_a_neuron_built_in_code() -> None:
    from dataclasses import dataclass
    from typing import NamedTuple

    from gradscape.models import Neuron, Normal

    class S(NamedTuple):
        u: Any
        w: Any

    @dataclass(frozen=True)
    class P:
        tau: Any

    def step(ops: Any, x: Any, s: S, p: P) -> tuple[Any, Any]:
        return x, (s.u, s.w)

    n = Neuron("plain", step, S, P, {"tau": Normal(1.0, 0.1)})
    with pytest.raises(UserError, match=r"^neuron 'plain': .*plain tuple"):
        validate_neuron(n)
    with pytest.raises(UserError, match=r"membrane field 'v' is not a field of S"):
        Neuron("m", step, S, P, {"tau": Normal(1.0, 0.1)}, membrane=("v",))
