import cv2
import numpy as np
import pytest

# One colour per identity, so a decoded image tells which folder it came from.
COLOURS = {"alice": (200, 30, 30), "bob": (30, 200, 30), "carol": (30, 30, 200)}


def write_image(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def coloured(colour, size=(8, 6)):
    """A constant image whose left column is black, so a flip is visible."""
    image = np.empty((*size, 3), np.uint8)
    image[:] = colour
    image[:, 0] = 0
    return image


@pytest.fixture
def identity_folder(tmp_path):
    """carol, alice, bob (created out of order) with 2, 3 and 4 lossless images."""
    for name, count, ext in (("carol", 4, "bmp"), ("alice", 2, "png"), ("bob", 3, "png")):
        for i in range(count):
            write_image(tmp_path / "faces" / name / f"{i}.{ext}", coloured(COLOURS[name]))
    return tmp_path / "faces"


def damaged_jpeg(path, colour=(90, 90, 90)):
    """A JPEG whose header (quantisation tables) is zeroed but which keeps its
    start and end markers: it passes the up-front structural check, and
    neither TensorFlow nor OpenCV decodes it."""
    write_image(path, coloured(colour, (16, 16)))
    data = bytearray(path.read_bytes())
    data[4:44] = bytes(40)
    path.write_bytes(bytes(data))
    assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"
    return path
