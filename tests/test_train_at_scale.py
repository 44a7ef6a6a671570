"""`kerasface train` the way arcface_torch users train: from a .rec folder with .bin sets beside it."""

import csv
import json
import pickle

import cv2
import keras
import numpy as np
import pytest

from kerasface.cli.main import main
from tests.data.test_recordio import png, write_insightface

SIZE, IDENTITIES, EACH = (28, 28), 16, 2
TEMPLATES = np.random.default_rng(42).integers(0, 200, (IDENTITIES, *SIZE, 3), dtype=np.uint8)


def band_faces(rng, label, n):
    """n images of identity `label`: its template plus noise."""
    return (TEMPLATES[label] + rng.integers(0, 50, (n, *SIZE, 3))).astype(np.uint8)


@pytest.fixture(scope="module")
def insightface_folder(tmp_path_factory):
    """train.rec/.idx (insightface layout) of IDENTITIES x EACH faces, and lfw.bin of 20 pairs beside it."""
    root = tmp_path_factory.mktemp("faces_emore")
    rng = np.random.default_rng(0)
    labels = [label for label in range(IDENTITIES) for _ in range(EACH)]
    faces = np.concatenate([band_faces(rng, label, EACH) for label in range(IDENTITIES)])
    write_insightface(root / "train.rec", [png(face) for face in faces], labels)
    pairs, issame = [], []
    for k in range(20):
        first = k % IDENTITIES
        second = first if k % 2 == 0 else (first + 1) % IDENTITIES
        pairs += [band_faces(rng, first, 1)[0], band_faces(rng, second, 1)[0]]
        issame.append(first == second)
    encoded = [cv2.imencode(".png", face[:, :, ::-1])[1].tobytes() for face in pairs]
    (root / "lfw.bin").write_bytes(pickle.dumps((encoded, issame), protocol=4))
    return root


def test_train_from_rec_with_verification_lr_and_partial_fc(insightface_folder, tmp_path):
    out = tmp_path / "run"
    argv = [
        "train", "mobilefacenet_arcface", "--data", str(insightface_folder), "--out", str(out),
        "--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--sample-rate", "0.5",
        "--verify", "auto", "--verify-every", "2",
        "--set", 'backbone="lenet_plus_plus"', "--set", "backbone_args={}", "--set", "input_shape=[28,28,3]",
    ]
    assert main(argv) == 0
    trained = json.loads((out / "recipe.json").read_text())
    assert trained["num_classes"] == IDENTITIES  # from the .rec header
    assert trained["schedule_args"]["values"][0] == pytest.approx(0.05)  # --lr, then not rescaled by the batch
    assert trained["head_args"]["sample_rate"] == 0.5
    with open(out / "verification.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8] and all(0 <= float(r["lfw_accuracy"]) <= 1 for r in rows)
    with open(out / "log.csv") as file:
        log = list(csv.DictReader(file))
    assert len(log) == 2 and float(log[-1]["images_per_second"]) > 0
    assert float(log[-1]["lfw_accuracy"]) == pytest.approx(float(rows[-1]["lfw_accuracy"]))
    assert keras.saving.load_model(out / "best.keras").recipe.name == "mobilefacenet_arcface"


def test_mixed_precision_run_restores_the_policy(insightface_folder, tmp_path):
    from kerasface.train import train

    model, history = train(
        "mobilefacenet_arcface", insightface_folder, tmp_path / "run", epochs=1, batch_size=8,
        precision="mixed_bfloat16", backbone="lenet_plus_plus", backbone_args={}, input_shape=(28, 28, 3),
        verbose=0,
    )
    assert model.embedder.layers[-1].dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(history.history["loss"][-1])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"precision": "fp16"}, "precision must be one of"),
        ({"devices": 64}, "devices=64, but only"),
        ({"learning_rate": -1.0}, "learning_rate must be a number > 0"),
        ({"verify": ["missing.bin"]}, "Verification file"),
    ],
)
def test_bad_scale_options_stop_before_anything_is_written(insightface_folder, tmp_path, options, message):
    from kerasface.train import train

    with pytest.raises((ValueError, FileNotFoundError), match=message):
        train("mobilefacenet_arcface", insightface_folder, tmp_path / "run", epochs=1, **options)
    assert not (tmp_path / "run").exists()


def test_two_devices_train_data_parallel(tmp_path):
    """`devices=2` on two logical CPUs (TensorFlow: MirroredStrategy), in a fresh process."""
    import subprocess
    import sys

    code = f"""
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kerasface.train import train
rng = np.random.default_rng(0)
images, labels = rng.integers(0, 255, (64, 28, 28, 1)).astype("uint8"), np.arange(64) % 4
model, history = train("lenetpp_softmax", (images, labels), {str(tmp_path / "run")!r}, epochs=1, batch_size=16,
                       devices=2, verbose=0)
print(model.distribute_strategy.num_replicas_in_sync, np.isfinite(history.history["loss"][-1]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "KERAS_BACKEND": "tensorflow"})
    assert result.stdout.split()[-2:] == ["2", "True"], result.stderr[-3000:]
