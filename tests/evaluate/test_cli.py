"""`kerasface evaluate` on a tiny .bin file, LFW folder and Market-1501 folder with a tiny saved model."""

import argparse
import json
import pickle
import re

import cv2
import keras
import numpy as np
import pytest

from kerasface import evaluate
from kerasface.cli import evaluate as evaluate_cli

SIZE = 8


def parse(*argv):
    parser = argparse.ArgumentParser(prog="kerasface")
    evaluate_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["evaluate", *map(str, argv)])


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Dense(6)(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs)))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def face_pairs(num_pairs, seed=0):
    """Same pairs: one image and a slightly noisy copy; different pairs: two unrelated images."""
    rng = np.random.default_rng(seed)
    issame = np.arange(num_pairs) % 2 == 0
    images_a = rng.integers(0, 256, size=(num_pairs, SIZE, SIZE, 3))
    noisy = np.clip(images_a + rng.integers(-20, 21, size=images_a.shape), 0, 255)
    images_b = np.where(issame[:, None, None, None], noisy, rng.integers(0, 256, size=images_a.shape))
    return images_a.astype(np.uint8), images_b.astype(np.uint8), issame


def table(printed):
    """The printed rows as {name: value}: columns are separated by two or more spaces."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in printed.splitlines() if "  " in line)


def encode(image, extension=".png"):
    return cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def write_bin(path, images_a, images_b, issame):
    interleaved = [encode(image) for pair in zip(images_a, images_b) for image in pair]
    path.write_bytes(pickle.dumps((interleaved, [bool(flag) for flag in issame])))
    return path


def test_evaluate_bin_uses_the_insightface_protocol(tmp_path, model_path, capsys):
    images_a, images_b, issame = face_pairs(40)
    bin_path = write_bin(tmp_path / "tiny.bin", images_a, images_b, issame)
    json_path = tmp_path / "numbers.json"
    args = parse(model_path, "--bin", bin_path, "--out", tmp_path / "out", "--folds", 4, "--json", json_path)
    assert args.func(args) == 0
    printed = capsys.readouterr().out

    model = keras.saving.load_model(model_path)
    # insightface: the embeddings of each image and its mirror are summed (flip="sum") before the protocol.
    embeddings_a = evaluate.embed_images(model, images_a, flip="sum")
    embeddings_b = evaluate.embed_images(model, images_b, flip="sum")
    result = evaluate.insightface_verification(embeddings_a, embeddings_b, issame, folds=4)
    scores = evaluate.cosine_scores(embeddings_a, embeddings_b)
    assert result.accuracy == 1.0  # noisy copies stay far closer than unrelated images
    assert table(printed) == {
        "pairs": "40 (20 same, 20 different)",
        "protocol": f"insightface (flip: sum); {evaluate.PROTOCOLS['insightface']}",
        "accuracy (insightface, 4 folds)": f"{100 * result.accuracy:.2f}% ± {100 * result.std:.2f}%",
        "VAL @ FAR=1e-03 (insightface, 4 folds)": (
            f"{100 * result.val:.2f}% ± {100 * result.val_std:.2f}% (FAR reached {result.far:.2e})"
        ),
        "TAR @ FAR=1e-01 (roc-all-pairs)": f"{100 * evaluate.tar_at_far(scores, issame, 0.1):.2f}%",
        # 20 different pairs measure FARs down to 0.05 only.
        "TAR @ FAR=1e-02 (roc-all-pairs)": "n/a (too few different pairs)",
        "TAR @ FAR=1e-03 (roc-all-pairs)": "n/a (too few different pairs)",
        "TAR @ FAR=1e-04 (roc-all-pairs)": "n/a (too few different pairs)",
        "cosine threshold @ FAR=1e-03 (roc-all-pairs)": "n/a (too few different pairs)",
    }
    assert (tmp_path / "out" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads(json_path.read_text())
    assert numbers["accuracy"] == {
        "protocol": "insightface",
        "folds": 4,
        "mean": result.accuracy,
        "std": result.std,
        "fold_thresholds": list(result.fold_thresholds),
    }
    assert numbers["val_at_far"]["protocol"] == "insightface" and numbers["val_at_far"]["mean"] == result.val
    assert numbers["tar_at_far"] == {
        "protocol": "roc-all-pairs",
        "1e-01": evaluate.tar_at_far(scores, issame, 0.1),
        "1e-02": None,
        "1e-03": None,
        "1e-04": None,
    }
    assert numbers["flip"] == "sum" and set(numbers["protocols"]) == {"insightface", "roc-all-pairs"}


def test_evaluate_bin_midpoint_protocol_on_request(tmp_path, model_path, capsys):
    images_a, images_b, issame = face_pairs(40, seed=3)
    images_b[:4] = images_a[:4][:, :, ::-1]  # mirrored copies: "sum" and "concat" score them differently
    bin_path = write_bin(tmp_path / "tiny.bin", images_a, images_b, issame)
    args = parse(model_path, "--bin", bin_path, "--out", tmp_path, "--folds", 4, "--protocol", "midpoint")
    assert args.func(args) == 0
    rows = table(capsys.readouterr().out)
    model = keras.saving.load_model(model_path)
    scores = evaluate.pair_scores(model, images_a, images_b, flip="concat")  # midpoint's default flip
    result = evaluate.verify(scores, issame, folds=4)
    assert rows["protocol"].startswith("midpoint (flip: concat); kerasface: cosine score >= t")
    assert rows["accuracy (midpoint, 4 folds)"] == f"{100 * result.accuracy:.2f}% ± {100 * result.std:.2f}%"
    assert "VAL @ FAR=1e-03 (insightface, 4 folds)" not in rows


def test_evaluate_bin_crops_arcface_faces_for_a_sphereface_model(tmp_path, capsys):
    """112x112 .bin faces reach a 112x96 model as columns 8:104, not squashed by a resize."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((112, 96, 3))
    centred = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    outputs = keras.layers.Dense(4)(keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(centred)))
    model_path = tmp_path / "sphere.keras"
    keras.Model(inputs, outputs).save(model_path)
    rng = np.random.default_rng(4)
    images_a = rng.integers(0, 256, size=(12, 112, 112, 3)).astype(np.uint8)
    images_b = rng.integers(0, 256, size=(12, 112, 112, 3)).astype(np.uint8)
    issame = np.arange(12) % 2 == 0
    images_b[issame, :, 8:104] = images_a[issame, :, 8:104]  # same pairs differ only outside the SphereFace crop
    bin_path = write_bin(tmp_path / "arc.bin", images_a, images_b, issame)
    args = parse(model_path, "--bin", bin_path, "--out", tmp_path, "--folds", 2, "--json", tmp_path / "n.json")
    assert args.func(args) == 0
    rows = table(capsys.readouterr().out)
    # Cropped, same pairs are identical (distance 0): the first grid threshold accepting them is 0.01.
    assert json.loads((tmp_path / "n.json").read_text())["accuracy"]["fold_thresholds"] == [0.01, 0.01]
    assert rows["accuracy (insightface, 2 folds)"] == "100.00% ± 0.00%"
    # Resized, the outer columns leak in: same pairs move apart and other thresholds are chosen.
    model = keras.saving.load_model(model_path)
    squashed = [
        evaluate.embed_images(model, np.stack([cv2.resize(image, (96, 112)) for image in images]))
        for images in (images_a, images_b)
    ]
    assert evaluate.squared_distances(*squashed)[issame].max() > 0.3
    assert evaluate.insightface_verification(*squashed, issame, folds=2).fold_thresholds != (0.01, 0.01)


def test_evaluate_lfw_pairs(tmp_path, model_path, capsys):
    images_a, images_b, issame = face_pairs(4, seed=1)
    lines = ["2 1"]
    for index, (image_a, image_b, same) in enumerate(zip(images_a, images_b, issame)):
        name_a, name_b = f"P{index}", (f"P{index}" if same else f"Q{index}")
        (tmp_path / name_a).mkdir(exist_ok=True)
        (tmp_path / name_b).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name_a / f"{name_a}_0001.jpg"), cv2.cvtColor(image_a, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / name_b / f"{name_b}_0002.jpg"), cv2.cvtColor(image_b, cv2.COLOR_RGB2BGR))
        lines.append(f"{name_a} 1 2" if same else f"{name_a} 1 {name_b} 2")
    (tmp_path / "pairs.txt").write_text("\n".join(lines))
    args = parse(model_path, "--pairs", tmp_path / "pairs.txt", "--root", tmp_path, "--out", tmp_path, "--folds", 2)
    assert args.func(args) == 0
    paths_a, paths_b, flags = evaluate.read_lfw_pairs(tmp_path / "pairs.txt")
    scores = evaluate.pair_scores(
        keras.saving.load_model(model_path),
        evaluate.load_images([tmp_path / p for p in paths_a]),
        evaluate.load_images([tmp_path / p for p in paths_b]),
        flip="concat",  # LFW pairs.txt defaults to the midpoint protocol with SphereFace's concatenation
    )
    result = evaluate.verify(scores, flags, folds=2)
    assert (
        table(capsys.readouterr().out)["accuracy (midpoint, 2 folds)"]
        == f"{100 * result.accuracy:.2f}% ± {100 * result.std:.2f}%"
    )


def test_evaluate_market1501(tmp_path, model_path, capsys):
    rng = np.random.default_rng(2)
    people = rng.integers(0, 256, size=(3, SIZE, SIZE, 3))
    files = {
        "query": [("0001_c1s1_000001_00.jpg", 0), ("0002_c1s1_000002_00.jpg", 1)],
        "bounding_box_test": [
            ("0001_c1s1_000003_00.jpg", 0),  # same camera as its query: junk
            ("0001_c2s1_000004_00.jpg", 0),
            ("0002_c3s1_000005_00.jpg", 1),
            ("0000_c2s1_000006_00.jpg", 2),  # distractor
            ("-1_c2s1_000007_00.jpg", 0),  # junk box
        ],
    }
    for folder, entries in files.items():
        (tmp_path / folder).mkdir()
        for name, person in entries:
            noisy = np.clip(people[person] + rng.integers(-10, 11, size=people[person].shape), 0, 255)
            cv2.imwrite(str(tmp_path / folder / name), noisy.astype(np.uint8))
    args = parse(model_path, "--reid", tmp_path)
    assert args.func(args) == 0
    printed = capsys.readouterr().out

    model = keras.saving.load_model(model_path)
    query, gallery = evaluate.read_market1501(tmp_path)
    expected = evaluate.cmc_map(
        evaluate.embed_images(model, evaluate.load_images(query.paths)),
        query.ids,
        query.cams,
        evaluate.embed_images(model, evaluate.load_images(gallery.paths)),
        gallery.ids,
        gallery.cams,
    )
    rows = table(printed)
    assert rows["queries"] == "2 of 2" and rows["gallery"] == "5"
    assert rows["protocol"].startswith("market1501 (flip: sum); Market-1501 single query")
    assert rows["CMC rank-1"] == f"{100 * expected.cmc[1]:.2f}%"
    assert rows["mAP"] == f"{100 * expected.mean_ap:.2f}%"


def test_evaluate_argument_errors(tmp_path, model_path, capsys):
    args = parse(model_path, "--pairs", tmp_path / "pairs.txt")
    assert args.func(args) == 2
    assert "--pairs needs --root" in capsys.readouterr().err
    (tmp_path / "evil.bin").write_bytes(pickle.dumps(np.zeros(1)))
    args = parse(model_path, "--bin", tmp_path / "evil.bin")
    assert args.func(args) == 1
    assert "refused to import numpy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(model_path, "--bin", "a.bin", "--reid", "market")
