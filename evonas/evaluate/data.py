"""Datasets for fitness evaluation, loaded once into memory as tensors.

``load_dataset(spec, root, seed, val_fraction, max_train)`` returns a ``Data``:
float32 NCHW images normalised per channel with the *training* split's mean/std,
int64 labels. The validation split is carved out of the training data by
``seed``, stratified by class; the test split is never used for fitness.

Specs:

* ``digits``: scikit-learn's bundled 8x8 digits (1x8x8, 10 classes), offline;
  no official test split, so 20% is held out as test (stratified, by ``seed``).
* ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn``: torchvision,
  downloaded into ``root`` when absent (a ``ConfigError`` naming the dataset and
  root when that fails, e.g. offline).
* ``npz:PATH``: arrays ``x_train, y_train, x_test, y_test``, or ``x, y`` (test
  split by ``seed``). Images NHW, NHWC (C in 1..4) or NCHW; uint8 (scaled by 1/255)
  or float.
* ``package.module:function``: plug in any torch ``Dataset``. ``function(root)``
  returns ``(train_dataset, test_dataset)``; items are ``(image, label)`` with the
  image a CHW tensor, an HWC/HW array or a PIL image. The datasets are read
  once and kept in memory, so they must fit (the fast path trains from tensors)::

      # mydata.py
      def load(root):
          tf = torchvision.transforms.ToTensor()
          return (ImageFolder(f"{root}/train", tf), ImageFolder(f"{root}/test", tf))

      evonas ... --dataset mydata:load --data-root /data/pets
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import ConfigError

TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10",
               "cifar100": "CIFAR100", "svhn": "SVHN"}
TEST_FRACTION = 0.2  # held-out test share for sources without an official test split
MAX_CLASSES = 100_000  # a head wider than this is a stray label, not a data set


@dataclass
class Data:
    """In-memory splits. ``x_*``: float32 (N, C, H, W), normalised; ``y_*``: int64
    (N,) in 0..num_classes-1; ``input_shape`` = (C, H, W)."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, int, int]
    num_classes: int

    def to(self, device: str | torch.device) -> "Data":
        """A copy with every tensor on ``device`` (done once per worker)."""
        t = {k: getattr(self, k).to(device) for k in
             ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Data(self.name, **t, input_shape=self.input_shape, num_classes=self.num_classes)


@dataclass(frozen=True)
class DataSpec:
    """What a worker needs to load the data itself (sent instead of tensors).
    ``val_fraction`` in (0, 1); ``max_train``: cap on training samples (None: all)."""
    spec: str = "digits"
    root: str = "data"
    seed: int = 0
    val_fraction: float = 0.1
    max_train: Optional[int] = None

    def load(self) -> Data:
        return load_dataset(self.spec, self.root, self.seed, self.val_fraction, self.max_train)


def load_dataset(spec: str = "digits", root: str = "data", seed: int = 0,
                 val_fraction: float = 0.1, max_train: Optional[int] = None) -> Data:
    """Load ``spec`` (see the module docstring), split off a stratified validation
    set of ``val_fraction`` of the training data by ``seed``, optionally keep a
    stratified subset of at most ``max_train`` training samples, normalise.
    The labels must mean something (``check_classes``) and every class must have
    an example in both the training and the validation split."""
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError("dataset", "val_fraction", val_fraction, "must be in (0, 1)")
    if max_train is not None and (not isinstance(max_train, int) or max_train < 1):
        raise ConfigError("dataset", "max_train", max_train, "must be a positive integer or None")
    if not isinstance(spec, str) or not spec:
        raise ConfigError("dataset", "dataset", spec, "must be a non-empty string")
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_te, y_te, name = _source(spec, root, rng)
    num_classes = check_classes(y_tr, y_te, spec)
    tr_idx, val_idx = stratified_split(y_tr, val_fraction, rng)
    _check_split(y_tr, tr_idx, val_idx, num_classes, spec)
    if max_train is not None and len(tr_idx) > max_train:
        keep, _ = stratified_split(y_tr[tr_idx], 1 - max_train / len(tr_idx), rng)
        if len(keep) > max_train:  # per-class rounding overshot by a few
            keep = np.sort(rng.choice(keep, max_train, replace=False))
        tr_idx = tr_idx[keep]
    return _assemble(name, x_tr, y_tr, x_te, y_te, tr_idx, val_idx)


def check_classes(y_train: np.ndarray, y_test: np.ndarray, where: str) -> int:
    """-> C. At least 2 classes (one class scores every network 100 %), labels
    0..C-1 with every class in the training data (a stray label of 10**7 would
    build a 10-million-way head), C <= MAX_CLASSES, a non-empty test split whose
    labels are among the training classes."""
    present = np.unique(y_train)
    c = int(present[-1]) + 1 if len(present) else 0
    if len(present) < 2:
        raise ConfigError(where, "labels", f"{len(present)} class(es)", "need at least 2 classes")
    if c > MAX_CLASSES:
        raise ConfigError(where, "labels", f"max label {c - 1}", f"more than {MAX_CLASSES} classes: a stray label?")
    if len(present) != c:
        absent = sorted(set(range(c)) - set(present.tolist()))
        raise ConfigError(where, "labels", f"max label {c - 1}", f"labels must be 0..C-1 with every class in "
                          f"the training data; {len(absent)} absent (e.g. {absent[:5]})")
    if len(y_test) == 0:
        raise ConfigError(where, "test split", 0, "is empty (too few examples per class)")
    if int(y_test.max()) >= c:
        raise ConfigError(where, "test labels", f"max label {int(y_test.max())}",
                          f"not among the training classes 0..{c - 1}")
    return c


def _check_split(y: np.ndarray, tr_idx: np.ndarray, val_idx: np.ndarray, c: int, where: str) -> None:
    for part, idx in (("training", tr_idx), ("validation", val_idx)):
        counts = np.bincount(y[idx], minlength=c)
        if counts.min() == 0:
            few = int(np.argmin(counts))
            raise ConfigError(where, "examples per class", f"class {few}: {int((y == few).sum())}",
                              f"too few for a {part} example of every class (need >= 2 training "
                              "examples per class, 3 when the test split is carved out too)")


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator):
    """Indices ``(rest, held_out)``: per class, round(fraction * n_class) samples
    (at least one when the class has >= 2) go to ``held_out``; both sorted."""
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        held.append(idx[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


# --- sources: each returns (x_train, y_train, x_test, y_test, name) as numpy ------------

def _source(spec: str, root: str, rng: np.random.Generator):
    if spec == "digits":
        return _digits(rng)
    if spec in TORCHVISION:
        return _torchvision(spec, root)
    if spec.startswith("npz:"):
        return _npz(spec[4:], rng)
    if ":" in spec:
        return _plugin(spec, root)
    known = ", ".join(["digits", *TORCHVISION, "npz:PATH", "module:function"])
    raise ConfigError("dataset", "dataset", spec, f"unknown dataset (known: {known})")


def _digits(rng):
    x, y = _digits_arrays()
    x = (x.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    tr, te = stratified_split(y, TEST_FRACTION, rng)
    return x[tr], y[tr], x[te], y[te], "digits"


def _digits_arrays():
    """scikit-learn's bundled digits (pixels 0..16, labels). Reads the CSV shipped
    in the wheel directly: importing sklearn.datasets costs seconds per worker."""
    import importlib.util
    sk = importlib.util.find_spec("sklearn")
    path = os.path.join(sk.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if sk else ""
    if os.path.isfile(path):
        a = np.loadtxt(path, delimiter=",")
        return a[:, :-1], a[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # layout changed: the public API
    d = load_digits()
    return d.data, d.target.astype(np.int64)


def _torchvision(spec: str, root: str):
    import torchvision.datasets as tvd
    cls = getattr(tvd, TORCHVISION[spec])
    try:
        if spec == "svhn":
            tr, te = (cls(root, split=s, download=True) for s in ("train", "test"))
        else:
            tr, te = (cls(root, train=t, download=True) for t in (True, False))
    except Exception as e:  # network, checksum, disk: one line, not a traceback
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError("dataset", "dataset", spec,
                          f"not found in data root {root!r} and download failed "
                          f"({type(e).__name__}: {why}); put the files there or run online") from None
    out = []
    for ds in (tr, te):
        x = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
        y = getattr(ds, "labels", None)
        y = ds.targets if y is None else y
        y = y.numpy() if torch.is_tensor(y) else np.asarray(y)
        if spec == "svhn":  # stored NCHW already
            x = x.transpose(0, 2, 3, 1)
        out += [_images(x, spec, "x"), _labels(y, spec, "y", len(x))]
    return (*out, spec)


def _npz(path: str, rng):
    where = f"npz:{path}"
    if not os.path.isfile(path):
        raise ConfigError("dataset", "dataset", where, "file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError) as e:
        raise ConfigError("dataset", "dataset", where, f"not a readable .npz ({e})") from None
    if all(k in arrays for k in ("x_train", "y_train", "x_test", "y_test")):
        xtr, xte = _images(arrays["x_train"], where, "x_train"), _images(arrays["x_test"], where, "x_test")
        ytr = _labels(arrays["y_train"], where, "y_train", len(xtr))
        yte = _labels(arrays["y_test"], where, "y_test", len(xte))
        if xtr.shape[1:] != xte.shape[1:]:
            raise ConfigError(where, "x_test", xte.shape, f"image shape differs from x_train's {xtr.shape}")
        return xtr, ytr, xte, yte, os.path.basename(path)
    if "x" in arrays and "y" in arrays:
        x = _images(arrays["x"], where, "x")
        y = _labels(arrays["y"], where, "y", len(x))
        tr, te = stratified_split(y, TEST_FRACTION, rng)
        return x[tr], y[tr], x[te], y[te], os.path.basename(path)
    raise ConfigError(where, "keys", sorted(arrays),
                      "need arrays x_train, y_train, x_test, y_test (or x, y)")


def _plugin(spec: str, root: str):
    mod_name, _, fn_name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise ConfigError("dataset", "dataset", spec, f"cannot import plug-in ({e})") from None
    got = fn(root)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise ConfigError("dataset", "dataset", spec, "plug-in must return (train_dataset, test_dataset)")
    out = []
    for part, ds in zip(("train", "test"), got):
        xs, ys = [], []
        for i in range(len(ds)):
            img, label = ds[i]
            xs.append(_item_image(img))
            ys.append(int(label))
        if not xs:
            raise ConfigError(spec, f"{part}_dataset", 0, "is empty")
        x = np.stack(xs)
        out += [_images(x, spec, f"{part} images", channels_first=x.ndim == 4 and torch.is_tensor(ds[0][0])),
                _labels(np.asarray(ys), spec, f"{part} labels", len(x))]
    return (*out, spec)


def _item_image(img) -> np.ndarray:
    if torch.is_tensor(img):
        return img.detach().cpu().numpy()
    return np.asarray(img)  # PIL images and arrays


# --- validation and layout ------------------------------------------------------------

def _images(x: np.ndarray, where: str, key: str, channels_first: bool | None = None) -> np.ndarray:
    """-> float32 NCHW. uint8 is scaled to [0, 1]; floats are kept as they are."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32)
    else:
        raise ConfigError(where, key, f"dtype {x.dtype}", "images must be uint8 or float")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if channels_first is None:  # NHWC unless clearly NCHW
            channels_first = x.shape[3] > 4 and x.shape[1] <= 4
        if not channels_first:
            x = x.transpose(0, 3, 1, 2)
    else:
        raise ConfigError(where, key, f"shape {x.shape}", "images must be (N,H,W), (N,H,W,C) or (N,C,H,W)")
    if len(x) == 0 or min(x.shape[1:]) < 1:
        raise ConfigError(where, key, f"shape {x.shape}", "no images")
    if not np.isfinite(x).all():
        raise ConfigError(where, key, f"shape {x.shape}", "contains NaN or inf")
    return np.ascontiguousarray(x)


def _labels(y: np.ndarray, where: str, key: str, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ConfigError(where, key, f"shape {y.shape}", f"labels must be 1-D with one per image ({n})")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise ConfigError(where, key, f"dtype {y.dtype}", "labels must be non-negative integers")
    return y.astype(np.int64)


def _assemble(name, x_tr, y_tr, x_te, y_te, tr_idx, val_idx) -> Data:
    xt = x_tr[tr_idx]
    mean = xt.mean(axis=(0, 2, 3), keepdims=True)
    std = xt.std(axis=(0, 2, 3), keepdims=True) + 1e-6  # constant channels stay finite

    def norm(a):
        return torch.from_numpy(np.ascontiguousarray((a - mean) / std, dtype=np.float32))

    num_classes = int(y_tr.max()) + 1  # check_classes: 0..C-1, test labels among them
    return Data(name, norm(xt), torch.from_numpy(y_tr[tr_idx]), norm(x_tr[val_idx]),
                torch.from_numpy(y_tr[val_idx]), norm(x_te), torch.from_numpy(y_te),
                tuple(int(s) for s in xt.shape[1:]), num_classes)
