"""Data sets: splits (stratified, by seed, never the test split), layouts, errors."""
import numpy as np
import pytest
import torch

from evonas.errors import ConfigError
from evonas.evaluate.data import DataSpec, load_dataset, stratified_split

from helpers import SHARED_DATA as SHARED


def test_digits_shapes_and_normalisation():
    d = load_dataset("digits", seed=0, val_fraction=0.1)
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 1797
    assert abs(d.x_train.mean().item()) < 1e-4 and abs(d.x_train.std().item() - 1) < 0.05
    assert d.x_val.shape[1:] == d.x_test.shape[1:] == (1, 8, 8)


def test_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(5), [10, 20, 30, 40, 100])
    rest, held = stratified_split(y, 0.1, np.random.default_rng(1))
    assert len(np.intersect1d(rest, held)) == 0 and len(rest) + len(held) == len(y)
    assert np.bincount(y[held]).tolist() == [1, 2, 3, 4, 10]
    again, _ = stratified_split(y, 0.1, np.random.default_rng(1))
    other, _ = stratified_split(y, 0.1, np.random.default_rng(2))
    assert np.array_equal(rest, again) and not np.array_equal(rest, other)


def test_validation_never_uses_test_and_subset_is_stratified():
    a = load_dataset("digits", seed=3, val_fraction=0.2, max_train=200)
    b = load_dataset("digits", seed=3, val_fraction=0.2)
    # the subset only shrinks the training part: same test and validation samples
    assert torch.equal(a.y_test, b.y_test) and torch.equal(a.y_val, b.y_val)
    scale = b.x_val.std() / a.x_val.std()  # normalisation differs (train statistics)
    assert torch.allclose((a.x_val - a.x_val.mean()) * scale, b.x_val - b.x_val.mean(), atol=1e-3)
    counts = torch.bincount(a.y_train, minlength=10)
    assert len(a.y_train) <= 200 and counts.min() >= 18 and counts.max() <= 22
    assert torch.bincount(b.y_val, minlength=10).min() >= 25  # ~20% of each class


def _write(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 6, 6, 3), dtype=np.uint8)
    y = np.tile(np.arange(3), 20)
    d = load_dataset(_write(tmp_path / "a.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:]))
    assert d.input_shape == (3, 6, 6) and len(d.y_test) == 20 and d.num_classes == 3
    d = load_dataset(_write(tmp_path / "b.npz", x=x[..., 0].astype(np.float32), y=y))  # NHW float, x/y
    assert d.input_shape == (1, 6, 6) and len(d.y_train) + len(d.y_val) + len(d.y_test) == 60


@pytest.mark.parametrize("arrays, needle", [
    (dict(a=np.zeros(3)), "keys"),
    (dict(x=np.zeros((10, 4)), y=np.zeros(10, dtype=int)), "'x'"),
    (dict(x=np.zeros((10, 4, 4)), y=np.zeros(9, dtype=int)), "'y'"),
    (dict(x=np.zeros((10, 4, 4)), y=np.full(10, 0.5)), "'y'"),
])
def test_npz_errors_name_key_and_shape(tmp_path, arrays, needle):
    with pytest.raises(ConfigError) as e:
        load_dataset(_write(tmp_path / "bad.npz", **arrays))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_and_missing(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="file not found"):
        load_dataset(f"npz:{tmp_path}/nope.npz")


def test_download_failure_is_one_line_config_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    class Offline:
        def __init__(self, root, train=True, download=False):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error>")
    monkeypatch.setattr(tvd, "MNIST", Offline)
    with pytest.raises(ConfigError) as e:
        load_dataset("mnist", root=str(tmp_path))
    msg = str(e.value)
    assert "mnist" in msg and str(tmp_path) in msg and "\n" not in msg


def test_plugin_torch_dataset(tmp_path, monkeypatch):
    (tmp_path / "myds.py").write_text(
        "import torch\n"
        "from torch.utils.data import TensorDataset\n"
        "def load(root):\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x = torch.rand(40, 2, 5, 5, generator=g)\n"
        "    y = torch.arange(40) % 4\n"
        "    return TensorDataset(x[:30], y[:30]), TensorDataset(x[30:], y[30:])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    d = DataSpec("myds:load", val_fraction=0.2).load()
    assert d.input_shape == (2, 5, 5) and d.num_classes == 4 and len(d.y_test) == 10
    assert len(d.y_val) == 6  # per class round(0.2 * [8, 8, 7, 7])
    with pytest.raises(ConfigError, match="cannot import"):
        load_dataset("myds:nothing")


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.shared_data("mnist_10k.npz"))])
def mnist_npz(request, npz_like_shared):
    """The shared MNIST file's layout (x, y): a synthetic one always, the real one where present."""
    return SHARED / "mnist_10k.npz" if request.param == "real" else npz_like_shared("mnist", per_class=200)


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.shared_data("cifar10_5k1k.npz"))])
def cifar_npz(request, npz_like_shared):
    """The shared CIFAR-10 file's layout (x_train .. y_test): synthetic, and real where present."""
    return SHARED / "cifar10_5k1k.npz" if request.param == "real" else npz_like_shared("cifar10", per_class=50)


def test_shared_mnist_layout(mnist_npz):
    n = len(np.load(mnist_npz)["y"])  # 10,000 real, 2,000 synthetic
    d = load_dataset(f"npz:{mnist_npz}", seed=0, max_train=n // 10)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert abs(len(d.y_test) - n // 5) <= 5 and n // 10 - 5 <= len(d.y_train) <= n // 10


def test_shared_cifar10_layout(cifar_npz):
    n_train, n_test = (len(np.load(cifar_npz)[k]) for k in ("y_train", "y_test"))  # 5,000/1,000 real
    d = load_dataset(f"npz:{cifar_npz}", seed=0, val_fraction=0.1)
    assert d.input_shape == (3, 32, 32) and len(d.y_test) == n_test and len(d.y_val) == n_train // 10
    assert torch.bincount(d.y_val).tolist() == [n_train // 100] * 10
