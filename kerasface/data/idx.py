"""IDX files (the MNIST / Fashion-MNIST format) and a local Fashion-MNIST loader.

An IDX file is a 4-byte magic number `0x00 0x00 <type> <ndim>`, `ndim`
big-endian uint32 dimensions, then the values in C order (big-endian).
Format: http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS FOR THE MNIST DATABASE").
"""

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def parse_idx(data, name="<bytes>"):
    """Parses the bytes of an (uncompressed) IDX file into a NumPy array.

    Raises:
        ValueError: naming `name`, for a wrong magic number, an unknown value
            type, or a file shorter or longer than its header announces.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file, only {len(data)} bytes long.")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(
            f"{name}: not an IDX file; the magic number should be 00 00 <type> <ndim> "
            f"with type in {sorted(hex(t) for t in IDX_TYPES)}. Received: {data[:4].hex(' ')}"
        )
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes, expected {header}).")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{name}: IDX file is {kind}: shape {shape} of {dtype} needs {expected} bytes, found {len(data)}."
        )
    values = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path):
    """Reads an IDX file, gzip-compressed or not, into a NumPy array."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({error}).") from error
    return parse_idx(data, name=str(path))


def _find_idx(directory, stem):
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _default_directories():
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return [SYSTEM_FASHION_MNIST, keras_home / "datasets" / "fashion-mnist"]


def load_fashion_mnist(path=None):
    """Loads Fashion-MNIST from local IDX files; nothing is downloaded.

    Looks in `path` if given, else in `/usr/share/datasets/fashion-mnist`
    (Debian package `dataset-fashion-mnist`), else in Keras' cache
    `~/.keras/datasets/fashion-mnist`. Each of the four files may be
    gzip-compressed (`.gz`) or not.

    Args:
        path: optional directory holding `train-images-idx3-ubyte[.gz]`,
            `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`
            and `t10k-labels-idx1-ubyte[.gz]`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images of shape
        `(N, 28, 28, 1)` and int32 labels in [0, 10).

    Raises:
        FileNotFoundError: when no directory holds the four files.
        ValueError: when a file is corrupt or truncated, or images and labels
            disagree in number.

    Reference:
        - [Xiao et al., 2017](https://arxiv.org/abs/1708.07747)
    """
    directories = [Path(path)] if path is not None else _default_directories()
    for directory in directories:
        files = {key: _find_idx(directory, stem) for key, stem in FASHION_MNIST_FILES.items()}
        if all(files.values()):
            return _load_split(files, "train"), _load_split(files, "test")
    raise FileNotFoundError(
        f"Fashion-MNIST IDX files not found in {', '.join(str(d) for d in directories)}. "
        "Install them with `apt-get install dataset-fashion-mnist`, or put the four files "
        f"{', '.join(FASHION_MNIST_FILES.values())} (optionally .gz) in a directory and "
        "pass it as `path`."
    )


def _load_split(files, split):
    images = read_idx(files[f"{split}_images"])
    labels = read_idx(files[f"{split}_labels"])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"Fashion-MNIST {split} files disagree: images of shape {images.shape} "
            f"({files[f'{split}_images']}) and labels of shape {labels.shape} "
            f"({files[f'{split}_labels']})."
        )
    return images[..., None], labels.astype("int32")
