"""Clear errors: bad formats, inputs, missing packages, Flex ops and wrong exports."""

import sys

import keras
import numpy as np
import pytest
from keras import ops

from kerasface import export as kexport
from tests.export.models import INPUT_SHAPE, tiny_embedder

SPEC = kexport.ImageSpec(*INPUT_SHAPE)


@pytest.fixture(scope="module")
def embedder():
    return tiny_embedder()


def test_unknown_format_lists_the_valid_ones(embedder, tmp_path):
    with pytest.raises(ValueError, match="format='coreml'") as error:
        kexport.export(embedder, tmp_path / "m", format="coreml")
    for name in ("saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx"):
        assert name in str(error.value)
    assert not list(tmp_path.iterdir())


def test_int8_needs_representative_data(embedder, tmp_path):
    with pytest.raises(ValueError, match="representative_data"):
        kexport.export(embedder, tmp_path / "m.tflite", format="tflite_int8")


def test_int8_io_only_for_int8(embedder, tmp_path):
    with pytest.raises(ValueError, match="int8_io"):
        kexport.export(embedder, tmp_path / "m.tflite", format="tflite", int8_io=True)


def test_input_size_must_be_fixed(tmp_path):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))
    with pytest.raises(ValueError, match=r"fixed input size.*input_shape=\(None, None, None, 3\)"):
        kexport.export(model, tmp_path / "m.onnx", format="onnx")


def test_representative_array_of_wrong_size(embedder, tmp_path):
    with pytest.raises(ValueError, match=r"\(n, 32, 32, 3\).*shape=\(4, 28, 28, 3\)"):
        kexport.export(
            embedder,
            tmp_path / "m.tflite",
            format="tflite_int8",
            representative_data=np.zeros((4, 28, 28, 3)),
        )


def test_empty_image_folder(embedder, tmp_path):
    with pytest.raises(ValueError, match="No images"):
        kexport.export(embedder, tmp_path / "m.tflite", format="tflite_int8", representative_data=tmp_path)


def test_missing_optional_dependency_names_the_extra(embedder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'onnxruntime.*pip install "kerasface\[export\]"'):
        kexport.export(embedder, tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


class CumulativeProduct(keras.layers.Layer):
    """`cumprod` has no TFLite builtin kernel: only a Flex op could run it."""

    def call(self, x):
        return ops.cumprod(x, axis=-1)


def test_ops_without_builtin_kernels_are_refused(tmp_path):
    inputs = keras.Input(INPUT_SHAPE)
    outputs = CumulativeProduct()(keras.layers.GlobalAveragePooling2D()(inputs))
    with pytest.raises(ValueError, match="builtin operators only.*Cumprod"):
        kexport.export(keras.Model(inputs, outputs), tmp_path / "m.tflite", format="tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_flex_ops_in_a_flatbuffer_are_detected():
    import tensorflow as tf

    function = tf.function(
        lambda x: tf.math.cumprod(x, axis=1), input_signature=[tf.TensorSpec((1, 4), tf.float32)]
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    model_bytes = converter.convert()
    assert ("FlexCumprod", False) in kexport.operators(model_bytes)
    with pytest.raises(ValueError, match=r"custom_ops=\['FlexCumprod'\]"):
        kexport.check_builtin_ops(model_bytes, "This model")


def perturb_runtime(monkeypatch, change):
    """Makes `export` see `change(embeddings)` from the export's runtime."""
    load_runtime = kexport.exporter.load_runtime

    def perturbed(format, path):
        runtime = load_runtime(format, path)
        return lambda images: change(runtime(images))

    monkeypatch.setattr(kexport.exporter, "load_runtime", perturbed)


def scaled_embedder(scale):
    """The tiny embedder with its unit-length embeddings multiplied by `scale`."""
    embedder = tiny_embedder()
    outputs = keras.layers.Rescaling(scale, name="scale")(embedder.output)
    return keras.Model(embedder.input, outputs)


def test_an_export_that_disagrees_is_refused(embedder, tmp_path, monkeypatch):
    perturb_runtime(monkeypatch, lambda embeddings: embeddings + 1e-3)
    (tmp_path / "m.json").write_text("{}")  # from an earlier, good export
    with pytest.raises(kexport.ExportMismatchError, match=r"max abs error <= 0.0001.*max_abs_error=0.001"):
        kexport.export(embedder, tmp_path / "m", format="saved_model")
    assert not (tmp_path / "m.json").exists()


def test_float_tolerance_grows_with_the_embedding_magnitude(tmp_path, monkeypatch):
    # Embeddings up to ~1e4: a relative change of 1e-6 is float32 round-off.
    perturb_runtime(monkeypatch, lambda embeddings: embeddings * (1 + 1e-6))
    report = kexport.export(scaled_embedder(1e4), tmp_path / "m", format="saved_model")
    assert 1e-4 < report.max_abs_error < 1e-1


def test_tiny_embeddings_are_still_checked_by_cosine(tmp_path, monkeypatch):
    # Embeddings ~1e-6 pass any absolute bound; reversing half of them must not.
    def reverse_half(embeddings):
        return np.concatenate([embeddings[:4], -embeddings[4:]])

    perturb_runtime(monkeypatch, reverse_half)
    with pytest.raises(kexport.ExportMismatchError, match=r"mean cosine >= 0.9999.*mean_cosine=0.0000"):
        kexport.export(scaled_embedder(1e-6), tmp_path / "m", format="saved_model")


def test_an_object_without_a_keras_embedder_is_refused(tmp_path):
    with pytest.raises(TypeError, match="model_or_embedder=str"):
        kexport.export("model.keras", tmp_path / "m.onnx", format="onnx")
