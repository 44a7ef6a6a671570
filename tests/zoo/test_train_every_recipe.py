"""Every recipe trains through `kerasface train` (and so `train()`), a few steps on a tiny folder.

The recipe's plumbing (batch and P x K semantics, optimiser, schedule, loss,
normalisation, outputs) is what these tests check. Building, tracing and
saving the deeper backbones costs CI minutes on two CPU cores (the backbones
are tested on their own in tests/backbones), so the fast test swaps every
backbone but LeNet++ and SphereFace-4/10 for LeNet++; the `slow` test trains
every recipe with its own backbone.
"""

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


def is_heavy(spec):
    """Every backbone but LeNet++ and the shallow SphereFace nets costs CI seconds that the backbone tests spend."""
    return not (spec.backbone == "lenet_plus_plus" or (spec.backbone == "sphereface" and spec.backbone_args["depth"] <= 10))


@pytest.mark.parametrize("name", zoo.names())
def test_every_recipe_trains_from_the_command_line(name, tmp_path):
    spec = zoo.recipe(name)
    fields, shape = [], None
    if is_heavy(spec):
        spec = spec.replace(backbone="lenet_plus_plus", backbone_args={})
        fields += ['backbone="lenet_plus_plus"', "backbone_args={}"]
        shape = (28, 28, 3)  # colour, as the recipe's preprocessing expects
    run_recipe(name, spec, tmp_path, fields, shape)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in zoo.names() if is_heavy(zoo.recipe(n))])
def test_heavy_recipes_train_with_their_own_backbone(name, tmp_path):
    run_recipe(name, zoo.recipe(name), tmp_path, [])


def run_recipe(name, spec, tmp_path, fields, shape=None):
    shape = shape or SMALL_INPUT[spec.backbone]
    data = write_folder(tmp_path / "faces", shape)
    out = tmp_path / "run"
    fields = fields + [f"input_shape={json.dumps(list(shape))}"]
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
    first_rate = first_learning_rate(trained["schedule_args"])
    paper_rate = first_learning_rate(spec.schedule_args)
    assert first_rate == pytest.approx(paper_rate * BATCH / spec.batch_size)
    if spec.head is not None:
        assert trained["num_classes"] == IDENTITIES


def test_a_batch_that_breaks_p_x_k_is_refused(tmp_path):
    data = write_folder(tmp_path / "faces", SMALL_INPUT["resnet50_reid"])
    argv = ["train", "spherereid", "--data", str(data), "--out", str(tmp_path / "run"), "--batch-size", "6"]
    assert main(argv) == 2
    assert not (tmp_path / "run").exists()


def first_learning_rate(schedule_args):
    return schedule_args["learning_rate"] if "learning_rate" in schedule_args else schedule_args["values"][0]
