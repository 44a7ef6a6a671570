"""`kerasface export` on a saved tiny embedder: every format, its table and its errors."""

import argparse
import json

import cv2
import keras
import numpy as np
import pytest

from kerasface.cli import export as export_cli
from kerasface.export import FORMATS, ImageSpec, synthetic_images
from tests.export.models import INPUT_SHAPE, tiny_embedder


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="kerasface")
    export_cli.register(parser.add_subparsers())
    args = parser.parse_args(["export", *map(str, argv)])
    return args.func(args)


@pytest.fixture(scope="module")
def saved_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_embedder().save(path)
    return path


def test_all_formats_print_parity_size_and_latency(saved_model_file, tmp_path, capsys):
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, image in enumerate(synthetic_images(ImageSpec(*INPUT_SHAPE), count=24, seed=2)):
        cv2.imwrite(str(faces / f"{i}.jpg"), image.astype(np.uint8))
    out = tmp_path / "out"
    assert run_cli(saved_model_file, out, "--format", "all", "--representative", faces) == 0

    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line[:1] != " "}
    # int8 is checked on a quarter of the 24 faces, held out of its calibration; the others on 8 synthetic images.
    assert "  parity measured on 6 held-out representative images, disjoint from the 18 that calibrate" in printed
    assert printed.count("  parity measured on the first 24 representative images") == 4
    assert set(rows) == {"format", "keras", *FORMATS}
    for name, fmt in FORMATS.items():
        _, runtime, _, unit, max_abs_error, mean_cosine, milliseconds = rows[name]
        assert runtime == fmt.runtime and unit in ("kB", "MB") and float(milliseconds) > 0
        assert float(mean_cosine) >= fmt.min_cosine
        if fmt.max_abs_error is not None:
            assert float(max_abs_error) <= 1e-4
        metadata = json.loads((out / f"tiny{fmt.suffix}.json").read_text())
        assert metadata["format"] == name and metadata["input"]["shape"] == [None, *INPUT_SHAPE]


def test_a_model_without_fixed_size_fails_with_the_reason(tmp_path, capsys):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    model.save(tmp_path / "any_size.keras")
    assert run_cli(tmp_path / "any_size.keras", tmp_path, "--format", "onnx") == 1
    assert "fixed input size" in capsys.readouterr().err


def test_unknown_format_is_rejected_with_the_choices(saved_model_file, tmp_path, capsys):
    assert run_cli(saved_model_file, tmp_path, "--format", "coreml") == 2
    error = capsys.readouterr().err
    assert "format='coreml'" in error and all(name in error for name in FORMATS)
    assert not list(tmp_path.iterdir())


def test_a_saved_zoo_model_exports_its_embedder(tmp_path, capsys):
    from kerasface import zoo

    zoo.build("lenetpp_softmax", compile=False).save(tmp_path / "lenetpp.keras")
    assert run_cli(tmp_path / "lenetpp.keras", tmp_path, "--format", "tflite") == 0
    metadata = json.loads((tmp_path / "lenetpp.tflite.json").read_text())
    assert (metadata["name"], metadata["embedding_dim"]) == ("lenetpp_softmax", 2)
    assert "tflite" in capsys.readouterr().out
