"""QTDB ECG loader: shapes, the seeded 557/61/141 split and the unlabelled-step conventions."""

import numpy as np
import scipy.io
import torch

from gradscape.models.datasets import batches, load_task
from gradscape.models.datasets.splits import bundled_file


def _raw_test_labels() -> tuple[np.ndarray, np.ndarray]:
    """Independent read of QTDB_test: (x (141, 1300, 4), one-hot y (141, 1300, 6))."""
    mat = scipy.io.loadmat(bundled_file("ecg", "QTDB_test.mat"))
    return mat["x"][:, :1300], mat["y"][:, :1300]


def test_shapes_and_split():
    d = load_task("ecg", seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (557, 61, 141)
    assert (d.seq_len, d.input_size, d.num_classes, d.per_step_targets) == (1300, 4, 6, True)
    assert d.train.inputs.shape == (557, 1300, 4) and d.train.inputs.dtype == torch.float32
    assert d.test.targets.shape == (141, 1300) and d.test.targets.dtype == torch.int64
    assert d.train.source == d.val.source == "qtdb-train" and d.test.source == "qtdb-test"
    tr, va = set(d.train.indices.tolist()), set(d.val.indices.tolist())
    assert not tr & va and tr | va == set(range(618))
    assert d.test.indices.tolist() == list(range(141))
    assert d.info["split_sizes"] == {"train": 557, "val": 61, "test": 141}
    same, other = load_task("ecg", seed=0), load_task("ecg", seed=1)
    assert torch.equal(same.val.indices, d.val.indices)
    assert not torch.equal(other.val.indices, d.val.indices)


def test_inputs_equal_raw_file_without_padding_step():
    x, _ = _raw_test_labels()
    d = load_task("ecg")
    assert torch.equal(d.test.inputs, torch.from_numpy(x.astype(np.float32)))


def test_unlabelled_steps_class0_by_default_and_minus1_when_excluded():
    _, y = _raw_test_labels()
    empty = ~y.any(axis=2)
    # The data README: about 10 % of test steps carry no label.
    assert 0.09 < empty.mean() < 0.11
    default = load_task("ecg").test.targets.numpy()
    excluded = load_task("ecg", ecg_exclude_unlabelled=True).test.targets.numpy()
    assert (default[empty] == 0).all()
    assert (excluded[empty] == -1).all()
    labelled = ~empty
    truth = np.argmax(y, axis=2)
    assert (default[labelled] == truth[labelled]).all() and (excluded[labelled] == truth[labelled]).all()
    # The majority class (ST, class 4) is the published 30.5 % chance level.
    share = np.bincount(default.ravel(), minlength=6) / default.size
    assert share.argmax() == 4 and abs(share[4] - 0.305) < 0.001


def test_batches_time_major_with_per_step_targets():
    d = load_task("ecg")
    xs, ys = zip(*batches(d.val, 16, shuffle=True, seed=3), strict=True)
    assert [x.shape[1] for x in xs] == [16, 16, 16, 13]  # last partial batch kept
    assert xs[0].shape == (1300, 16, 4) and ys[0].shape == (1300, 16)
    x = torch.cat(xs, dim=1)
    y = torch.cat(ys, dim=1)
    order = torch.randperm(61, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, d.val.inputs[order].transpose(0, 1))
    assert torch.equal(y, d.val.targets[order].T)
