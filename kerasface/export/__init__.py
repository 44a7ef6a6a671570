"""Export embedders for phones and edge devices: SavedModel, TFLite and ONNX.

`export(model, path, format=...)` writes the embedding network with its
normalisation inside, a JSON metadata file beside it, and checks the export's
embeddings against Keras with the export's own runtime.
"""

from kerasface.export.exporter import (
    ExportMismatchError,
    ExportReport,
    agreement,
    export,
    size_on_disk,
)
from kerasface.export.formats import FORMATS, Format, get_format
from kerasface.export.images import (
    MAX_CHECK_IMAGES,
    ImageSpec,
    ParityImages,
    load_images,
    parity_images,
    synthetic_images,
)
from kerasface.export.metadata import metadata_path
from kerasface.export.runtimes import (
    KerasRuntime,
    OnnxRuntime,
    SavedModelRuntime,
    TFLiteRuntime,
    latency_per_image,
    limit_tensorflow_threads,
    load_runtime,
)
from kerasface.export.tflite_ops import check_builtin_ops, operators

__all__ = [
    "FORMATS",
    "MAX_CHECK_IMAGES",
    "ExportMismatchError",
    "ExportReport",
    "Format",
    "ImageSpec",
    "KerasRuntime",
    "OnnxRuntime",
    "ParityImages",
    "SavedModelRuntime",
    "TFLiteRuntime",
    "agreement",
    "check_builtin_ops",
    "export",
    "get_format",
    "latency_per_image",
    "limit_tensorflow_threads",
    "load_images",
    "load_runtime",
    "metadata_path",
    "operators",
    "parity_images",
    "size_on_disk",
    "synthetic_images",
]
