"""SHD loader on small synthetic files in the official HDF5 layout, both binnings checked by hand."""

import gzip
import shutil

import h5py
import numpy as np
import pytest
import torch

from gradscape.errors import UserError
from gradscape.models.datasets import batches, load_task, split_indices
from gradscape.models.datasets.shd import read_shd

# Sample 0's spikes, stored as float16 seconds like the official files. Their float16 values:
# 0, 0.0010004, 0.0040016 (= float16(0.004), the reference's edge e_1), 0.0045013, 0.5 (exactly),
# 0.50098, 0.99658, 0.99902, 1.2002.
HAND_TIMES = [0.0, 0.001, 0.004, 0.0045, 0.5, 0.501, 0.9965, 0.999, 1.2]
HAND_UNITS = [5, 0, 10, 699, 2, 3, 7, 8, 9]
# standard: bin ⌊250 s⌋ for s < 1 s, channel = unit
HAND_STANDARD = {(0, 5), (0, 0), (1, 10), (1, 699), (125, 2), (125, 3), (249, 7), (249, 8)}
# reference: smallest i with s <= float16(i · 0.004); dropped after 0.996 s and for unit 0; channel 700 - u.
# 0 → bin 0; 0.0040016 == e_1 → bin 1; 0.0045 → bin 2; 0.5 == e_125 → bin 125; 0.50098 → bin 126.
HAND_REFERENCE = {(0, 695), (1, 690), (2, 1), (125, 698), (126, 697)}


def _write_shd(path, times: list[np.ndarray], units: list[np.ndarray], labels: list[int]) -> None:
    """A file in the official layout: /spikes/times, /spikes/units (variable-length), /labels."""
    with h5py.File(path, "w") as f:
        g = f.create_group("spikes")
        t = g.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float16))
        u = g.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ti, ui) in enumerate(zip(times, units, strict=True)):
            t[i], u[i] = ti.astype(np.float16), ui.astype(np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))


def _random_samples(n: int, seed: int) -> tuple[list, list, list]:
    rng = np.random.default_rng(seed)
    times, units = [], []
    for _ in range(n):
        k = int(rng.integers(50, 400))
        times.append(rng.uniform(0, 1.1, k))
        units.append(rng.integers(0, 700, k))
    return times, units, [i % 20 for i in range(n)]


@pytest.fixture(scope="module")
def shd_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shd")
    times, units, labels = _random_samples(30, seed=0)
    times[0], units[0] = np.array(HAND_TIMES), np.array(HAND_UNITS)
    _write_shd(d / "shd_train.h5", times, units, labels)
    t2, u2, l2 = _random_samples(7, seed=1)
    _write_shd(d / "shd_test.h5", t2, u2, l2)
    return d


def _active(raster: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(p) for p in raster.nonzero().tolist()}


def test_hand_checked_bins_both_binnings(shd_dir):
    x, y = read_shd(shd_dir / "shd_train.h5", "standard")
    assert x.shape == (30, 250, 700) and x.dtype == torch.uint8 and y[:3].tolist() == [0, 1, 2]
    assert _active(x[0]) == HAND_STANDARD
    xr, _ = read_shd(shd_dir / "shd_train.h5", "reference")
    assert _active(xr[0]) == HAND_REFERENCE


def _reference_oracle(times: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The reference's readout, step by step: at step i take the not-yet-used spikes with s <= i·Δ
    (compared in float16), drop unit 0, set channel 700 - u."""
    out = np.zeros((250, 700), dtype=np.uint8)
    remaining = np.ones(len(times), dtype=bool)
    for i in range(250):
        now = remaining & (times <= np.float16(i * 0.004))
        u = units[now]
        out[i, 700 - u[u > 0]] = 1
        remaining &= ~now
    return out


def test_random_samples_against_independent_binnings(shd_dir):
    with h5py.File(shd_dir / "shd_train.h5", "r") as f:
        times, units = f["spikes/times"][:], f["spikes/units"][:]
    xs, _ = read_shd(shd_dir / "shd_train.h5", "standard")
    xr, _ = read_shd(shd_dir / "shd_train.h5", "reference")
    for n in (1, 2, 17):
        t, u = times[n].astype(np.float64), units[n].astype(np.int64)
        keep = t < 1.0  # histogram2d's last bin is closed; the raster stops before 1 s
        counts, _, _ = np.histogram2d(t[keep], u[keep], bins=[np.arange(251) / 250, np.arange(701)])
        assert np.array_equal(xs[n].numpy(), (counts > 0).astype(np.uint8))
        assert np.array_equal(xr[n].numpy(), _reference_oracle(times[n], units[n].astype(np.int64)))
        assert xr[n, 0].sum() == 0 and xr[n, :, 0].sum() == 0  # bin 0 and channel 0 silent


def test_load_task_split_and_batches(shd_dir):
    d = load_task("shd", data_dir=shd_dir, seed=5)
    assert (len(d.train), len(d.val), len(d.test)) == (27, 3, 7)  # the 9:1 rule, as 7,341/815
    assert (d.seq_len, d.input_size, d.num_classes, d.per_step_targets) == (250, 700, 20, False)
    tr, va = split_indices(30, (27, 3), 5)
    assert torch.equal(d.train.indices, tr) and torch.equal(d.val.indices, va)
    assert (d.train.source, d.test.source) == ("shd-train", "shd-test")
    assert d.info["binning"] == "standard" and d.info["split_sizes"]["val"] == 3
    x_all, y_all = read_shd(shd_dir / "shd_train.h5", "standard")
    assert torch.equal(d.val.inputs, x_all[va]) and torch.equal(d.val.targets, y_all[va])
    x, y = next(batches(d.train, 8, shuffle=True, seed=0))
    assert x.shape == (250, 8, 700) and x.dtype == torch.float32 and y.shape == (8,)
    r = load_task("shd", data_dir=shd_dir, seed=5, shd_binning="reference")
    assert r.info["binning"] == "reference" and torch.equal(r.val.indices, va)


def test_gzipped_files_are_decompressed(shd_dir, tmp_path):
    (tmp_path / "shd").mkdir()
    for name in ("shd_train.h5", "shd_test.h5"):
        with open(shd_dir / name, "rb") as src, gzip.open(tmp_path / "shd" / (name + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    d = load_task("shd", data_dir=tmp_path, seed=5)
    assert (tmp_path / "shd" / "shd_train.h5").is_file() and len(d.test) == 7


def test_missing_or_malformed_shd_is_a_user_error(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=r"zenkelab\.org"):
        load_task("shd")
    with pytest.raises(UserError, match=r"shd_train\.h5 not found"):
        load_task("shd", data_dir=tmp_path)
    with pytest.raises(UserError, match="binning"):
        load_task("shd", data_dir=tmp_path, shd_binning="1ms")
    with h5py.File(tmp_path / "shd_train.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(3, np.uint8))
    (tmp_path / "shd_test.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="SHD file"):
        load_task("shd", data_dir=tmp_path)

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(UserError, match="could not download SHD"):
        load_task("shd", data_dir=tmp_path / "empty", download=True)
