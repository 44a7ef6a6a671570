"""Every zoo recipe trains a step under MirroredStrategy and on two workers (slow: 9 and 15 min here)."""

import json
import math

import pytest

from kerasface import zoo
from tests.distribute.conftest import finish, program_env, run_workers, start

pytestmark = pytest.mark.slow
TIMEOUT_S = 1800


def check_losses(path):
    losses = json.loads(path.read_text())
    assert sorted(losses) == zoo.names()
    # FaceNet's triplet loss is 0 here: 4 images of 4 identities hold no positive pair.
    assert all(math.isfinite(loss) and loss >= 0 for loss in losses.values()), losses


def test_every_recipe_trains_under_mirrored_strategy(tmp_path):
    finish([start("every_recipe_mirrored", tmp_path, program_env("tensorflow"))], "every_recipe_mirrored", TIMEOUT_S)
    check_losses(tmp_path / "every_recipe_mirrored.json")


def test_every_recipe_trains_on_two_workers(tmp_path):
    run_workers("every_recipe_workers", tmp_path, TIMEOUT_S)
    for index in (0, 1):
        check_losses(tmp_path / f"every_recipe_worker{index}.json")
