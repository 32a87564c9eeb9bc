"""S-MNIST / PS-MNIST: the bundled test images, seeded splits, permutations and full-MNIST IDX folders."""

import gzip
import json

import numpy as np
import pytest
import torch

from gradscape.errors import UserError
from gradscape.models.datasets import batches, load_task, split_indices
from gradscape.models.datasets.mnist import MNIST_FILES, load_permutation, read_idx
from gradscape.models.datasets.splits import bundled_file, train_val_sizes


def _raw() -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(bundled_file("mnist", "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(bundled_file("mnist", "t10k-labels-idx1-ubyte.gz"))
    return images, labels


def test_bundled_idx_files_are_canonical_mnist_test_set():
    images, labels = _raw()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_split_sizes_disjoint_seeded():
    d = load_task("smnist", seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (8000, 1000, 1000)
    assert d.info["bundled_split"] is True and "8000/1000/1000" in d.info["note"]
    assert {d.train.source, d.val.source, d.test.source} == {"mnist-test"}
    parts = [set(s.indices.tolist()) for s in (d.train, d.val, d.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(range(10000))
    again, other = load_task("smnist", seed=0), load_task("smnist", seed=1)
    assert torch.equal(again.test.indices, d.test.indices)
    assert not torch.equal(other.test.indices, d.test.indices)
    json.dumps(d.info)  # JSON-able


def test_smnist_pixels_row_major_in_unit_interval():
    images, labels = _raw()
    d = load_task("smnist", seed=2)
    assert d.train.inputs.shape == (8000, 784, 1) and d.train.inputs.dtype == torch.float32
    assert (d.seq_len, d.input_size, d.num_classes, d.per_step_targets) == (784, 1, 10, False)
    assert d.permutation is None
    x = d.test.inputs
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    n, i = 5, int(d.test.indices[5])
    # step t = 28 r + c reads pixel (r, c)
    for r, c in [(0, 0), (14, 9), (20, 15), (27, 27)]:
        assert float(x[n, 28 * r + c, 0]) == pytest.approx(images[i, r, c] / 255.0)
    assert torch.equal(d.test.targets, torch.from_numpy(labels[d.test.indices.numpy()].astype(np.int64)))


def test_psmnist_step_t_reads_pixel_perm_t():
    images, _ = _raw()
    d = load_task("psmnist", seed=4, permutation=9)
    perm = d.permutation
    assert torch.equal(perm, torch.randperm(784, generator=torch.Generator().manual_seed(9)))
    assert d.info["permutation"] == perm.tolist() and d.info["permutation_source"] == {"seed": 9}
    # without a permutation, every split seed reads the pixels through the same fixed π (seed 0)
    a, b = load_task("psmnist", seed=0), load_task("psmnist", seed=1)
    assert torch.equal(a.permutation, b.permutation) and a.info["permutation_source"] == {"seed": 0}
    assert not torch.equal(a.permutation, perm)
    flat = images.reshape(10000, 784)
    for n in (0, 7, 999):
        i = int(d.val.indices[n])
        expected = flat[i][perm.numpy()] / 255.0
        np.testing.assert_allclose(d.val.inputs[n, :, 0].numpy(), expected, rtol=0, atol=1e-7)
    # same split as S-MNIST with the same seed; only the reading order differs
    s = load_task("smnist", seed=4)
    assert torch.equal(s.val.indices, d.val.indices)
    assert torch.equal(s.val.inputs[:, perm], d.val.inputs)


@pytest.mark.parametrize("kind", ["pt", "npy", "txt"])
def test_permutation_file_round_trips(tmp_path, kind):
    perm = torch.randperm(784, generator=torch.Generator().manual_seed(11))
    path = tmp_path / f"perm.{kind}"
    if kind == "pt":  # like the reference's saved *_permuted_idx.pt
        torch.save(perm, path)
    elif kind == "npy":
        np.save(path, perm.numpy())
    else:
        path.write_text("\n".join(map(str, perm.tolist())))
    d = load_task("psmnist", permutation=path, seed=0)
    assert torch.equal(d.permutation, perm)
    assert d.info["permutation"] == perm.tolist()
    assert d.info["permutation_source"]["file"]["path"] == str(path.resolve())
    assert torch.equal(load_permutation(str(path))[0], perm)


def test_bad_permutation_is_a_user_error(tmp_path):
    bad = {
        "short.pt": torch.arange(783),
        "dup.pt": torch.cat([torch.arange(783), torch.tensor([0])]),
        "range.pt": torch.arange(1, 785),
        "2d.pt": torch.arange(784).reshape(28, 28),
    }
    for name, t in bad.items():
        torch.save(t, tmp_path / name)
        with pytest.raises(UserError):
            load_task("psmnist", permutation=tmp_path / name)
    with pytest.raises(UserError, match="not found"):
        load_task("psmnist", permutation=tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError):
        load_task("psmnist", permutation=tmp_path / "junk.pt")
    with pytest.raises(UserError, match="psmnist only"):
        load_task("smnist", permutation=3)


def test_split_indices_seeded_disjoint_sorted():
    assert train_val_sizes(60000) == (54000, 6000)
    assert train_val_sizes(8156) == (7341, 815)
    assert train_val_sizes(618) == (557, 61)
    a = split_indices(50, train_val_sizes(50), seed=7)
    assert [len(p) for p in a] == [45, 5]
    assert all(torch.equal(p, p.sort().values) for p in a)
    assert sorted(torch.cat(a).tolist()) == list(range(50))
    # the parts are consecutive pieces of randperm(n) from Generator(seed)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[1], perm[45:].sort().values)
    assert all(torch.equal(p, q) for p, q in zip(a, split_indices(50, (45, 5), 7), strict=True))
    assert not torch.equal(a[1], split_indices(50, (45, 5), 8)[1])
    with pytest.raises(UserError):
        split_indices(10, (8, 3), 0)


def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(folder, n_train: int = 50, n_test: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for k, a in arrays.items():
        _write_idx(folder / MNIST_FILES[k], a, compress=k.startswith("train"))  # mixed gz / plain
    return arrays


def test_full_mnist_from_data_dir(tmp_path):
    arrays = _fake_mnist(tmp_path / "MNIST" / "raw")  # torchvision's layout is found too
    d = load_task("smnist", data_dir=tmp_path, seed=3)
    assert (len(d.train), len(d.val), len(d.test)) == (45, 5, 12)  # the 9:1 rule, as 54,000/6,000
    assert d.info["bundled_split"] is False
    assert (d.train.source, d.val.source, d.test.source) == ("mnist-train", "mnist-train", "mnist-test")
    tr_idx, va_idx = split_indices(50, (45, 5), 3)
    assert torch.equal(d.train.indices, tr_idx) and torch.equal(d.val.indices, va_idx)
    assert d.test.indices.tolist() == list(range(12))
    flat = arrays["train_images"].reshape(50, 784) / 255.0
    np.testing.assert_allclose(d.val.inputs[:, :, 0].numpy(), flat[va_idx.numpy()], atol=1e-7)
    assert d.val.targets.tolist() == arrays["train_labels"][va_idx.numpy()].tolist()
    assert d.test.targets.tolist() == arrays["test_labels"].tolist()
    p = load_task("psmnist", data_dir=tmp_path, seed=3, permutation=5)
    assert torch.equal(p.test.inputs[:, :, 0], d.test.inputs[:, p.permutation, 0])


def test_missing_or_broken_mnist_is_a_user_error(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="--download"):
        load_task("smnist", data_dir=tmp_path)
    _fake_mnist(tmp_path / "bad")
    (tmp_path / "bad" / MNIST_FILES["test_labels"]).write_bytes(b"\x00\x00\x0c\x01garbage")
    with pytest.raises(UserError, match="IDX"):
        load_task("smnist", data_dir=tmp_path / "bad")

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(UserError, match="could not download MNIST"):
        load_task("smnist", data_dir=tmp_path / "empty", download=True)
    assert not list((tmp_path / "empty").glob("*.gz"))  # nothing half-written
    with pytest.raises(UserError, match="unknown task"):
        load_task("cifar")


def test_subset_and_batches_label_per_sequence():
    d = load_task("smnist", seed=0)
    sub = d.val.subset(10, seed=1)
    assert len(sub) == 10 and set(sub.indices.tolist()) <= set(d.val.indices.tolist())
    assert torch.equal(sub.indices, d.val.subset(10, seed=1).indices)
    pos = [d.val.indices.tolist().index(i) for i in sub.indices.tolist()]
    assert torch.equal(sub.inputs, d.val.inputs[pos])
    assert d.val.subset(5000, seed=0) is d.val
    got = list(batches(sub, 4))
    assert [tuple(x.shape) for x, _ in got] == [(784, 4, 1), (784, 4, 1), (784, 2, 1)]
    assert [tuple(y.shape) for _, y in got] == [(4,), (4,), (2,)]
    assert torch.equal(torch.cat([y for _, y in got]), sub.targets)
