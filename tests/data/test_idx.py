"""The IDX parser on hand-written files and on Fashion-MNIST's real files."""

import gzip

import numpy as np
import pytest

from kerasface.data import load_fashion_mnist, parse_idx, read_idx
from kerasface.data.idx import FASHION_MNIST_FILES, SYSTEM_FASHION_MNIST


def idx_bytes(array, type_code):
    """IDX bytes written by hand: 00 00 <type> <ndim>, big-endian dims, values."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def test_parse_idx_reads_big_endian_values_and_shape():
    values = np.array([[1, -2, 300], [-400, 5, 32767]], dtype=">i2")
    parsed = parse_idx(idx_bytes(values, 0x0B))
    assert parsed.shape == (2, 3)
    np.testing.assert_array_equal(parsed, [[1, -2, 300], [-400, 5, 32767]])


def test_read_idx_accepts_gzip_and_plain(tmp_path):
    values = np.arange(24, dtype="u1").reshape(2, 3, 4)
    (tmp_path / "plain").write_bytes(idx_bytes(values, 0x08))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(values, 0x08)))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain"), values)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.gz"), values)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "only 2 bytes"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "magic number"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 10]) + b"\x01" * 7, "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 2]) + b"\x01" * 3, "longer than its header"),
    ],
)
def test_parse_idx_rejects_corrupt_files(data, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(data, name="bad-file")


def test_read_idx_names_a_truncated_gzip_file(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(1000, "u1"), 0x08))[:-20])
    with pytest.raises(ValueError, match="labels.gz.*corrupt or truncated gzip"):
        read_idx(path)


def write_fashion_mnist(directory, n_train=3, n_test=2, n_train_labels=None):
    arrays = {
        "train_images": np.full((n_train, 28, 28), 7, "u1"),
        "train_labels": np.arange(n_train, dtype="u1"),
        "test_images": np.ones((n_test, 28, 28), "u1"),
        "test_labels": np.arange(n_test, dtype="u1")[::-1].copy(),
    }
    if n_train_labels is not None:
        arrays["train_labels"] = np.zeros(n_train_labels, "u1")
    for key, stem in FASHION_MNIST_FILES.items():
        (directory / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arrays[key], 0x08)))


def test_load_fashion_mnist_from_a_given_directory(tmp_path):
    write_fashion_mnist(tmp_path)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(tmp_path)
    assert x_train.shape == (3, 28, 28, 1) and x_test.shape == (2, 28, 28, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int32
    np.testing.assert_array_equal(y_train, [0, 1, 2])
    np.testing.assert_array_equal(y_test, [1, 0])


def test_load_fashion_mnist_rejects_images_and_labels_of_different_counts(tmp_path):
    write_fashion_mnist(tmp_path, n_train_labels=4)
    with pytest.raises(ValueError, match="train files disagree"):
        load_fashion_mnist(tmp_path)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not SYSTEM_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_files():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    # Published facts: the first training image is an ankle boot (class 9),
    # and the training pixels average 0.2860 (the usual normalization mean).
    assert y_train[0] == 9
    assert x_train.mean() / 255 == pytest.approx(0.2860, abs=5e-4)
