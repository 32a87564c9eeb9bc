"""Settings profiles of ``gradscape figures``: ``smoke`` (tests), ``quick`` and ``cpu`` (a 2-core CPU),
``paper`` (GPUs).

A profile says which runs each figure needs (tasks × models × seeds), the :class:`TrainConfig`
overrides that shrink them, and the analysis settings (landscape grid, gradient-flow samples). The
``paper`` profile overrides nothing: it is :func:`gradscape.models.training_config.default_config`,
the BRF paper's per-task settings (full data, 256 hidden on S-/PS-MNIST, 300/400/20 epochs, 5 seeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gradscape.errors import UserError
from gradscape.figures.fig1 import Fig1Settings

__all__ = ["Profile", "PROFILES", "PROFILE_NAMES", "REFERENCE_PROFILES", "get_profile", "FIG4_VARIANTS"]

#: Fig. 4 top: vanilla RF, each addition alone, each pair, all three (= BRF).
FIG4_VARIANTS = ("rf", "rf+rp", "rf+sr", "rf+db", "rf+rp+sr", "rf+rp+db", "rf+sr+db", "brf")


@dataclass(frozen=True)
class LandscapeSettings:
    models: tuple[str, ...] = ("rf", "brf", "alif")
    task: str = "smnist"
    stop_at_val_acc: float | None = 50.0
    max_epochs: int | None = None  # None: the task's default epochs (stopping at the target)
    grid: int = 50  # points per axis; with ``span`` [−span, span]²
    span: float = 1.0
    samples: int | None = None  # None: the whole test split
    normalization: str = "filter-blocks"
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class FlowSettings:
    models: tuple[str, ...] = ("brf", "rf", "alif")
    task: str = "smnist"
    samples: int = 64  # test samples whose trajectories are analysed
    grad_samples: int = 16  # samples for the gradient norm against steps back


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    #: per task: TrainConfig overrides for every model (the shrunken settings)
    train: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: per model family ("rf", "alif", "lstm") and task: extra overrides
    family_train: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    fig3_tasks: tuple[str, ...] = ("smnist", "psmnist", "ecg", "shd")
    fig3_models: tuple[str, ...] = ("brf", "alif")
    fig3_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    fig4_variants: tuple[str, ...] = FIG4_VARIANTS
    fig4_models: tuple[str, ...] = ("brf", "rf", "lstm", "alif")
    fig4_tasks: tuple[str, ...] = ("smnist", "psmnist")
    fig4_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    fig1: Fig1Settings = field(default_factory=Fig1Settings)
    fig5: LandscapeSettings = field(default_factory=LandscapeSettings)
    fig6: FlowSettings = field(default_factory=FlowSettings)
    compile: bool = False
    #: torch intra-op threads while the profile runs (None: leave torch's default). Tiny smoke
    #: tensors only pay thread hand-off costs, so smoke runs single-threaded.
    threads: int | None = None
    #: runs trained side by side in worker processes on a CPU (one process per core pays off: the
    #: small recurrent steps are interpreter-bound, not FLOP-bound); GPUs and torchrun use 1.
    jobs: int = 1

    def overrides(self, model: str, task: str) -> dict[str, Any]:
        """The TrainConfig overrides this profile applies to ``model`` on ``task``."""
        from gradscape.models.training_config import model_family

        out = dict(self.train.get(task, {}))
        out.update(self.family_train.get((model_family(model), task), {}))
        return out

    def settings_text(self, task: str) -> str:
        o = self.train.get(task, {})
        if not o:
            return "the paper's settings"
        return ", ".join(f"{k}={v}" for k, v in o.items())


_SMOKE_MNIST = dict(epochs=1, hidden_size=8, batch_size=8, train_samples=8, eval_samples=8)
_QUICK_MNIST = dict(epochs=10, hidden_size=64, batch_size=64, train_samples=1024, eval_samples=256)

#: The ``cpu`` profile's epochs, fixed before its first run from measured mini-batch times (1 thread,
#: 2-core CPU, S-MNIST shape B 256, T 784, H 256, fresh weights): BRF 1.25 s, RF 1.6 s, ALIF (TBPTT 50)
#: 1.5 s; 32 mini-batches per epoch. 18 runs (14 of them S-/PS-MNIST) on two workers fit 90 minutes
#: at 8 epochs with room for two workers sharing memory bandwidth.
_CPU_EPOCHS = 8
_CPU_ECG_EPOCHS = 10

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="tiny settings that run every figure's code path in about a minute (tests)",
        train={
            "smnist": _SMOKE_MNIST,
            "psmnist": _SMOKE_MNIST,
            "ecg": dict(epochs=1, batch_size=8, train_samples=8, eval_samples=8, hidden_size=8),
            "shd": dict(epochs=1, batch_size=8, train_samples=8, eval_samples=8, hidden_size=8),
        },
        # Every code path, fewest runs: PS-MNIST and the paired variants run in Fig. 4 only.
        fig3_tasks=("smnist", "ecg", "shd"),
        fig3_seeds=(0, 1),
        fig4_variants=("rf", "rf+rp", "rf+sr", "rf+db", "brf"),
        fig4_seeds=(0,),
        threads=1,
        fig1=Fig1Settings(steps=400, map_omega=25, map_b=26),
        fig5=LandscapeSettings(stop_at_val_acc=None, grid=5, samples=8, seeds=(0, 1)),
        fig6=FlowSettings(samples=4, grad_samples=2),
    ),
    "quick": Profile(
        name="quick",
        description=(
            "bundled real data (ECG; S-/PS-MNIST on the seeded 8,000/1,000/1,000 split of the bundled "
            "MNIST test set), shrunk to run on a 2-core CPU in about 45 minutes"
        ),
        train={
            "smnist": _QUICK_MNIST,
            "psmnist": _QUICK_MNIST,
            "ecg": dict(epochs=5, eval_samples=141),
            "shd": dict(epochs=3, train_samples=1024, eval_samples=256),
        },
        # ALIF's paper learning rate (0.001) is tuned for 300 full epochs; it is kept here on purpose.
        fig3_seeds=(0, 1),
        fig4_seeds=(0,),
        fig5=LandscapeSettings(stop_at_val_acc=50.0, max_epochs=10, grid=9, samples=128),
        fig6=FlowSettings(samples=32, grad_samples=8),
        # Measured on the 2-core machine: one BRF forward (B 64, H 48, T 784) takes 0.28 s of CPU with
        # one intra-op thread and 7.8 s with two (thread hand-offs on small tensors), so: one.
        threads=1,
        jobs=2,
    ),
    "cpu": Profile(
        name="cpu",
        description=(
            "the paper's S-/PS-MNIST network (256 hidden, batch 256, the paper's learning rates) on "
            f"the seeded 8,000/1,000/1,000 split of the bundled MNIST test set for {_CPU_EPOCHS} epochs, "
            f"ECG with the paper's network for {_CPU_ECG_EPOCHS} epochs; at most 90 minutes on a 2-core CPU"
        ),
        # Only the epochs shrink (issue 10: not the width); train/eval sizes are the whole bundled split.
        train={
            "smnist": dict(epochs=_CPU_EPOCHS),
            "psmnist": dict(epochs=_CPU_EPOCHS),
            "ecg": dict(epochs=_CPU_ECG_EPOCHS),
        },
        # The bundled data only: SHD is not bundled (its panels need --data-dir and are not in the budget).
        fig3_tasks=("smnist", "psmnist", "ecg"),
        fig3_seeds=(0, 1),
        # Fig. 4 top: each addition alone against RF and BRF (the three pairs would be three more runs).
        fig4_variants=("rf", "rf+rp", "rf+sr", "rf+db", "brf"),
        # No LSTM: its dense 4H-gate step took 7 s per S-MNIST mini-batch (BRF 1.25 s), 4 min per epoch.
        fig4_models=("brf", "rf", "alif"),
        fig4_seeds=(0,),
        # Landscapes and gradient flow of the trained Fig. 3/4 runs themselves (no extra runs stopped at
        # 50 % validation accuracy), two seeds so the verdicts have a spread.
        fig5=LandscapeSettings(stop_at_val_acc=None, max_epochs=None, grid=11, samples=128, seeds=(0, 1)),
        fig6=FlowSettings(samples=32, grad_samples=8),
        threads=1,
        jobs=2,
    ),
    "paper": Profile(
        name="paper",
        description=(
            "the BRF paper's settings (full MNIST/SHD data, 5 seeds, 256 hidden, full epochs); for GPUs"
        ),
        fig5=LandscapeSettings(stop_at_val_acc=50.0, grid=50, samples=None, seeds=(0, 1, 2)),
        fig6=FlowSettings(samples=256, grad_samples=64),
        compile=True,
    ),
}


def _reference_profiles() -> dict[str, Any]:
    from gradscape.figures.reference import REFERENCE, REFERENCE_SMOKE

    return {"reference": REFERENCE, "reference-smoke": REFERENCE_SMOKE}


#: profiles that train nothing: the authors' released models and curves (``figures.reference``)
REFERENCE_PROFILES = _reference_profiles()
REFERENCE_DESCRIPTION = (
    "the BRF authors' released S-/PS-MNIST models and ECG/SHD learning curves, nothing trained "
    "(about 30 minutes on a 2-core CPU; reference-smoke: its code paths on tiny settings)"
)
#: every name ``--profile`` takes
PROFILE_NAMES = (*PROFILES, *REFERENCE_PROFILES)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return PROFILES[name]
