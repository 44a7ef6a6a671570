"""Input images for exports: the embedder's image size, check images and calibration data."""

import dataclasses
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Raw pixel values the embedders take; the recipe's normalisation is inside the model.
VALUE_RANGE = (0.0, 255.0)


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
            raise ValueError(
                f"Export needs an embedder with one image input. Received: {len(embedder.inputs)} inputs"
            )
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


def _read_folder(folder, spec):
    import cv2

    if not folder.is_dir():
        raise ValueError(f"Image folder not found. Received: folder={str(folder)!r}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(
            f"No images ({', '.join(IMAGE_SUFFIXES)}) found under the folder. "
            f"Received: folder={str(folder)!r}"
        )
    if spec.channels not in (1, 3):
        raise ValueError(
            f"Image folders can feed only grayscale or RGB embedders. Received: channels={spec.channels}"
        )
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
