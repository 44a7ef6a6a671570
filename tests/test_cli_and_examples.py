"""The command line and the examples, at tiny sizes."""

import csv
import os
import runpy
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

import kerasface
from kerasface.cli import zoo as zoo_cli
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
    # From a folder too, the resumed run sees the batches of an uninterrupted one: the same weights.
    straight, _ = train("lenetpp_sphereface", str(tiny_faces), tmp_path / "straight", **settings)
    for resumed, reference in zip(model.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(resumed, reference, rtol=1e-5, atol=1e-6)


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
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert main(["train", "lenetpp_sofmax", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean lenetpp_softmax" in capsys.readouterr().err


def test_zoo_lists_recipes(capsys):
    assert main(["zoo", "sphereface*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["sphereface10", "sphereface20", "sphereface36", "sphereface4", "sphereface64"]
    assert "112x96x3" in lines[1] and "sphereface" in lines[1]


def test_example_train_image_folder(tiny_faces, tmp_path):
    example = run_example("train_image_folder.py")
    model = example([str(tiny_faces), "--recipe", "sphereface4", "--input-shape", "28", "28", "1",
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


# === Errors: one line, an exit status, no traceback (issue 11) ===


def run_command(*argv, **env):
    """`python -m kerasface.cli.main ARGV` in a fresh process: `(returncode, stdout, stderr)`."""
    environment = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERASFACE_DEBUG")}
    result = subprocess.run(
        [sys.executable, "-m", "kerasface.cli.main", *argv],
        capture_output=True,
        text=True,
        env={**environment, **env},
        timeout=300,
    )
    return result.returncode, result.stdout, result.stderr


def test_zoo_prints_nothing_on_stderr_and_a_bad_train_path_one_line(tmp_path):
    status, out, err = run_command("zoo", "lenetpp_*")
    assert status == 0 and err == "" and len(out.splitlines()) == 6
    status, out, err = run_command("train", "lenetpp_softmax", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert status == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("kerasface train: error: Training data") and f"'{tmp_path / 'nowhere'}'" in line
    assert not (tmp_path / "o").exists()


class Raise:
    def __init__(self, error):
        self.error = error

    def __call__(self, args):
        raise self.error


ERRORS = [
    (FileNotFoundError(2, "No such file or directory", "faces/x.png"), 2, "error: [Errno 2] No such file or directory: 'faces/x.png'"),
    (PermissionError(13, "Permission denied", "runs"), 2, "error: [Errno 13] Permission denied: 'runs'"),
    (cv2.error("OpenCV(4.10) loadsave.cpp:798: error: (-215:Assertion failed)\n !_img.empty() in function 'imwrite'\n"), 2,
     "error: OpenCV(4.10) loadsave.cpp:798: error: (-215:Assertion failed) !_img.empty() in function 'imwrite'"),
    (OSError(28, "No space left on device"), 1, "error: [Errno 28] No space left on device"),
    (FloatingPointError("Training stopped at step 3: the loss is not finite."), 1, "error: Training stopped at step 3"),
    (MemoryError(), 1, "error: MemoryError"),
    (KeyError("embedding_dim"), 70, "internal error: KeyError: 'embedding_dim' (a bug in kerasface: run again with --debug"),
    (RuntimeError("boom\nsecond line"), 70, "internal error: RuntimeError: boom second line (a bug"),
]


@pytest.mark.parametrize("error, status, line", ERRORS, ids=[type(e[0]).__name__ for e in ERRORS])
def test_every_error_is_one_line_and_an_exit_status(error, status, line, monkeypatch, capsys):
    monkeypatch.setattr(zoo_cli, "run", Raise(error))
    assert main(["zoo"]) == status
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"kerasface zoo: {line}")


def test_tensorflow_runtime_errors_are_a_failed_run_without_the_graph(monkeypatch, capsys):
    import tensorflow as tf

    message = "{{function_node __wrapped__Reshape}} Input to reshape is a tensor with 12 values\n\nDetected at node x"
    monkeypatch.setattr(zoo_cli, "run", Raise(tf.errors.InvalidArgumentError(None, None, message)))
    assert main(["zoo"]) == 1
    assert capsys.readouterr().err == "kerasface zoo: error: Input to reshape is a tensor with 12 values\n"


def test_debug_shows_the_traceback_and_ctrl_c_exits_130(monkeypatch, capsys):
    monkeypatch.setattr(zoo_cli, "run", Raise(KeyError("x")))
    assert main(["zoo", "--debug"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and "KeyError: 'x'" in err
    monkeypatch.setenv("KERASFACE_DEBUG", "1")
    assert main(["zoo"]) == 70 and "Traceback" in capsys.readouterr().err
    monkeypatch.delenv("KERASFACE_DEBUG")
    monkeypatch.setattr(zoo_cli, "run", Raise(KeyboardInterrupt()))
    assert main(["zoo"]) == 130
    assert capsys.readouterr().err == "kerasface zoo: interrupted\n"


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "lenetpp_softmax"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "kerasface train: error: the following arguments are required: --data (see 'kerasface train --help')\n"
    )


# === Every subpackage from `import kerasface`; the heavy ones imported on first use ===


def test_import_kerasface_loads_saved_models_and_leaves_the_rest_lazy(tmp_path):
    from kerasface import zoo

    path = tmp_path / "m.keras"
    zoo.build("lenetpp_softmax").save(path)
    code = (
        "import sys, keras, kerasface; model = keras.saving.load_model(sys.argv[1]); "
        "print(type(model).__name__, [m for m in ('onnx', 'tf2onnx', 'kerasface.data', 'kerasface.export') "
        "if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert result.stdout == "FaceModel []\n", result.stderr[-2000:]


def test_subpackages_are_attributes_of_kerasface():
    for name in kerasface.SUBMODULES:
        assert getattr(kerasface, name).__name__ == f"kerasface.{name}"
    assert callable(kerasface.evaluate.verify) and callable(kerasface.data.image_folder)
    assert callable(kerasface.align.align) and callable(kerasface.export.export)
    assert callable(kerasface.backbones.BACKBONES["lenet_plus_plus"]) and kerasface.optimizers.OPTIMIZERS
    assert kerasface.distribute.__name__ == "kerasface.distribute" and callable(kerasface.train.train)
    assert callable(kerasface.checkpoints.atomic_path) and callable(kerasface.zoo.build)
    assert set(kerasface.SUBMODULES) <= set(dir(kerasface))
    with pytest.raises(AttributeError, match="has no attribute 'evaluation'. Its subpackages: align, callbacks, convert, backbones"):
        kerasface.evaluation
