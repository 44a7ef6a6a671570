"""Input images for exports: the embedder's image size, check images and calibration data."""

import dataclasses
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Raw pixel values the embedders take; the recipe's normalisation is inside the model.
VALUE_RANGE = (0.0, 255.0)
# At most this many images check an export; of calibration data, a quarter is held out up to this.
MAX_CHECK_IMAGES = 64
SYNTHETIC_CHECK_IMAGES = 8


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """The fixed image size of an embedder: inputs are `(batch, height, width, channels)`."""

    height: int
    width: int
    channels: int

    @property
    def shape(self):
        return (self.height, self.width, self.channels)

    @classmethod
    def of(cls, embedder):
        """Reads the input size of a single-input image model, which must be fixed."""
        if len(embedder.inputs) != 1:
            raise ValueError(f"Export needs an embedder with one image input. Received: {len(embedder.inputs)} inputs")
        shape = tuple(embedder.inputs[0].shape)
        if len(shape) != 4 or any(size is None for size in shape[1:]):
            raise ValueError(
                "Export needs a fixed input size (batch, height, width, channels), with "
                "only the batch left dynamic; build the model with e.g. "
                f"keras.Input((112, 112, 3)). Received: input_shape={shape}"
            )
        return cls(*shape[1:])


def synthetic_images(spec, count=8, seed=0):
    """Deterministic smooth images in [0, 255]: upsampled low-resolution noise.

    Smooth fields keep activations closer to those of real faces than pixel
    noise does, so the parity check sees realistic magnitudes.
    """
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(*VALUE_RANGE, size=(count, 4, 4, spec.channels)).astype(np.float32)
    images = [cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_CUBIC) for image in coarse]
    images = np.clip(np.stack(images).reshape(count, *spec.shape), *VALUE_RANGE)
    return images.astype(np.float32)


def load_images(source, spec):
    """Returns float32 images of the embedder's size from an array or a folder.

    Args:
        source: an array `(n, height, width, channels)` of raw pixel values in
            [0, 255], or a folder of aligned face images (read as RGB and
            resized to the embedder's input size).
        spec: the embedder's `ImageSpec`.
    """
    if isinstance(source, (str, Path)):
        return _read_folder(Path(source), spec)
    images = np.asarray(source, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != spec.shape or len(images) == 0:
        raise ValueError(
            f"Images must be an array of shape (n, {spec.height}, {spec.width}, "
            f"{spec.channels}) with n >= 1, the embedder's input size. "
            f"Received: shape={images.shape}"
        )
    return images


def image_names(source, count):
    """Names of the images of `source`: paths relative to a folder, else `name[i]` for an array."""
    if isinstance(source, (str, Path)):
        return [path.relative_to(source).as_posix() for path in _image_paths(Path(source))]
    return [f"array[{index}]" for index in range(count)]


def _image_paths(folder):
    if not folder.is_dir():
        raise ValueError(f"Image folder not found. Received: folder={str(folder)!r}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(
            f"No images ({', '.join(IMAGE_SUFFIXES)}) found under the folder. Received: folder={str(folder)!r}"
        )
    return paths


def _read_folder(folder, spec):
    import cv2

    paths = _image_paths(folder)
    if spec.channels not in (1, 3):
        raise ValueError(f"Image folders can feed only grayscale or RGB embedders. Received: channels={spec.channels}")
    flag = cv2.IMREAD_GRAYSCALE if spec.channels == 1 else cv2.IMREAD_COLOR
    images = []
    for path in paths:
        image = cv2.imread(str(path), flag)
        if image is None:
            raise ValueError(f"Could not read an image. Received: path={str(path)!r}")
        if spec.channels == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        images.append(image.reshape(spec.shape))
    return np.stack(images).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ParityImages:
    """The images an export is calibrated on and the other images its parity is measured on.

    Attributes:
        check: float32 images the export's embeddings are compared on.
        calibration: float32 images calibrating a quantised format, or
            `None` for a format without calibration.
        source: where the check images come from: `"held_out"` (part of
            the representative data, never used for calibration),
            `"check_inputs"`, `"representative_data"` (a format that does not
            calibrate), or `"synthetic"`.
        check_names: a name for each check image (a path relative to the
            folder, `array[i]`, or `synthetic[i]`).
        calibration_names: a name for each calibration image.
    """

    check: np.ndarray
    calibration: np.ndarray | None
    source: str
    check_names: tuple
    calibration_names: tuple = ()

    def describe(self):
        """One line saying which images measured the parity."""
        held = {
            "held_out": (
                f"{len(self.check)} held-out representative images, disjoint from the "
                f"{len(self.calibration_names)} that calibrate"
            ),
            "check_inputs": f"{len(self.check)} check_inputs images"
            + (f", disjoint from the {len(self.calibration_names)} that calibrate" if self.calibration_names else ""),
            "representative_data": f"the first {len(self.check)} representative images (this format calibrates on none)",
            "synthetic": f"{len(self.check)} synthetic images (smooth noise, seed 0)"
            + (
                f"; the {len(self.calibration_names)} representative image(s) calibrate"
                if self.calibration_names
                else ""
            ),
        }
        return held[self.source]


def parity_images(spec, calibrated, representative_data=None, check_inputs=None):
    """Chooses the calibration and the parity-check images of one export.

    A calibrated (int8) export is never checked on its calibration images,
    whose activation ranges it was fitted to: a quarter of the representative
    data (at most `MAX_CHECK_IMAGES`, at least 1, spread evenly over it) is
    held out of the calibration and measures the parity. With a single
    representative image, synthetic images measure it. `check_inputs`, when
    given, measure it instead, and must not repeat a calibration image.

    Args:
        spec: the embedder's `ImageSpec`.
        calibrated: whether the format calibrates on the representative data.
        representative_data: an array or folder of images, or `None`.
        check_inputs: an array or folder of images, or `None`.

    Returns:
        A `ParityImages`.

    Raises:
        ValueError: bad images, or `check_inputs` that repeat calibration images.
    """
    representative = None if representative_data is None else load_images(representative_data, spec)
    names = [] if representative is None else image_names(representative_data, len(representative))
    if check_inputs is not None:
        check = load_images(check_inputs, spec)
        calibration = representative if calibrated else None
        if calibration is not None:
            repeated = [
                index for index, image in enumerate(check) if np.any(np.all(calibration == image, axis=(1, 2, 3)))
            ]
            if repeated:
                raise ValueError(
                    "check_inputs must be other images than the representative_data that calibrates the "
                    f"quantisation, or the parity check flatters the export. Received: {len(repeated)} of "
                    f"{len(check)} check images repeat calibration images (check image {repeated[0]} first)"
                )
        return ParityImages(
            check,
            calibration,
            "check_inputs",
            tuple(image_names(check_inputs, len(check))),
            tuple(names) if calibration is not None else (),
        )
    if representative is None:
        check = synthetic_images(spec, SYNTHETIC_CHECK_IMAGES)
        return ParityImages(check, None, "synthetic", tuple(f"synthetic[{i}]" for i in range(len(check))))
    if not calibrated:
        count = min(MAX_CHECK_IMAGES, len(representative))
        return ParityImages(representative[:count], None, "representative_data", tuple(names[:count]))
    if len(representative) == 1:
        check = synthetic_images(spec, SYNTHETIC_CHECK_IMAGES)
        synthetic_names = tuple(f"synthetic[{i}]" for i in range(len(check)))
        return ParityImages(check, representative, "synthetic", synthetic_names, tuple(names))
    count = min(MAX_CHECK_IMAGES, max(1, len(representative) // 4))
    held_out = np.zeros(len(representative), dtype=bool)
    held_out[np.round(np.linspace(0, len(representative) - 1, count)).astype(int)] = True
    return ParityImages(
        representative[held_out],
        representative[~held_out],
        "held_out",
        tuple(name for name, held in zip(names, held_out) if held),
        tuple(name for name, held in zip(names, held_out) if not held),
    )
