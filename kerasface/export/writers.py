"""Writing an embedder in each export format.

SavedModel and ONNX come from Keras 3's `Model.export`; TFLite files are
converted from a SavedModel with `tf.lite.TFLiteConverter`, restricted to the
builtin operators (no Flex / Select TF ops). Each is written under a
temporary name beside its path and renamed onto it (`kerasface.checkpoints`),
so a failed or killed export never leaves a partial file.
"""

import tempfile
from pathlib import Path

from kerasface.checkpoints import atomic_path, write_bytes
from kerasface.export.tflite_ops import check_builtin_ops


def write(embedder, path, format, calibration=None, int8_io=False):
    """Writes `embedder` to `path` in `format` (a `Format`).

    Args:
        embedder: a functional Keras model from raw images to embeddings.
        path: the file (a directory for SavedModel) to write.
        format: the `Format` to write.
        calibration: float32 images for full-integer quantisation; needed
            by `tflite_int8` only.
        int8_io: `tflite_int8` only: if `True` the model takes and returns
            int8 tensors (see the quantisation parameters in its metadata);
            else its input and output stay float32.
    """
    path = Path(path)
    if format.name in ("saved_model", "onnx"):
        # Written beside `path` and renamed onto it: an export killed half-way leaves the previous file whole.
        keras_format = "tf_saved_model" if format.name == "saved_model" else "onnx"
        with atomic_path(path) as partial:
            embedder.export(str(partial), format=keras_format, verbose=False)
    else:
        model_bytes = tflite_bytes(embedder, _QUANTIZERS[format.name](calibration, int8_io))
        check_builtin_ops(model_bytes, f"The {format.name} export of {embedder.name!r}")
        write_bytes(path, model_bytes)


def tflite_bytes(embedder, quantize):
    """Converts `embedder` to a TFLite flatbuffer with builtin operators only.

    Args:
        embedder: the Keras model to convert.
        quantize: a function that sets the quantisation options of a
            `tf.lite.TFLiteConverter`.
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    with tempfile.TemporaryDirectory() as folder:
        embedder.export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        quantize(converter)
        try:
            return converter.convert()
        except ConverterError as error:
            # The converter lists the culprits on lines like "TF Select ops: Cumprod".
            unsupported = [line.strip() for line in str(error).splitlines() if " ops: " in line]
            raise ValueError(
                f"TFLite conversion of {embedder.name!r} with builtin operators only failed: "
                "the model uses TensorFlow ops that have no TFLite kernel (Flex / Select TF "
                "ops are not allowed, phone and edge runtimes cannot run them). "
                f"Received: {unsupported or str(error).splitlines()[0]}"
            ) from error


def _float32(calibration, int8_io):
    return lambda converter: None


def _float16(calibration, int8_io):
    """Float16 weights, float32 compute: half the file size."""
    import tensorflow as tf

    def quantize(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    return quantize


def _int8(calibration, int8_io):
    """Post-training full-integer quantisation, calibrated on `calibration` images.

    Reference:
    - [Jacob et al., 2018](https://arxiv.org/abs/1712.05877)
    """
    import tensorflow as tf

    def representative_dataset():
        for image in calibration:
            yield [image[None]]

    def quantize(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if int8_io else tf.float32
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type

    return quantize


_QUANTIZERS = {"tflite": _float32, "tflite_fp16": _float16, "tflite_int8": _int8}
