"""The command line and the examples, at tiny sizes."""

import csv
import runpy
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from kerasface.cli.main import main
from kerasface.train import train

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny_faces(tmp_path_factory):
    """Two identities of 28x28 grey images, told apart by a bright band."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for identity in range(2):
        folder = root / f"person_{identity}"
        folder.mkdir()
        for i in range(8):
            image = rng.integers(0, 60, (28, 28), dtype=np.uint8)
            image[identity * 14 : identity * 14 + 14] += 150
            cv2.imwrite(str(folder / f"{i}.png"), image)
    return root


def run_example(name, *argv):
    sys.argv = [name, *argv]
    namespace = runpy.run_path(str(EXAMPLES / name))
    return namespace["main"]


class Interrupt(Exception):
    pass


class InterruptAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt


def test_interrupted_training_resumes_where_it_stopped(tiny_faces, tmp_path):
    out = tmp_path / "run"
    settings = dict(epochs=3, batch_size=4, verbose=0)
    with pytest.raises(Interrupt):
        train("lenetpp_sphereface", str(tiny_faces), out, callbacks=[InterruptAfterEpoch(1)], **settings)
    assert (out / "checkpoint.keras").exists() and not (out / "model.keras").exists()
    model, history = train("lenetpp_sphereface", str(tiny_faces), out, resume=True, **settings)
    assert len(history.history["loss"]) == 1  # only epoch 3 was left
    steps = 16 // 4
    assert int(model.optimizer.iterations) == 3 * steps
    assert int(model.head.iteration) == 3 * steps  # the lambda counter went on too
    with open(out / "log.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]


def test_train_command_writes_its_outputs_and_refuses_to_overwrite(tiny_faces, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "lenetpp_softmax", "--data", str(tiny_faces), "--out", str(out), "--batch-size", "4"]
    assert main(args + ["--epochs", "1"]) == 0
    for name in ("model.keras", "embedder.keras", "checkpoint.keras", "log.csv", "class_names.json"):
        assert (out / name).exists(), name
    assert main(args + ["--epochs", "2"]) == 2
    assert "already holds a trained model" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 2
    assert "no interrupted run" in capsys.readouterr().err


def test_train_reports_missing_data_and_unknown_recipe(tmp_path, capsys):
    assert main(["train", "lenetpp_softmax", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "lenetpp_sofmax", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean lenetpp_softmax" in capsys.readouterr().err


def test_zoo_lists_recipes(capsys):
    assert main(["zoo", "sphereface*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["sphereface10", "sphereface20", "sphereface36", "sphereface4", "sphereface64"]
    assert "112x96x3" in lines[1] and "sphereface" in lines[1]


def test_example_train_image_folder(tiny_faces, tmp_path):
    example = run_example("train_image_folder.py")
    model = example([str(tiny_faces), "--recipe", "sphereface4", "--input-shape", "28", "24", "1",
                     "--batch-size", "4", "--out", str(tmp_path / "ex")])
    assert model.head.num_classes == 2


def test_example_swap_head():
    model = run_example("swap_head.py")(["--head", "cosface", "--num-classes", "7", "--input-shape", "28", "24", "3"])
    assert type(model.head).__name__ == "CosFace" and model.head.num_classes == 7


def test_example_center_loss_own_backbone():
    model, history = run_example("center_loss_own_backbone.py")(steps=6)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert np.abs(np.asarray(model.center_loss.centers)).sum() > 0


def test_example_register_recipe():
    model = run_example("register_recipe.py")(num_classes=9, input_shape=(32, 32, 3))
    assert type(model.head).__name__ == "CosFace" and model.head.num_classes == 9
