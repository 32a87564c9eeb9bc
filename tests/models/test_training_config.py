"""Per-task defaults (issue 2's table) and the flag > TOML > default precedence."""

import pytest

from gradscape.cli import build_parser
from gradscape.commands.train import resolve_config
from gradscape.errors import UserError
from gradscape.models.evaluation import task_objective
from gradscape.models.training import default_config

B01 = "U(0.1,1)"
TM5, TA200, TH = "N(20,5)", "N(200,50)", "N(20,0.5)"
RF_TABLE = {
    "smnist": (0.1, 256, 300, {"omega": "U(15,50)", "b_offset": B01}, "N(20,5)", 256, 1.0, "last"),
    "psmnist": (0.1, 256, 300, {"omega": "U(15,85)", "b_offset": B01}, "N(20,1)", 256, 1.0, "per_step"),
    "ecg": (0.1, 16, 400, {"omega": "U(3,5)", "b_offset": B01}, "N(20,1)", 36, None, "per_step"),
    "shd": (0.075, 32, 20, {"omega": "U(5,10)", "b_offset": "U(2,3)"}, "N(20,5)", 128, None, "per_step"),
}  # fmt: skip
ALIF_TABLE = {
    "smnist": (0.001, 256, 300, {"tau_mem": TM5, "tau_adp": TA200}, TM5, 256, "last", 0, 50),
    "psmnist": (0.001, 256, 300, {"tau_mem": TM5, "tau_adp": TA200}, TM5, 256, "per_step", 0, 50),
    "ecg": (0.05, 64, 400, {"tau_mem": TH, "tau_adp": "N(7,0.2)"}, TH, 36, "per_step", 10, None),
    "shd": (0.075, 32, 20, {"tau_mem": TM5, "tau_adp": "N(150,10)"}, TM5, 128, "per_step", 10, None),
}  # fmt: skip


@pytest.mark.parametrize("model", ["brf", "rf", "rf+sr", "rf+db+rp"])
@pytest.mark.parametrize("task", list(RF_TABLE))
def test_rf_family_defaults(model, task):
    lr, batch, epochs, init, tau_out, hidden, clip, mode = RF_TABLE[task]
    c = default_config(model, task)
    assert (c.lr, c.batch_size, c.epochs, c.init, c.tau_out, c.hidden_size, c.clip, c.loss_mode) == (
        lr, batch, epochs, init, tau_out, hidden, clip, mode,
    )  # fmt: skip
    assert c.sub_seq_length == 0 and c.tbptt is None and c.reduction == "sum"


@pytest.mark.parametrize("task", list(ALIF_TABLE))
def test_alif_defaults(task):
    lr, batch, epochs, init, tau_out, hidden, mode, sub, tbptt = ALIF_TABLE[task]
    c = default_config("alif", task)
    assert (c.lr, c.batch_size, c.epochs, c.init, c.tau_out, c.hidden_size, c.loss_mode) == (
        lr, batch, epochs, init, tau_out, hidden, mode,
    )  # fmt: skip
    assert (c.sub_seq_length, c.tbptt, c.tbptt_mode, c.clip) == (sub, tbptt, "reference", None)
    assert task_objective(task, "alif")["sub_seq_length"] == sub


def test_lif_lstm_defaults_are_documented_choices():
    lif = default_config("lif", "ecg")
    assert lif.init == {"tau_mem": "N(20,0.5)"} and lif.lr == 0.05 and lif.tbptt is None
    lstm = default_config("lstm", "smnist")
    assert lstm.lr == 0.001 and lstm.clip == 1.0 and lstm.init == {}


def test_precedence_flags_over_toml_over_defaults(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('model = "brf"\ntask = "ecg"\nlr = 0.05\nbatch-size = 8\n[init]\nomega = "U(4,6)"\n')
    args = build_parser().parse_args(
        ["train", "--config", str(toml), "--out", str(tmp_path / "r"), "--lr", "0.02", "--clip", "0"]
    )
    cfg, seeds = resolve_config(args)
    assert cfg.lr == 0.02  # flag beats TOML
    assert cfg.batch_size == 8  # TOML beats default
    assert cfg.init == {"omega": "U(4,6)", "b_offset": B01}
    assert cfg.epochs == 400 and cfg.clip is None and seeds is None


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError):
        default_config("nosuchneuron", "ecg")
    with pytest.raises(UserError):
        default_config("brf", "cifar")
    with pytest.raises(UserError):
        default_config("brf", "ecg", tbptt_mode="sideways")
