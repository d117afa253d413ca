import gzip
import shutil

import pytest
import torch

from initstudy.core import data


def test_digits_literal_sizes():
    ds = data.load("digits")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1149, 288, 360)  # 1,797 in all
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10 and ds.in_features == 64
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert abs(ds.x_train.mean().item()) < 1e-5 and abs(ds.x_train.std().item() - 1) < 1e-4


def test_mnist5k_literal_sizes():
    ds = data.load("mnist-5k")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (3500, 500, 1000)
    assert ds.input_shape == (1, 28, 28)
    assert sorted(ds.y_train.unique().tolist()) == list(range(10))


def test_fashion_mnist_local():
    ds = data.load("fashion-mnist", source="local")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (55000, 5000, 10000)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    raw = data._read_idx(data.DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert raw.shape == (10000,)
    assert ds.y_test[:5].tolist() == raw[:5].tolist() == [9, 2, 1, 1, 6]  # the official test split, in its order


def _rows(x):
    return {bytes(r.numpy().tobytes()) for r in x.flatten(1)}


def test_three_splits_disjoint_stratified_and_recorded():
    ds = data.load("fashion-mnist", standardize=False)
    train, val = _rows(ds.x_train), _rows(ds.x_val)
    assert not train & val  # no validation image is trained on
    counts = torch.bincount(ds.y_val)
    assert counts.min() == counts.max() == 500  # stratified: 500 of each class
    assert ds.info["split_seed"] == data.SPLIT_SEED and ds.info["sizes"] == {"train": 55000, "val": 5000, "test": 10000}
    assert ds.info["training_split"] == 55000
    sub = data.load("fashion-mnist", subset=1000, val_subset=300, seed=3)
    assert (len(sub.y_train), len(sub.y_val)) == (1000, 300) and sub.info["training_split"] == 55000
    assert not _rows(sub.x_train) & _rows(data.load("fashion-mnist", val_subset=300, seed=3).x_val)


def test_the_shuffled_test_labels_check_moves_the_test_labels_only(monkeypatch):
    plain = data.load("digits")
    monkeypatch.setenv(data.SHUFFLE_TEST_ENV, "1")
    shuffled = data.load("digits")
    assert torch.equal(plain.x_train, shuffled.x_train) and torch.equal(plain.y_train, shuffled.y_train)
    assert torch.equal(plain.y_val, shuffled.y_val) and torch.equal(plain.x_test, shuffled.x_test)
    assert not torch.equal(plain.y_test, shuffled.y_test)
    assert sorted(plain.y_test.tolist()) == sorted(shuffled.y_test.tolist())  # the same labels, permuted


def test_subsets_resize_and_seed():
    a = data.load("fashion-mnist", subset=500, test_subset=200, seed=1)
    b = data.load("fashion-mnist", subset=500, test_subset=200, seed=1)
    assert (len(a.y_train), len(a.y_test)) == (500, 200)
    assert torch.equal(a.x_train, b.x_train)
    c = data.load("fashion-mnist", subset=500, seed=2)
    assert not torch.equal(a.y_train, c.y_train)
    big = data.load("digits", resize=28, standardize=False)
    assert big.input_shape == (1, 28, 28)
    assert 0.0 <= big.x_train.min().item() and big.x_train.max().item() <= 1.0 + 1e-6


def _torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in data.DEBIAN_FASHION_MNIST.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp_path


def test_torchvision_source_reads_files_laid_out_as_torchvision_expects(tmp_path):
    root = _torchvision_layout(tmp_path)
    tv = data.load("fashion-mnist", source="torchvision", root=root, subset=300, seed=0)
    local = data.load("fashion-mnist", source="local", subset=300, seed=0)
    assert tv.info["origin"].startswith("torchvision:")
    assert torch.equal(tv.x_train, local.x_train) and torch.equal(tv.y_test, local.y_test)


def test_auto_finds_torchvision_layout_without_debian(tmp_path, monkeypatch):
    root = _torchvision_layout(tmp_path)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    ds = data.load("fashion-mnist", source="auto", root=root, subset=100)
    assert ds.info["origin"] == str(root / "FashionMNIST" / "raw")


def test_missing_data_names_both_ways_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("fashion-mnist", source="local", root=tmp_path)
    message = str(err.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "torchvision" in message
    assert data.available("fashion-mnist", root=tmp_path) is not None
    with pytest.raises(data.DataNotFoundError, match="torchvision"):
        data.load("cifar10", source="auto", root=tmp_path)


def test_bad_names():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="unknown source"):
        data.load("digits", source="web")


def test_batches_are_seeded_and_cover_an_epoch():
    x = torch.arange(10.0).unsqueeze(1)
    y = torch.arange(10)
    a = data.batches(x, y, 3, torch.Generator().manual_seed(0))
    b = data.batches(x, y, 3, torch.Generator().manual_seed(0))
    first = [next(a)[1] for _ in range(3)]
    assert all(torch.equal(u, next(b)[1]) for u in first)
    seen = torch.cat(first)
    assert len(seen.unique()) == 9  # one epoch of 3 full batches, the 10th example dropped
    with pytest.raises(ValueError):
        next(data.batches(x, y, 11, torch.Generator()))


@pytest.mark.parametrize("name", ["digits", "mnist-5k", "fashion-mnist"])
def test_split_sizes_are_the_sizes_load_makes(name):
    """The planning table (``split_sizes``: no data read) against the splits ``load`` makes."""
    ds = data.load(name, source="local")
    assert data.split_sizes(name) == {"train": len(ds.y_train), "val": len(ds.y_val), "test": len(ds.y_test)}
    assert tuple(ds.input_shape) == data.SIZES[name][2]
