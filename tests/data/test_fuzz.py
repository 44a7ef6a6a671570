"""Fuzzing the readers of insightface's files (.bin verification pickles,
.rec/.idx RecordIO) with a fixed seed: every truncated, zero-length or
byte-flipped file either loads exactly as the intact one or raises a
`ValueError` naming the file; never another exception, never fewer images.

The images are PNGs, whose chunk CRCs let a flipped image byte be detected.
The .bin is written as Python 2's cPickle wrote insightface's files.
Labels carry no checksum, so a flip that turns one valid label into another
would go unseen; the classes here (0 and 1, and booleans for the pairs) make
that impossible for a label but not for a pair's `issame`, which the oracle
leaves out.
"""

import struct

import numpy as np
import pytest
import tensorflow as tf

from kerasface.data import read_recordio, recordio_dataset
from kerasface.evaluate import read_verification_bin
from tests.data.test_recordio import faces, png, write_insightface

SEED = 20240611


def mutations(data, rng, truncations=12, flips=120):
    """(name, bytes): zero length, truncations, and 1 to 3 random byte flips."""
    yield "empty", b""
    for size in sorted(rng.choice(len(data), truncations, replace=False)):
        yield f"cut at {size}", data[:size]
    for number in range(flips):
        mutated = bytearray(data)
        positions = rng.choice(len(data), rng.integers(1, 4), replace=False)
        for position in positions:
            mutated[position] ^= int(rng.integers(1, 256))
        yield f"flip {number} at {sorted(positions.tolist())}", bytes(mutated)


def outcome(load, names):
    """The loaded value, or None for a ValueError that names one of `names`."""
    try:
        return load()
    except ValueError as error:
        assert any(str(name) in str(error) for name in names), f"the error does not name the file: {error}"
        return None


def py2_pickle(encoded, issame):
    """`(encoded, issame)` as Python 2's cPickle (protocol 2) writes it, as in
    insightface's files: byte strings as BINSTRING/SHORT_BINSTRING, each
    memoised (BINPUT, then LONG_BINPUT past index 255)."""
    memo = iter(range(10**6))

    def put():
        index = next(memo)
        return b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)

    out = b"\x80\x02]" + put() + b"("
    for data in encoded:
        out += (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))) + data + put()
    out += b"e]" + put() + b"(" + b"".join(b"\x88" if same else b"\x89" for same in issame) + b"e\x86" + put()
    return out + b"."


@pytest.fixture(scope="module")
def pairs_bin(tmp_path_factory):
    # 300 tiny images, so the memo indices past 255 are 4-byte LONG_BINPUT arguments a flip can inflate.
    images = faces(300, size=(2, 2))
    path = tmp_path_factory.mktemp("bin") / "lfw.bin"
    path.write_bytes(py2_pickle([png(image) for image in images], [i % 2 == 0 for i in range(150)]))
    images_a, images_b, _ = read_verification_bin(path)
    np.testing.assert_array_equal(images_a, images[0::2])  # the intact file loads
    return path, images


def test_fuzzed_bin_loads_exactly_or_names_the_file(pairs_bin):
    path, images = pairs_bin
    intact = path.read_bytes()
    rng = np.random.default_rng(SEED)
    loaded = refused = 0
    for name, data in mutations(intact, rng, flips=300):
        path.write_bytes(data)
        result = outcome(lambda: read_verification_bin(path), [path])
        if result is None:
            refused += 1
            continue
        images_a, images_b, issame = result
        assert len(issame) == 150, name
        np.testing.assert_array_equal(images_a, images[0::2], err_msg=name)
        np.testing.assert_array_equal(images_b, images[1::2], err_msg=name)
        loaded += 1
    assert refused > 250 and loaded + refused == 313


@pytest.fixture(scope="module")
def small_rec(tmp_path_factory):
    images = faces(6, size=(6, 4))
    labels = [0, 0, 0, 1, 1, 1]
    rec = write_insightface(tmp_path_factory.mktemp("rec") / "train.rec", [png(i) for i in images], labels)
    return rec, images, labels


@pytest.mark.parametrize("suffix", [".rec", ".idx"])
def test_fuzzed_recordio_loads_exactly_or_names_the_file(small_rec, suffix):
    rec, images, labels = small_rec
    target = rec.with_suffix(suffix)
    intact = target.read_bytes()
    rng = np.random.default_rng([SEED, len(suffix), ord(suffix[1])])
    loaded = refused = 0
    try:
        for name, data in mutations(intact, rng):
            target.write_bytes(data)
            result = outcome(lambda: list(read_recordio(rec)), [rec, rec.with_suffix(".idx")])
            if result is None:
                refused += 1
                continue
            assert [label for _, label in result] == labels, name
            for (image, _), expected in zip(result, images):
                np.testing.assert_array_equal(image, expected, err_msg=name)
            loaded += 1
    finally:
        target.write_bytes(intact)
    assert refused > 60 and loaded + refused == 133


def test_fuzzed_recordio_dataset_never_yields_fewer_images(small_rec, tmp_path):
    rec, _, _ = small_rec
    intact = rec.read_bytes()
    rng = np.random.default_rng(SEED + 1)
    for name, data in list(mutations(intact, rng, truncations=2, flips=4)):
        mutated = tmp_path / "train.rec"
        mutated.write_bytes(data)
        mutated.with_suffix(".idx").write_bytes(rec.with_suffix(".idx").read_bytes())
        try:
            dataset = recordio_dataset(mutated, image_size=(6, 4), batch_size=4, seed=0)
            count = sum(len(y) for _, y in dataset)
        except ValueError as error:
            assert str(mutated) in str(error), name
        except tf.errors.InvalidArgumentError as error:
            assert str(mutated) in str(error), name
        else:
            assert count == 6, name
