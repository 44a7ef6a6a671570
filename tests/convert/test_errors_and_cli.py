"""Bad checkpoints are refused with errors naming what is wrong, and nothing is half-loaded or written."""

import io
import os
import pickle
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasface import convert, zoo
from kerasface.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints"


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def _torch_zip(path, payload):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        archive.writestr("archive/version", "3\n")


def test_pickle_naming_os_system_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _torch_zip(tmp_path / "evil.pth", {"conv1.weight": _Payload()})
    with pytest.raises(ValueError, match=r"refusing to load: the pickle names (posix|os|nt)\.system"):
        convert.read_state_dict(tmp_path / "evil.pth")
    legacy = io.BytesIO()
    for value in (convert.torch_pickle.LEGACY_MAGIC, 1001, {"little_endian": True}, _Payload()):
        pickle.dump(value, legacy, protocol=2)
    (tmp_path / "evil_legacy.pth").write_bytes(legacy.getvalue())
    with pytest.raises(ValueError, match=r"system"):
        convert.read_state_dict(tmp_path / "evil_legacy.pth")
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()


def test_whole_model_pickle_is_refused_with_a_hint(tmp_path):
    _torch_zip(tmp_path / "model.pth", _Whole())
    with pytest.raises(ValueError, match=r"names .*_Whole.*state_dict\(\)"):
        convert.read_state_dict(tmp_path / "model.pth")


class _Whole:
    pass


@pytest.mark.parametrize("name", ["mobilefacenet.pth", "sphere_small_legacy.pth", "mobilefacenet.onnx"])
def test_truncated_files_are_refused(tmp_path, name):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated|corrupt"):
        convert.read_checkpoint(path)


def test_reader_matches_the_legacy_and_zip_formats():
    zipped = convert.read_state_dict(FIXTURES / "iresnet_small.pth")
    legacy = convert.read_state_dict(FIXTURES / "iresnet_small_legacy.pth")
    assert list(zipped) == list(legacy)
    assert zipped["layer1.0.bn1.num_batches_tracked"].dtype == np.int64
    for key in zipped:
        np.testing.assert_array_equal(zipped[key], legacy[key])
    assert zipped["conv1.weight"].shape == (8, 3, 3, 3)


def test_other_architecture_is_refused_and_nothing_is_loaded():
    recipe = zoo.recipe("mobilefacenet_arcface")
    embedder = zoo.make_embedder(recipe)
    before = [keras.ops.convert_to_numpy(w).copy() for w in embedder.weights]
    with pytest.raises(ValueError, match=r"sphere20a.*fits the recipes sphereface20"):
        convert.load_weights(embedder, FIXTURES / "sphere_small.pth", recipe)
    with pytest.raises(ValueError, match=r"ONNX graph does not have the expected structure"):
        convert.load_weights(embedder, FIXTURES / "iresnet_small.onnx", recipe)
    for weight, value in zip(embedder.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), value)


def test_wrong_width_lists_shapes_and_loads_nothing():
    recipe = zoo.recipe("iresnet50_arcface").replace(backbone_args={"depth": 18}, input_shape=(32, 32, 3),
                                                     embedding_dim=16)
    embedder = zoo.make_embedder(recipe)
    before = keras.ops.convert_to_numpy(embedder.weights[0]).copy()
    with pytest.raises(ValueError) as error:
        convert.load_weights(embedder, FIXTURES / "iresnet_small.pth", recipe)
    message = str(error.value)
    assert "nothing was loaded" in message and "wrong shapes: conv1.weight: (8, 3, 3, 3)" in message
    assert "(2, 2, 2, 2) (iresnet18)" in message
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(embedder.weights[0]), before)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = convert.read_state_dict(FIXTURES / "iresnet_small.pth")
    state.pop("layer2.1.bn1.running_var")
    state["layer5.0.conv1.weight"] = np.zeros((1,), np.float32)
    import importlib

    module = importlib.import_module("kerasface.backbones.iresnet")
    filters = module.STAGE_FILTERS
    module.STAGE_FILTERS = (8, 16, 16, 32)
    try:
        backbone = module.iresnet(18, input_shape=(32, 32, 3), embedding_dim=16)
    finally:
        module.STAGE_FILTERS = filters
    with pytest.raises(ValueError, match=r"missing keys: layer2\.1\.bn1\.running_var.*unexpected keys: layer5\.0"):
        convert.load_state(backbone, state, "arcface_iresnet")


def test_nonzero_bias_the_backbone_lacks_is_refused(monkeypatch):
    import importlib

    sphere = importlib.import_module("kerasface.backbones.sphereface")
    monkeypatch.setattr(sphere, "STAGE_FILTERS", (8, 8, 16, 16))
    state = convert.read_state_dict(FIXTURES / "sphere_small.pth")
    state["conv2_2.bias"] = state["conv2_2.bias"] + 0.5
    backbone = sphere.sphereface(20, embedding_dim=16)
    with pytest.raises(ValueError, match=r"conv2_2.bias is not all 0.*has no bias"):
        convert.load_state(backbone, state, "sphere20a", extras={"fc6.weight"})


def test_onnx_without_the_expected_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 112, 112])])
    onnx.save(helper.make_model(graph), tmp_path / "relu.onnx")
    recipe = zoo.recipe("mobilefacenet_arcface")
    with pytest.raises(ValueError, match=r"Keras layer 'conv1'.*needs a Conv.*the end of the graph"):
        convert.load_weights(zoo.make_embedder(recipe), tmp_path / "relu.onnx", recipe)


def test_cli_converts_with_parity_and_writes_nothing_on_failure(tmp_path, capsys):
    out = tmp_path / "mbf.keras"
    assert main(["convert", str(FIXTURES / "mobilefacenet.onnx"), str(out), "--recipe", "mobilefacenet_arcface",
                 "--num-classes", "10"]) == 0
    printed = capsys.readouterr().out
    assert "parity:        onnxruntime on 8 images" in printed and "mean cos 1.0000000" in printed
    model = keras.saving.load_model(out, compile=False)
    data = np.load(FIXTURES / "mobilefacenet_reference.npz")
    actual = keras.ops.convert_to_numpy(model.embedder(data["images"]))
    scale = np.abs(data["embeddings"]).max()
    assert np.abs(actual - data["embeddings"]).max() <= 1e-4 * scale

    bad = tmp_path / "bad.keras"
    assert main(["convert", str(FIXTURES / "mobilefacenet.pth"), str(bad), "--recipe", "facenet"]) == 1
    assert "fits the recipes mobilefacenet_arcface" in capsys.readouterr().err
    assert not bad.exists() and not list(tmp_path.glob(".bad*"))
