"""The export formats and the agreement each must reach with the Keras embedder."""

import dataclasses

# Float exports compute the same float32 graph: differences are round-off only.
# The absolute bound holds for embeddings within [-1, 1] and grows with larger
# ones (untrained or unnormalised embedders reach 1e6); the cosine bound
# catches wrong exports of embedders whose outputs are tiny.
FLOAT_MAX_ABS_ERROR = 1e-4
FLOAT_MIN_COSINE = 0.9999
# Half-precision weights keep about 3 significant digits.
FP16_MIN_COSINE = 0.999
# Full-integer quantisation with 8-bit activations and weights.
INT8_MIN_COSINE = 0.99


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format.

    Attributes:
        name: the name `export` accepts.
        suffix: appended to a file stem to name the export (a directory for
            SavedModel).
        runtime: the runtime that loads the export for the parity check.
        requires: the optional modules writing and checking it needs.
        min_cosine: smallest allowed mean cosine to the Keras embeddings.
        max_abs_error: largest allowed absolute difference to the Keras
            embeddings, times the largest embedding magnitude where that
            exceeds 1; `None` if the format is checked by cosine only.
        calibrated: whether writing it calibrates on representative images
            (full-integer quantisation); its parity is then measured on
            other, held-out images.
    """

    name: str
    suffix: str
    runtime: str
    requires: tuple
    min_cosine: float
    max_abs_error: float | None = None
    calibrated: bool = False


_LITERT = ("ai_edge_litert",)
_FLOAT = {"min_cosine": FLOAT_MIN_COSINE, "max_abs_error": FLOAT_MAX_ABS_ERROR}
FORMATS = {
    f.name: f
    for f in (
        Format("saved_model", "_saved_model", "tensorflow", (), **_FLOAT),
        Format("tflite", ".tflite", "litert", _LITERT, **_FLOAT),
        Format("tflite_fp16", "_fp16.tflite", "litert", _LITERT, FP16_MIN_COSINE),
        Format("tflite_int8", "_int8.tflite", "litert", _LITERT, INT8_MIN_COSINE, calibrated=True),
        Format("onnx", ".onnx", "onnxruntime", ("tf2onnx", "onnx", "onnxruntime"), **_FLOAT),
    )
}


def get_format(name):
    """Returns the `Format` called `name`, or raises `ValueError` listing the valid ones."""
    if name not in FORMATS:
        raise ValueError(f"Unknown export format. Expected one of {sorted(FORMATS)}. Received: format={name!r}")
    return FORMATS[name]
