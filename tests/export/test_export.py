"""Every export format on a tiny embedder, checked with each format's own runtime."""

import dataclasses
import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

import kerasface
from kerasface import export as kexport
from tests.export.models import EMBEDDING_DIM, INPUT_SHAPE, tiny_embedder

FORMAT_NAMES = ["saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx"]
SPEC = kexport.ImageSpec(*INPUT_SHAPE)


@pytest.fixture(scope="module")
def embedder():
    return tiny_embedder()


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    """48 aligned-face stand-ins written as PNG files, for int8 calibration."""
    folder = tmp_path_factory.mktemp("faces")
    for i, image in enumerate(kexport.synthetic_images(SPEC, count=48, seed=1)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module", params=FORMAT_NAMES)
def exported(request, embedder, face_folder, tmp_path_factory):
    name = request.param
    path = tmp_path_factory.mktemp("exports") / f"tiny{kexport.FORMATS[name].suffix}"
    representative = face_folder if name == "tflite_int8" else None
    return kexport.export(embedder, path, format=name, representative_data=representative)


def fresh_images(count):
    """Images the parity check did not see, at a batch size other than 1."""
    return kexport.synthetic_images(SPEC, count=count, seed=7)


def run_independently(report, images):
    """Embeddings from the export file, loaded with each runtime's own API."""
    if report.format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(report.path)  # kept alive: `serve` uses its variables
        return loaded.serve(tf.constant(images)).numpy()
    if report.format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(report.path, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: images})[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=report.path)
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inputs["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(outputs["index"])


def mean_cosine(a, b):
    return float(np.mean(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def test_report_describes_the_file_and_its_agreement(exported):
    path = Path(exported.path)
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    assert exported.size_bytes == sum(p.stat().st_size for p in files) > 0
    if exported.format in ("saved_model", "tflite", "onnx"):
        assert exported.max_abs_error <= 1e-4
        assert exported.mean_cosine == pytest.approx(1.0, abs=1e-6)
    elif exported.format == "tflite_fp16":
        assert exported.mean_cosine >= 0.999
    else:
        # Quantised for real: visibly different, yet pointing the same way.
        assert 1e-3 < exported.max_abs_error < 0.2
        assert exported.mean_cosine >= 0.99


def test_export_agrees_with_keras_at_another_batch_size(exported, embedder):
    images = fresh_images(3)
    expected = embedder.predict(images, verbose=0)
    actual = run_independently(exported, images)
    assert actual.shape == (3, EMBEDDING_DIM)
    if exported.format in ("saved_model", "tflite", "onnx"):
        np.testing.assert_allclose(actual, expected, atol=1e-4)
    else:
        assert mean_cosine(actual, expected) >= (0.999 if exported.format == "tflite_fp16" else 0.99)
    # The normalisation is baked in: raw 0-255 pixels give unit-length embeddings.
    np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, atol=0.05)


def test_tflite_exports_use_builtin_ops_of_their_precision(exported):
    if not exported.format.startswith("tflite"):
        pytest.skip("TFLite only")
    from ai_edge_litert.interpreter import Interpreter

    ops = kexport.operators(Path(exported.path).read_bytes())
    assert all(is_builtin for _, is_builtin in ops)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "FULLY_CONNECTED"} <= {name for name, _ in ops}
    tensor_types = {d["dtype"] for d in Interpreter(model_path=exported.path).get_tensor_details()}
    expected_type = {"tflite": np.float32, "tflite_fp16": np.float16, "tflite_int8": np.int8}
    assert expected_type[exported.format] in tensor_types
    if exported.format == "tflite":
        assert np.float16 not in tensor_types and np.int8 not in tensor_types


def test_metadata_file_beside_the_export(exported):
    metadata = json.loads(Path(exported.path + ".json").read_text())
    assert metadata["format"] == exported.format
    assert metadata["kerasface_version"] == kerasface.__version__
    assert metadata["input"] == {
        "shape": [None, 32, 32, 3],
        "layout": "NHWC",
        "dtype": "float32",
        "value_range": [0.0, 255.0],
    }
    assert metadata["output"] == {"shape": [None, EMBEDDING_DIM], "dtype": "float32"}
    assert metadata["embedding_dim"] == EMBEDDING_DIM
    assert metadata["preprocessing_in_model"] is True
    assert metadata["parity"] | {"check_images": None} == {
        "max_abs_error": exported.max_abs_error,
        "mean_cosine": exported.mean_cosine,
        "images": exported.parity_images,
        "source": "held_out" if exported.format == "tflite_int8" else "synthetic",
        "check_images": None,
        "calibration_images": 36 if exported.format == "tflite_int8" else 0,
    }
    # int8 calibrates on 36 of the 48 face images and is checked on the other 12, named in the metadata.
    assert len(metadata["parity"]["check_images"]) == (12 if exported.format == "tflite_int8" else 8)


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    input_shape: tuple
    preprocessing: str


def test_face_model_exports_only_its_embedder(embedder, tmp_path):
    # A training model whose output is 10 logits; only the 16-d embedder ships.
    model = keras.Model(embedder.input, keras.layers.Dense(10, name="logits")(embedder.output))
    model.embedder = embedder
    model.recipe = Recipe("tiny_arcface", INPUT_SHAPE, "(x - 127.5) / 128")
    report = kexport.export(model, tmp_path / "face.onnx", format="onnx")
    metadata = json.loads((tmp_path / "face.onnx.json").read_text())
    assert (metadata["name"], metadata["preprocessing"]) == ("tiny_arcface", "(x - 127.5) / 128")
    assert metadata["embedding_dim"] == EMBEDDING_DIM
    assert report.max_abs_error <= 1e-4


def test_int8_io_quantises_input_and_output(embedder, tmp_path):
    calibration = kexport.synthetic_images(SPEC, count=32, seed=3)
    report = kexport.export(
        embedder, tmp_path / "io.tflite", format="tflite_int8", representative_data=calibration, int8_io=True
    )
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=report.path)
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inputs["dtype"] == outputs["dtype"] == np.int8
    metadata = json.loads((tmp_path / "io.tflite.json").read_text())
    scale, zero_point = inputs["quantization"]
    assert metadata["input"]["quantization"] == {"scale": pytest.approx(scale), "zero_point": zero_point}
    # The calibration images span ~[0, 255], i.e. about one unit per int8 step.
    assert scale == pytest.approx(1.0, rel=0.05) and zero_point == -128
    assert metadata["output"]["dtype"] == "int8"
    assert report.mean_cosine >= 0.99


def test_agreement_hand_computed():
    reference = np.array([[1.0, 0.0], [0.0, 2.0]])
    candidate = np.array([[1.0, 0.0], [1.0, 1.0]])
    max_abs_error, cosine = kexport.agreement(reference, candidate)
    assert max_abs_error == 1.0
    assert cosine == pytest.approx((1.0 + 1 / np.sqrt(2)) / 2)


def test_folder_images_are_rgb_and_resized(tmp_path):
    bgr = np.zeros((40, 48, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's channel order
    cv2.imwrite(str(tmp_path / "face.png"), bgr)
    images = kexport.load_images(tmp_path, SPEC)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0, 5, 5], [0.0, 0.0, 200.0])


def test_a_model_never_called_exports_to_onnx(tmp_path):
    report = kexport.export(tiny_embedder(seed=1), tmp_path / "fresh.onnx", format="onnx")
    assert report.max_abs_error <= 1e-4


def test_zoo_face_model_records_its_recipe(tmp_path):
    from kerasface import zoo

    model = zoo.build("lenetpp_center", compile=False)  # a head and a centre loss beside the embedder
    report = kexport.export(model, tmp_path / "lenetpp.tflite", format="tflite")
    metadata = json.loads((tmp_path / "lenetpp.tflite.json").read_text())
    assert metadata["name"] == "lenetpp_center"
    assert metadata["preprocessing"] == model.recipe.preprocessing.description == "(x - 127.5) / 128"
    assert metadata["input"]["shape"] == [None, 28, 28, 1]
    assert metadata["embedding_dim"] == model.recipe.embedding_dim == 2
    images = kexport.synthetic_images(kexport.ImageSpec(28, 28, 1), count=4, seed=8)
    expected = model.predict(images, verbose=0)  # FaceModel.predict gives the embeddings
    np.testing.assert_allclose(kexport.TFLiteRuntime(report.path)(images), expected, rtol=1e-4, atol=1e-4)
