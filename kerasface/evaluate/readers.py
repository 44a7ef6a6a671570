"""Readers of evaluation sets: LFW pairs.txt, insightface .bin files and Market-1501 folders."""

import dataclasses
import io
import pickle
import pickletools
import re
import struct
from pathlib import Path

import cv2
import numpy as np

# Market-1501 file names: <pid>_c<camera>s<sequence>_<frame>_<box>.jpg, pid -1 for junk.
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)s\d+_")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png_chunks(data, source):
    """Refuses a PNG whose chunk lengths run past its end: OpenCV would first
    allocate what a damaged length declares (up to 2 GiB)."""
    if not data.startswith(_PNG_MAGIC):
        return
    position = len(_PNG_MAGIC)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        if position + 12 + length > len(data):
            raise ValueError(
                f"{source} is a damaged PNG: the chunk at byte {position} declares {length} bytes, "
                f"more than the {len(data)}-byte image holds."
            )
        position += 12 + length


def decode_image(data, image_size=None, source="image"):
    """Decodes JPEG/PNG `bytes` to an RGB uint8 array, resized to `image_size` (height, width).

    Raises:
        ValueError: naming `source`, for empty bytes or bytes that do not decode.
    """
    if len(data) == 0:
        raise ValueError(f"{source} is empty (0 bytes), not an image.")
    _check_png_chunks(data, source)
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise ValueError(f"{source} cannot be decoded as an image: {error}") from error
    if bgr is None:
        raise ValueError(f"{source} cannot be decoded as an image (JPEG, PNG, ...).")
    if image_size is not None and bgr.shape[:2] != tuple(image_size):
        bgr = cv2.resize(bgr, (image_size[1], image_size[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _stack(images, source):
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(
            f"The images of {source} have different sizes {sorted(shapes)[:3]}; pass image_size to resize them."
        )
    return np.stack(images)


def load_images(paths, image_size=None):
    """Reads image files as RGB uint8, shape (n, height, width, 3).

    Args:
        paths: image file paths.
        image_size: `(height, width)` to resize every image to, or `None`
            to keep the sizes (which must then agree).
    """
    images = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ValueError(f"Cannot read image {path}: {error.strerror}") from error
        images.append(decode_image(data, image_size, source=str(path)))
    if not images:
        raise ValueError("load_images: received no paths.")
    return _stack(images, "this set")


def read_lfw_pairs(path):
    """Reads an LFW `pairs.txt` file.

    The first line gives the sets, e.g. `10 300` (10 sets of 300 same-person
    then 300 different-person pairs; `pairsDevTrain.txt` has one number).
    Same-person lines are `name n1 n2`, different-person lines
    `name1 n1 name2 n2`.

    Returns:
        `(paths_a, paths_b, issame)`: image paths relative to the LFW root
        (`name/name_0001.jpg`) and one boolean per pair, in file order.
    """
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or not all(token.isdigit() for token in lines[0]) or len(lines[0]) not in (1, 2):
        raise ValueError(f"{path}: the first line must be the set sizes, such as '10 300'. Received: {lines[:1]}")
    expected = 2 * int(np.prod([int(token) for token in lines[0]]))
    if len(lines) - 1 != expected:
        raise ValueError(
            f"{path}: the header {' '.join(lines[0])} announces {expected} pairs. Received {len(lines) - 1}"
        )
    paths_a, paths_b, issame = [], [], []
    for number, tokens in enumerate(lines[1:], start=2):
        if len(tokens) == 3:
            name_a, index_a, name_b, index_b = tokens[0], tokens[1], tokens[0], tokens[2]
        elif len(tokens) == 4:
            name_a, index_a, name_b, index_b = tokens
        else:
            raise ValueError(
                f"{path}, line {number}: expected 'name n1 n2' or 'name1 n1 name2 n2'. Received: {' '.join(tokens)!r}"
            )
        if not (index_a.isdigit() and index_b.isdigit()):
            raise ValueError(f"{path}, line {number}: image numbers must be integers. Received: {' '.join(tokens)!r}")
        paths_a.append(f"{name_a}/{name_a}_{int(index_a):04d}.jpg")
        paths_b.append(f"{name_b}/{name_b}_{int(index_b):04d}.jpg")
        issame.append(len(tokens) == 3)
    return paths_a, paths_b, np.asarray(issame)


class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data: every class or function lookup is refused.

    Bytes, lists, tuples and booleans need no global, so a verification file
    loads; a pickle that imports anything (`os.system`, a NumPy array, ...)
    stops before that object is built.
    """

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to import {module}.{name}")


_MEMO_PUTS = ("PUT", "BINPUT", "LONG_BINPUT")
# What the C unpickler raises on malformed input (an APPEND to bytes is an
# AttributeError, an oversized text index an OverflowError, ...).
_UNPICKLING_ERRORS = (
    EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, MemoryError, RecursionError,
)  # fmt: skip


def _check_pickle_sizes(data, path):
    """Walks the opcodes of a pickle without building anything, so that no
    declared size (a byte string, a frame, a memo index) larger than the
    file reaches the unpickler, which would allocate it first.

    `pickletools.genops` reads each argument from the data and fails on one
    that runs past the end; frames and memo indices are checked here.
    """
    count = 0
    try:
        for count, (opcode, arg, position) in enumerate(pickletools.genops(io.BytesIO(data)), 1):
            if opcode.name == "FRAME" and arg > len(data) - position:
                raise ValueError(f"a frame of {arg} bytes at byte {position} is longer than the rest of the file")
            if opcode.name in _MEMO_PUTS and not 0 <= int(arg) < count:
                raise ValueError(f"memo index {arg} at byte {position} is larger than the pickle")
    except (ValueError, struct.error, OverflowError) as error:
        raise ValueError(f"{path} is not a readable pickle: {error}") from error


def read_verification_bin(path, image_size=None):
    """Reads an insightface verification file (lfw.bin, cfp_fp.bin, agedb_30.bin, ...).

    The file is a pickle of `(images, issame)`: a list of 2n encoded images
    (JPEG/PNG bytes; pair i is images 2i and 2i + 1) and a list of n booleans.
    It is loaded without importing anything, so a file that tries to run code
    is refused, and its opcodes are checked first, so a damaged file that
    declares sizes beyond its own length is refused before anything is
    allocated.

    Args:
        path: the `.bin` file.
        image_size: `(height, width)` to resize the images to, or `None` to
            keep their size (112 x 112 for insightface's files).

    Returns:
        `(images_a, images_b, issame)`: two RGB uint8 arrays of shape
        (n, height, width, 3) and n booleans.

    Raises:
        ValueError: naming the file (and the image), for anything but a
            well-formed file of decodable images.
    """
    data = Path(path).read_bytes()
    _check_pickle_sizes(data, path)
    try:
        # encoding="bytes": insightface wrote these files with Python 2, whose str is bytes.
        content = _NoGlobalsUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} is not a plain verification pickle: {error}") from error
    except _UNPICKLING_ERRORS as error:
        raise ValueError(f"{path} is not a readable pickle: {type(error).__name__}: {error}") from error
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise ValueError(f"{path} must hold a pair (images, issame). Received a {type(content).__name__}")
    encoded, issame = content
    if not isinstance(encoded, (list, tuple)) or not all(isinstance(item, bytes) for item in encoded):
        raise ValueError(f"{path}: the images must be a list of encoded image bytes.")
    if not isinstance(issame, (list, tuple)) or not all(isinstance(flag, bool) for flag in issame):
        raise ValueError(f"{path}: issame must be a list of booleans.")
    if not issame or len(encoded) != 2 * len(issame):
        raise ValueError(f"{path}: expected 2 images per pair. Received {len(encoded)} images for {len(issame)} pairs")
    images = _stack(
        [decode_image(data, image_size, source=f"{path}, image {index}") for index, data in enumerate(encoded)],
        str(path),
    )
    return images[0::2], images[1::2], np.asarray(issame, dtype=bool)


@dataclasses.dataclass(frozen=True)
class ReidSet:
    """Image paths of a re-identification split, with the person and camera of each."""

    paths: list
    ids: np.ndarray
    cams: np.ndarray


def _read_market_folder(folder):
    paths, ids, cams = [], [], []
    for path in sorted(folder.glob("*.jpg")):
        match = _MARKET_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path}: expected a Market-1501 name such as 0002_c1s1_000451_03.jpg")
        paths.append(path)
        ids.append(int(match.group(1)))
        cams.append(int(match.group(2)))
    if not paths:
        raise ValueError(f"{folder} holds no .jpg image.")
    return ReidSet(paths=paths, ids=np.asarray(ids), cams=np.asarray(cams))


def read_market1501(root):
    """Reads the test split of a Market-1501 folder: `(query, gallery)` `ReidSet`s.

    The queries are `root/query/*.jpg` and the gallery
    `root/bounding_box_test/*.jpg`, named `<pid>_c<camera>s<sequence>_...jpg`.
    """
    root = Path(root)
    return _read_market_folder(root / "query"), _read_market_folder(root / "bounding_box_test")
