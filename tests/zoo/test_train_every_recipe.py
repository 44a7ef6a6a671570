"""Every recipe trains through `kerasface train` (and so `train()`), a few steps on a tiny folder."""

import csv
import json

import cv2
import numpy as np
import pytest

from kerasface import zoo
from kerasface.cli.main import main
from tests.zoo.test_zoo import SMALL_INPUT

IDENTITIES, IMAGES_EACH, BATCH = 4, 4, 8


def write_folder(root, shape):
    """IDENTITIES folders of IMAGES_EACH images of `shape`, each identity a bright band."""
    rng = np.random.default_rng(0)
    height, width, channels = shape
    for identity in range(IDENTITIES):
        folder = root / f"id{identity}"
        folder.mkdir(parents=True)
        for i in range(IMAGES_EACH):
            image = rng.integers(0, 60, (height, width, channels), dtype=np.uint8)
            rows = height // IDENTITIES
            image[identity * rows : (identity + 1) * rows] += 150
            cv2.imwrite(str(folder / f"{i}.png"), image)
    return root


@pytest.mark.parametrize("name", zoo.names())
def test_every_recipe_trains_from_the_command_line(name, tmp_path):
    spec = zoo.recipe(name)
    shape = SMALL_INPUT[spec.backbone]
    data = write_folder(tmp_path / "faces", shape)
    out = tmp_path / "run"
    fields = [f"input_shape={json.dumps(list(shape))}"]
    if spec.backbone != "lenet_plus_plus":
        fields.append("embedding_dim=8")
    argv = ["train", name, "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", str(BATCH)]
    for field in fields:
        argv += ["--set", field]
    assert main(argv) == 0
    with open(out / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["loss"]))
    assert (out / "model.keras").exists() and (out / "embedder.keras").exists()
    trained = json.loads((out / "recipe.json").read_text())
    # The batch is honoured (P x K recipes keep K), and the learning rate follows it linearly.
    assert trained["batch_size"] == BATCH
    if spec.images_per_identity:
        assert trained["identities_per_batch"] * trained["images_per_identity"] == BATCH
        assert trained["images_per_identity"] == spec.images_per_identity
    first_rate = trained["schedule_args"].get("learning_rate", (trained["schedule_args"].get("values") or [None])[0])
    paper_rate = spec.schedule_args.get("learning_rate", (spec.schedule_args.get("values") or [None])[0])
    assert first_rate == pytest.approx(paper_rate * BATCH / spec.batch_size)
    if spec.head is not None:
        assert trained["num_classes"] == IDENTITIES


def test_a_batch_that_breaks_p_x_k_is_refused(tmp_path):
    data = write_folder(tmp_path / "faces", SMALL_INPUT["resnet50_reid"])
    argv = ["train", "spherereid", "--data", str(data), "--out", str(tmp_path / "run"), "--batch-size", "6"]
    assert main(argv) == 2
    assert not (tmp_path / "run").exists()
