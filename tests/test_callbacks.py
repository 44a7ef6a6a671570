"""Verification during training (insightface protocol) and the throughput log."""

import csv

import keras
import numpy as np
import pytest

from kerasface.callbacks import ImagesPerSecond, VerificationCallback
from kerasface.evaluate import embed_images, insightface_verification
from tests.zoo.test_zoo import tiny, toy_images

SHAPE = (28, 24, 3)


def pair_set(n=40, seed=1):
    """n pairs of toy images alternating same class / different class (every fold holds both)."""
    images, labels = toy_images(4 * n, SHAPE, seed=seed)
    same = np.arange(n) % 2 == 0
    first = np.arange(n)  # classes n % 5
    second = np.where(same, first + 5 * n // 5 * 2, first + 1)  # + a multiple of 5: same class; + 1: the next
    return images[first], images[second], labels[first] == labels[second]


@pytest.mark.backends
def test_verification_every_n_steps_logs_and_keeps_the_best(tmp_path):
    model = tiny("sphereface4", input_shape=SHAPE)
    model.compile(keras.optimizers.Adam(1e-3))
    images, labels = toy_images(64, SHAPE)
    sets = {"lfw": pair_set(), "agedb": pair_set(seed=2)}
    callback = VerificationCallback(sets, every_n_steps=2, out=tmp_path)
    history = model.fit(images, labels, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    with open(tmp_path / "verification.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert {r["protocol"] for r in rows} == {"insightface"}
    a, b, same = sets["lfw"]
    direct = insightface_verification(embed_images(model.embedder, a), embed_images(model.embedder, b), same)
    assert float(rows[-1]["lfw_accuracy"]) == pytest.approx(direct.accuracy, abs=1e-6)
    assert history.history["lfw_accuracy"][-1] == pytest.approx(direct.accuracy, abs=1e-6)
    best = max(range(len(rows)), key=lambda i: float(rows[i]["lfw_accuracy"]) + float(rows[i]["agedb_accuracy"]))
    assert (tmp_path / "best.keras").exists() and best in (0, 1)
    assert not list(tmp_path.glob(".best.tmp*"))


def write_bin(path, faces, issame):
    import pickle

    import cv2

    encoded = [cv2.imencode(".png", face[:, :, ::-1])[1].tobytes() for face in faces]
    path.write_bytes(pickle.dumps((encoded, list(issame)), protocol=4))
    return path


def test_verification_reads_bin_files_and_crops_arcface_faces(tmp_path):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)
    path = write_bin(tmp_path / "lfw.bin", faces, [True, False, True, False])
    model = tiny("sphereface4", input_shape=(112, 96, 3))
    callback = VerificationCallback({"lfw": str(path)}, every_n_steps=0)
    callback.set_model(model)
    a, b, same = callback._load()["lfw"]
    np.testing.assert_array_equal(a, faces[0::2, :, 8:104])
    np.testing.assert_array_equal(b, faces[1::2, :, 8:104])
    assert same.tolist() == [True, False, True, False]
    unrelated = write_bin(tmp_path / "odd.bin", faces[:, :100], [True, False, True, False])
    callback = VerificationCallback({"odd": str(unrelated)}, every_n_steps=0)
    callback.set_model(model)
    with pytest.raises(ValueError, match="112"):
        callback._load()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one pair set"):
        VerificationCallback({})
    with pytest.raises(ValueError, match="every_n_steps=-1"):
        VerificationCallback({"lfw": "lfw.bin"}, every_n_steps=-1)


@pytest.mark.backends
def test_images_per_second_reaches_the_logs():
    model = tiny("lenetpp_softmax")
    images, labels = toy_images(96, (28, 28, 1))
    history = model.fit(images, labels, batch_size=32, epochs=2, verbose=0, callbacks=[ImagesPerSecond(32)])
    speeds = history.history["images_per_second"]
    assert len(speeds) == 2 and all(np.isfinite(speeds)) and min(speeds) > 0
