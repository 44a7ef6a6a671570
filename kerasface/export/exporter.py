"""`export`: write an embedder for phones and edge devices, then prove the file right.

Every export is loaded back with the runtime that will serve it (TensorFlow,
LiteRT or ONNX Runtime) and its embeddings are compared with the Keras
embedder's on the same images. A float export that differs by more than
`1e-4` (times the largest embedding magnitude where that exceeds 1) or whose
mean cosine falls below 0.9999, or a quantised one whose mean cosine falls
below its bound (0.999 fp16, 0.99 int8) is wrong, and `export` raises instead
of returning it. An int8 export is checked on representative images held out
of its calibration (see `parity_images`), and the report names the images.
"""

import dataclasses
from pathlib import Path

import keras
import numpy as np

from kerasface.export._optional import require
from kerasface.export.formats import get_format
from kerasface.export.images import ImageSpec, parity_images
from kerasface.export.metadata import describe, metadata_path, write_metadata
from kerasface.export.runtimes import KerasRuntime, TFLiteRuntime, load_runtime
from kerasface.export.writers import write


class ExportMismatchError(RuntimeError):
    """An export whose embeddings disagree with the Keras embedder's."""


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What was written and how closely it reproduces the Keras embedder.

    Attributes:
        path: the export (a directory for SavedModel).
        format: its format name.
        size_bytes: its size on disk (all files for SavedModel).
        max_abs_error: the largest absolute difference between its
            embeddings and the Keras embedder's on the check images.
        mean_cosine: the mean cosine similarity between the two, per image.
        parity_images: which images those two numbers were measured on
            (`ParityImages.describe()`); for int8, images held out of the
            calibration.
        check_names: the name of each check image (a path relative to its
            folder, `array[i]` or `synthetic[i]`).
    """

    path: str
    format: str
    size_bytes: int
    max_abs_error: float
    mean_cosine: float
    parity_images: str = ""
    check_names: tuple = ()


def export(
    model_or_embedder,
    path,
    format="saved_model",
    representative_data=None,
    check_inputs=None,
    int8_io=False,
):
    """Exports an embedding network and checks the export against Keras.

    The exported graph takes raw images (float32, 0-255, fixed height, width
    and channels, any batch size) and contains the recipe's normalisation,
    which is also written, with the input shape and embedding size, to the
    JSON file `<path>.json`. That file is written only once the export
    agrees with Keras: float formats to `1e-4` (max abs error, scaled by the
    largest embedding magnitude above 1) and mean cosine 0.9999, fp16 to
    mean cosine 0.999, int8 to mean cosine 0.99.

    Args:
        model_or_embedder: a zoo `FaceModel` (its `embedder` is exported) or
            a functional Keras model from images to embeddings.
        path: the file to write (a directory for `"saved_model"`).
        format: one of `"saved_model"`, `"tflite"`, `"tflite_fp16"`,
            `"tflite_int8"` and `"onnx"`. Defaults to `"saved_model"`.
        representative_data: aligned face images calibrating `"tflite_int8"`
            (required there): an array `(n, height, width, channels)` of
            values in [0, 255] or a folder of images; a few hundred suffice.
            For `"tflite_int8"` a quarter of them (at most 64, spread evenly)
            is held out of the calibration and checks the parity; other
            formats, which calibrate on nothing, are checked on the first 64.
        check_inputs: images (array or folder) for the parity check instead;
            for `"tflite_int8"` they must not repeat a representative image.
            Defaults to the held-out or first representative images, else to
            8 deterministic synthetic images.
        int8_io: `"tflite_int8"` only: give the model int8 input and output
            (quantisation parameters in the metadata) instead of float32.
            Defaults to `False`.

    Returns:
        An `ExportReport`.

    Raises:
        TypeError: an object that is neither a Keras model nor has an
            `embedder` Keras model.
        ValueError: an unknown format, a model without a fixed input size,
            `"tflite_int8"` without representative data, or a TFLite
            conversion that needs non-builtin (Flex) operators.
        ImportError: a missing optional export package.
        ExportMismatchError: the export's embeddings disagree with Keras.

    Examples:
    ```python
    model = kerasface.zoo.build("mobilefacenet_arcface")
    report = kerasface.export.export(
        model, "mobilefacenet_int8.tflite", format="tflite_int8",
        representative_data="aligned_faces/",
    )
    ```
    """
    fmt = get_format(format)
    embedder = getattr(model_or_embedder, "embedder", model_or_embedder)
    recipe = getattr(model_or_embedder, "recipe", None)
    _check_backend()
    if not isinstance(embedder, keras.Model):
        raise TypeError(
            "Export needs a Keras model or an object with an `embedder` Keras model. "
            f"Received: model_or_embedder={type(model_or_embedder).__name__}"
        )
    spec = ImageSpec.of(embedder)
    if int8_io and fmt.name != "tflite_int8":
        raise ValueError(f"int8_io applies to format='tflite_int8' only. Received: format={format!r}")
    if fmt.name == "tflite_int8" and representative_data is None:
        raise ValueError(
            "format='tflite_int8' needs representative_data to calibrate the quantisation: "
            "an array or a folder of a few hundred aligned face images. "
            "Received: representative_data=None"
        )
    for module in fmt.requires:
        require(module, f"Export to {fmt.name}")

    images = parity_images(spec, fmt.calibrated, representative_data, check_inputs)
    inputs = images.check

    # Keras' ONNX export needs a model that has been called: compute the reference first.
    reference = KerasRuntime(embedder)(inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata_path(path).unlink(missing_ok=True)  # no stale metadata beside an unchecked export
    write(embedder, path, fmt, calibration=images.calibration, int8_io=int8_io)
    runtime = load_runtime(fmt, path)
    max_abs_error, mean_cosine = agreement(reference, runtime(inputs))
    report = ExportReport(
        str(path),
        fmt.name,
        size_on_disk(path),
        max_abs_error,
        mean_cosine,
        parity_images=images.describe(),
        check_names=images.check_names,
    )
    _check_agreement(report, fmt, reference)
    io_details = (runtime.input_details, runtime.output_details) if isinstance(runtime, TFLiteRuntime) else None
    write_metadata(path, describe(embedder, spec, fmt, report, recipe, io_details, images))
    return report


def agreement(reference, candidate):
    """`(max_abs_error, mean_cosine)` between two `(n, dim)` embedding arrays."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ExportMismatchError(
            "The export returns embeddings of another shape than the Keras embedder. "
            f"Received: keras_shape={reference.shape}, export_shape={candidate.shape}"
        )
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosines = np.sum(reference * candidate, axis=1) / np.maximum(norms, np.finfo(np.float64).tiny)
    return float(np.max(np.abs(reference - candidate))), float(np.mean(cosines))


def _check_agreement(report, fmt, reference):
    bounds = [f"mean cosine >= {fmt.min_cosine:g}"]
    passed = report.mean_cosine >= fmt.min_cosine
    if fmt.max_abs_error is not None:
        scale = max(1.0, float(np.max(np.abs(reference))))
        bounds.append(f"max abs error <= {fmt.max_abs_error * scale:.3g}")
        passed = passed and report.max_abs_error <= fmt.max_abs_error * scale
    if not passed:
        raise ExportMismatchError(
            f"The {fmt.name} export at {report.path} disagrees with the Keras embedder on "
            f"{len(reference)} check images (needed: {' and '.join(bounds)}), so the export is "
            f"wrong. Received: max_abs_error={report.max_abs_error:.3g}, "
            f"mean_cosine={report.mean_cosine:.6f}"
        )


def _check_backend():
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            "Export runs on the TensorFlow backend: save the model as `.keras`, set "
            f"KERAS_BACKEND=tensorflow, load it and export again. Received: backend={backend!r}"
        )


def size_on_disk(path):
    """Bytes of the file at `path`, or of all files under it for a directory."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
