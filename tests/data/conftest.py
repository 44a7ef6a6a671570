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
