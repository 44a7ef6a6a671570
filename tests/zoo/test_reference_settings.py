"""The zoo's recipes against the reference table (tests/zoo/reference_settings.py).

Every expected value below comes from `reference_settings`, which was written
from the reference code and configs (file and line cited there), never from
the recipes. One row per constant: (recipe, field path, expected, source); one test
per recipe checks all of its rows and lists every mismatch.
Field paths walk the `Recipe` dataclass: `optimizer_args.l2_decay` is
`recipe.optimizer_args["l2_decay"]`, and a trailing `()` calls a method
(`paper_steps_per_epoch()`: dataset_size // batch_size). `ABSENT` means the key must not be set
(for example Keras' decoupled `weight_decay` where the reference decays in
the coupled L2 form).
"""

import math

import numpy as np
import pytest

from kerasface import zoo
import reference_settings as ref  # tests/zoo is on sys.path (pytest rootdir-relative import)
from reference_settings import source as src
from reference_settings import value as val

ABSENT = "<absent>"
_MISSING = object()
# A field whose absence means a documented default.
DEFAULTS = {"schedule_args.unit": "step"}

SF = ref.SPHEREFACE
AF = ref.ARCFACE_TORCH
CF = ref.CENTER_LOSS_MNIST
FT = ref.FACENET_TRIPLET
FS = ref.FACENET_SOFTMAX_CASIA
SR = ref.SPHEREREID


def _row(recipe, path, table, key, expected=_MISSING):
    return (recipe, path, val(table, key) if expected is _MISSING else expected, src(table, key))


def _sphereface_rows(name):
    return [
        _row(name, "optimizer", SF, "optimizer"),
        _row(name, "optimizer_args.momentum", SF, "momentum"),
        _row(name, "optimizer_args.l2_decay", SF, "l2_decay"),
        _row(name, "optimizer_args.weight_decay", SF, "l2_decay", ABSENT),
        _row(name, "schedule", SF, "lr_policy", "step"),
        _row(name, "schedule_args.unit", SF, "lr_boundaries_steps", "step"),
        _row(name, "schedule_args.values", SF, "lr_values"),
        _row(name, "schedule_args.boundaries", SF, "lr_boundaries_steps"),
        _row(name, "steps", SF, "max_iter"),
        _row(name, "batch_size", SF, "global_batch"),
        _row(name, "input_shape", SF, "input_shape"),
        _row(name, "preprocessing.scale", SF, "preprocess_scale"),
        _row(name, "preprocessing.offset", SF, "preprocess_offset"),
        _row(name, "embedding_dim", SF, "embedding_dim"),
        _row(name, "num_classes", SF, "num_classes"),
        _row(name, "head", SF, "margin", "sphereface"),
        _row(name, "head_args.margin", SF, "margin"),
        _row(name, "head_args.lambda_base", SF, "lambda_base"),
        _row(name, "head_args.lambda_gamma", SF, "lambda_gamma"),
        _row(name, "head_args.lambda_power", SF, "lambda_power"),
        _row(name, "head_args.lambda_min", SF, "lambda_min"),
    ]


def _arcface_rows(name, decay_key):
    return [
        _row(name, "optimizer", AF, "momentum", "sgd"),
        _row(name, "optimizer_args.momentum", AF, "momentum"),
        _row(name, "optimizer_args.l2_decay", AF, decay_key),
        _row(name, "optimizer_args.weight_decay", AF, decay_key, ABSENT),
        _row(name, "schedule", AF, "scheduler", "polynomial"),
        _row(name, "schedule_args.learning_rate", AF, "lr"),
        _row(name, "schedule_args.power", AF, "scheduler", 2.0),
        _row(name, "epochs", AF, "num_epoch_r50_r100"),
        _row(name, "batch_size", AF, "global_batch"),
        _row(name, "paper_steps_per_epoch()", AF, "steps_per_epoch"),
        _row(name, "dataset_size", AF, "num_image"),
        _row(name, "num_classes", AF, "num_classes"),
        _row(name, "embedding_dim", AF, "embedding_dim"),
        _row(name, "head", AF, "margin_list", "arcface"),
        _row(name, "head_args.scale", AF, "scale"),
        _row(name, "head_args.margin", AF, "margin_list", val(AF, "margin_list")[1]),
        _row(name, "input_shape", AF, "input_shape"),
        _row(name, "preprocessing.scale", AF, "preprocess_scale"),
        _row(name, "preprocessing.offset", AF, "preprocess_offset"),
    ]


def _lenetpp_data_rows(name):
    return [
        _row(name, "input_shape", CF, "embedding_dim", (28, 28, 1)),
        _row(name, "preprocessing.scale", CF, "preprocess_scale"),
        _row(name, "preprocessing.offset", CF, "preprocess_offset"),
        _row(name, "embedding_dim", CF, "embedding_dim"),
        _row(name, "num_classes", CF, "num_classes"),
        _row(name, "batch_size", CF, "batch"),
    ]


def _lenetpp_solver_rows(name):
    return [
        _row(name, "optimizer", CF, "optimizer"),
        _row(name, "optimizer_args.momentum", CF, "momentum"),
        _row(name, "optimizer_args.l2_decay", CF, "l2_decay"),
        _row(name, "optimizer_args.weight_decay", CF, "l2_decay", ABSENT),
        _row(name, "schedule_args.unit", CF, "lr_boundaries_steps", "step"),
        _row(name, "schedule_args.values", CF, "lr_values"),
        _row(name, "schedule_args.boundaries", CF, "lr_boundaries_steps"),
        _row(name, "steps", CF, "max_iter"),
    ]


ROWS = [
    *[row for depth in (4, 10, 20, 36, 64) for row in _sphereface_rows(f"sphereface{depth}")],
    *_arcface_rows("iresnet50_arcface", "l2_decay_r50"),
    *_arcface_rows("iresnet100_arcface", "l2_decay_r100"),
    _row("mobilefacenet_arcface", "input_shape", AF, "input_shape"),
    _row("mobilefacenet_arcface", "preprocessing.scale", AF, "preprocess_scale"),
    _row("mobilefacenet_arcface", "preprocessing.offset", AF, "preprocess_offset"),
    *[row for name in zoo.names("lenetpp_*") for row in _lenetpp_data_rows(name)],
    *_lenetpp_solver_rows("lenetpp_softmax"),
    *_lenetpp_solver_rows("lenetpp_center"),
    _row("lenetpp_center", "center_loss_weight", CF, "center_loss_weight"),
    # davidsandberg/facenet train_tripletloss.py defaults.
    _row("facenet", "metric_loss_args.margin", FT, "alpha"),
    _row("facenet", "embedding_dim", FT, "embedding_dim"),
    _row("facenet", "optimizer", FT, "optimizer"),
    _row("facenet", "schedule_args.learning_rate", FT, "learning_rate"),
    _row("facenet", "batch_size", FT, "batch_size"),
    _row("facenet", "paper_steps_per_epoch()", FT, "epoch_size"),
    _row("facenet", "epochs", FT, "max_nrof_epochs"),
    _row("facenet", "backbone_args.dropout_rate", FT, "keep_probability", 1.0 - val(FT, "keep_probability")),
    _row("facenet", "input_shape", FT, "image_size", (160, 160, 3)),
    # davidsandberg/facenet softmax classifier (wiki CASIA command).
    _row("facenet_center", "optimizer", FS, "optimizer"),
    _row("facenet_center", "optimizer_args.epsilon", FS, "adam_epsilon"),
    _row("facenet_center", "optimizer_args.l2_decay", FS, "l2_decay"),
    _row("facenet_center", "optimizer_args.weight_decay", FS, "l2_decay", ABSENT),
    _row("facenet_center", "schedule_args.unit", FS, "lr_boundaries_epochs", "epoch"),
    _row("facenet_center", "schedule_args.values", FS, "lr_values"),
    _row("facenet_center", "schedule_args.boundaries", FS, "lr_boundaries_epochs"),
    _row("facenet_center", "epochs", FS, "max_nrof_epochs"),
    _row("facenet_center", "paper_steps_per_epoch()", FS, "epoch_size"),
    _row("facenet_center", "batch_size", FS, "batch_size"),
    _row("facenet_center", "embedding_dim", FS, "embedding_dim"),
    _row("facenet_center", "backbone_args.dropout_rate", FS, "keep_probability", 1.0 - val(FS, "keep_probability")),
    _row("facenet_center", "input_shape", FS, "image_size", (160, 160, 3)),
    _row("facenet_center", "preprocessing.scale", FS, "fixed_standardization", 1.0 / 128.0),
    _row("facenet_center", "preprocessing.offset", FS, "fixed_standardization", -127.5 / 128.0),
    # SphereReID (third-party PyTorch reproduction; the paper text is not stored).
    _row("spherereid", "optimizer", SR, "optimizer"),
    _row("spherereid", "optimizer_args.beta_1", SR, "adam_betas", val(SR, "adam_betas")[0]),
    _row("spherereid", "optimizer_args.beta_2", SR, "adam_betas", val(SR, "adam_betas")[1]),
    _row("spherereid", "optimizer_args.epsilon", SR, "adam_epsilon"),
    _row("spherereid", "optimizer_args.l2_decay", SR, "l2_decay"),
    _row("spherereid", "schedule_args.warmup", SR, "warmup_epochs"),
    _row("spherereid", "schedule_args.warmup_start", SR, "warmup_start"),
    _row("spherereid", "schedule_args.boundaries", SR, "lr_boundaries_epochs"),
    _row("spherereid", "schedule_args.values", SR, "lr_values"),
    _row("spherereid", "epochs", SR, "epochs"),
    _row("spherereid", "identities_per_batch", SR, "identities_per_batch"),
    _row("spherereid", "images_per_identity", SR, "images_per_identity"),
    _row("spherereid", "batch_size", SR, "batch"),
    _row("spherereid", "head_args.scale", SR, "scale"),
    _row("spherereid", "embedding_dim", SR, "embedding_dim"),
    _row("spherereid", "backbone_args.dropout_rate", SR, "dropout"),
    _row("spherereid", "input_shape", SR, "input_shape"),
]


def _field(recipe, path):
    node = recipe
    for part in path.split("."):
        if part.endswith("()"):
            method = getattr(node, part[:-2], _MISSING)
            try:
                node = method() if callable(method) else _MISSING
            except ValueError as error:
                node = f"<{type(error).__name__}: {error}>"
        elif isinstance(node, dict):
            node = node.get(part, _MISSING)
        else:
            node = getattr(node, part, _MISSING)
        if node is _MISSING:
            return DEFAULTS.get(path, _MISSING)
    return node


def _same(actual, expected):
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected))
        )
    if isinstance(expected, bool) or isinstance(expected, str):
        return actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    return actual == expected


def _mismatch(recipe, recipe_name, path, expected, source):
    actual = _field(recipe, path)
    if expected == ABSENT:
        if actual is not _MISSING:
            return f"{recipe_name}.{path} = {actual!r} should be unset: the reference has no such term ({source})"
        return None
    if actual is _MISSING or not _same(actual, expected):
        shown = "<missing>" if actual is _MISSING else repr(actual)
        return f"{recipe_name}.{path} = {shown}; the reference has {expected!r} ({source})"
    return None


RECIPES = sorted({row[0] for row in ROWS})


@pytest.mark.parametrize("recipe_name", RECIPES)
def test_recipe_matches_reference(recipe_name):
    """Every row of `ROWS` for this recipe; the failure lists all mismatching fields at once."""
    recipe = zoo.recipe(recipe_name)
    rows = [row for row in ROWS if row[0] == recipe_name]
    mismatches = [m for m in (_mismatch(recipe, *row) for row in rows) if m]
    assert not mismatches, f"{len(mismatches)} of {len(rows)} constants differ:\n" + "\n".join(mismatches)


def test_every_row_cites_a_verified_constant():
    """No test row may rest on a constant the table marks unverified."""
    tables = [value for value in vars(ref).values() if isinstance(value, dict) and value]
    unverified = {
        entry["source"]
        for table in tables
        for entry in table.values()
        if isinstance(entry, dict) and entry.get("verified") is False
    }
    assert len(ROWS) > 100
    assert not [row for row in ROWS if row[3] in unverified]


def test_lsoftmax_defaults_follow_the_reference_example():
    """The LSoftmax head's defaults are the L-Softmax CIFAR-10 example's (m = 2, the head's default margin)."""
    from kerasface.heads import LSoftmax

    head = LSoftmax(10)
    table = ref.LSOFTMAX_CIFAR10
    for name, key in [
        ("margin", "margin"),
        ("lambda_base", "lambda_base"),
        ("lambda_gamma", "lambda_gamma"),
        ("lambda_power", "lambda_power"),
    ]:
        assert math.isclose(getattr(head, name), val(table, key)), f"LSoftmax {name}: {src(table, key)}"


def _psi(cosine, margin):
    theta = np.arccos(np.clip(cosine, -1.0, 1.0))
    k = np.floor(margin * theta / np.pi)
    return (-1.0) ** k * np.cos(margin * theta) - 2.0 * k


def test_sphereface_first_step_uses_iteration_one():
    """Caffe increments the iteration before computing lambda: step 1 uses lambda = 1000 / 1.12."""
    from kerasface.heads import SphereFace

    head = SphereFace(3)
    embeddings = np.array([[0.6, -1.3, 0.4]], dtype="float32")
    labels = np.array([1], dtype="int32")
    logits = np.asarray(head([embeddings, labels], training=True))
    kernel = np.asarray(head.kernel)  # (classes, dim): one row per class
    norm = np.linalg.norm(embeddings[0])
    cosine = (kernel / np.linalg.norm(kernel, axis=1, keepdims=True)) @ embeddings[0] / norm
    lam = val(SF, "first_step_lambda")
    expected = norm * (lam * cosine[1] + _psi(cosine[1], 4)) / (1.0 + lam)
    np.testing.assert_allclose(logits[0, 1], expected, rtol=1e-4, err_msg=src(SF, "lambda_increment_first"))
    np.testing.assert_allclose(logits[0, [0, 2]], norm * cosine[[0, 2]], rtol=1e-4)
