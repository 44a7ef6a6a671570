"""LFW pairs.txt, insightface .bin (restricted unpickling), Market-1501 names, ROC plot."""

import os
import pickle
import struct

import cv2
import numpy as np
import pytest
from matplotlib.image import imread

from kerasface import evaluate


def png(rgb):
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def random_images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_read_lfw_pairs(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("2\t1\nAbel_Pacheco\t1\t4\nAbdel_Madi_Shabneh\t1\tDean_Barker\t1\nAl_Gore 2 10\nA_B 3 C_D 12\n")
    paths_a, paths_b, issame = evaluate.read_lfw_pairs(path)
    assert paths_a == [
        "Abel_Pacheco/Abel_Pacheco_0001.jpg",
        "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
        "Al_Gore/Al_Gore_0002.jpg",
        "A_B/A_B_0003.jpg",
    ]
    assert paths_b == [
        "Abel_Pacheco/Abel_Pacheco_0004.jpg",
        "Dean_Barker/Dean_Barker_0001.jpg",
        "Al_Gore/Al_Gore_0010.jpg",
        "C_D/C_D_0012.jpg",
    ]
    np.testing.assert_array_equal(issame, [True, False, True, False])


@pytest.mark.parametrize(
    "text, message",
    [
        ("ten 300\n", "first line must be the set sizes"),
        ("1 1\nA 1 2\n", "announces 2 pairs. Received 1"),
        ("1 1\nA 1 2\nA 1 B\n", "line 3: image numbers must be integers"),
        ("1 1\nA 1 2\nA 1 B 2 3\n", "line 3: expected 'name n1 n2'"),
    ],
)
def test_read_lfw_pairs_errors(tmp_path, text, message):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        evaluate.read_lfw_pairs(path)


def write_bin(path, images, issame, protocol=4):
    path.write_bytes(pickle.dumps(([png(image) for image in images], list(issame)), protocol=protocol))
    return path


def test_read_verification_bin_decodes_pairs(tmp_path):
    images = random_images(6)
    path = write_bin(tmp_path / "lfw.bin", images, [True, False, True])
    images_a, images_b, issame = evaluate.read_verification_bin(path)
    np.testing.assert_array_equal(images_a, images[0::2])  # PNG is lossless, RGB order kept
    np.testing.assert_array_equal(images_b, images[1::2])
    np.testing.assert_array_equal(issame, [True, False, True])
    resized_a, _, _ = evaluate.read_verification_bin(path, image_size=(4, 6))
    assert resized_a.shape == (3, 4, 6, 3) and resized_a.dtype == np.uint8


def test_read_verification_bin_python2_pickle(tmp_path):
    # insightface's files come from Python 2: str (bytes) as BINSTRING ("T" + int32 length), protocol 2.
    data = png(random_images(1)[0])
    binstring = b"T" + struct.pack("<i", len(data)) + data
    opcodes = b"\x80\x02]q\x00(" + binstring + binstring + b"e]q\x01\x88a\x86q\x02."
    path = tmp_path / "py2.bin"
    path.write_bytes(opcodes)
    images_a, images_b, issame = evaluate.read_verification_bin(path)
    np.testing.assert_array_equal(images_a, images_b)
    np.testing.assert_array_equal(issame, [True])


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([RunsACommand(marker)], [True])))
    with pytest.raises(ValueError, match=r"not a plain verification pickle: refused to import (posix|os|nt)\.system"):
        evaluate.read_verification_bin(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ({"images": []}, "must hold a pair \\(images, issame\\). Received a dict"),
        (([b"x", b"y"], [1]), "issame must be a list of booleans"),
        (([b"x", "y"], [True]), "list of encoded image bytes"),
        (([b"x", b"y", b"z"], [True]), "Received 3 images for 1 pairs"),
        (([b"not an image", b"y"], [True]), "image 0 cannot be decoded"),
    ],
)
def test_read_verification_bin_wrong_structure(tmp_path, content, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(ValueError, match=message):
        evaluate.read_verification_bin(path)


def test_numpy_pickle_is_refused(tmp_path):
    path = tmp_path / "arrays.bin"
    path.write_bytes(pickle.dumps((np.zeros(2), [True])))
    with pytest.raises(ValueError, match="refused to import numpy"):
        evaluate.read_verification_bin(path)


def test_read_market1501(tmp_path):
    names = {
        "query": ["0002_c1s1_000451_03.jpg", "0007_c2s3_070952_01.jpg"],
        "bounding_box_test": ["-1_c1s1_000401_03.jpg", "0000_c6s1_004001_01.jpg", "0002_c3s1_000551_01.jpg"],
    }
    for folder, files in names.items():
        (tmp_path / folder).mkdir()
        for name in files:
            cv2.imwrite(str(tmp_path / folder / name), np.zeros((16, 8, 3), np.uint8))
    (tmp_path / "bounding_box_test" / "Thumbs.db").write_bytes(b"")
    query, gallery = evaluate.read_market1501(tmp_path)
    np.testing.assert_array_equal(query.ids, [2, 7])
    np.testing.assert_array_equal(query.cams, [1, 2])
    np.testing.assert_array_equal(gallery.ids, [-1, 0, 2])
    np.testing.assert_array_equal(gallery.cams, [1, 6, 3])
    assert evaluate.load_images(gallery.paths).shape == (3, 16, 8, 3)
    with pytest.raises(ValueError, match="Cannot read image .*missing.jpg"):
        evaluate.load_images([tmp_path / "missing.jpg"])


def test_plot_roc_writes_png(tmp_path):
    far, tar, _ = evaluate.roc([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [True, False, True, True, False, False])
    path = evaluate.plot_roc(far, tar, tmp_path / "roc.png", label="tiny")
    image = imread(path)
    assert image.shape == (400, 500, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas
    with pytest.raises(ValueError, match="every FAR is 0"):
        evaluate.plot_roc([0.0, 0.0], [0.0, 1.0], tmp_path / "empty.png")


def test_empty_image_entry_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps(([png(random_images(1)[0]), b""], [True])))
    with pytest.raises(ValueError, match=r"lfw\.bin, image 1 is empty \(0 bytes\)"):
        evaluate.read_verification_bin(path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.jpg is empty"):
        evaluate.load_images([tmp_path / "empty.jpg"])


def test_declared_sizes_beyond_the_file_are_refused_before_allocating(tmp_path):
    # Each would make the unpickler allocate gigabytes (a MemoryError) before noticing the file is short.
    good = pickle.dumps(([png(image) for image in random_images(2)], [True]), protocol=2)
    assert good.startswith(b"\x80\x02]q\x00")  # the list is memoised at index 0 (BINPUT 0)
    cases = {
        "memo.bin": (good.replace(b"q\x00", b"r" + struct.pack("<I", 0xFFFFFFF0), 1), "memo index 4294967280"),
        "bytes8.bin": (b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc.", "expected 4611686018427387904 bytes"),
        "frame.bin": (b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"N.", "a frame of 1099511627776 bytes"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name} is not a readable pickle: .*{message}"):
            evaluate.read_verification_bin(tmp_path / name)
