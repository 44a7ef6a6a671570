"""Margin heads against pytorch-metric-learning's numbers (shared fixtures)."""

import numpy as np
import pytest

from kerasface import heads
from tests.gradients import head_loss_and_grads

pytestmark = pytest.mark.backends

NO_ANNEALING = dict(lambda_base=0.0, lambda_min=0.0)
CASES = {
    "lsoftmax_m2": lambda n: heads.LSoftmax(n, margin=2, **NO_ANNEALING),
    "lsoftmax_m3": lambda n: heads.LSoftmax(n, margin=3, **NO_ANNEALING),
    "lsoftmax_m4": lambda n: heads.LSoftmax(n, margin=4, **NO_ANNEALING),
    "sphereface_m2": lambda n: heads.SphereFace(n, margin=2, **NO_ANNEALING),
    "sphereface_m4": lambda n: heads.SphereFace(n, margin=4, **NO_ANNEALING),
    "cosface_s30_m035": lambda n: heads.CosFace(n, scale=30, margin=0.35),
    "cosface_s64_m04": lambda n: heads.CosFace(n, scale=64, margin=0.4),
    "arcface_s64_m05": lambda n: heads.ArcFace(n, scale=64, margin=0.5),
    "arcface_s30_m03": lambda n: heads.ArcFace(n, scale=30, margin=0.3),
    "normface_s16": lambda n: heads.NormFace(n, scale=16),
}


def run_head(head, reference):
    """Loss, logits and gradients of `head` on the fixture, the kernel gradient in the fixture's layout.

    The fixture's `W` is `(dim, classes)`, one column per class; the head's
    kernel is `(classes, dim)`, one row per class.
    """
    head.build(reference["embeddings"].shape)
    head.kernel.assign(reference["W"].T.astype("float32"))
    loss, logits, grad_x, grad_kernel = head_loss_and_grads(head, reference["embeddings"], reference["labels"])
    return loss, logits, grad_x, grad_kernel.T


@pytest.mark.parametrize("case", sorted(CASES))
def test_head_matches_reference(case, margin_reference):
    ref = margin_reference
    head = CASES[case](ref["W"].shape[1])
    loss, logits, grad_x, grad_w = run_head(head, ref)
    np.testing.assert_allclose(logits, ref[f"{case}/logits"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(loss, ref[f"{case}/loss"], rtol=1e-3)
    np.testing.assert_allclose(grad_x, ref[f"{case}/grad_embeddings"], atol=1e-4)
    np.testing.assert_allclose(grad_w, ref[f"{case}/grad_W"], atol=1e-4)


@pytest.mark.parametrize(
    "named, margins",
    [("arcface_s64_m05", (1.0, 0.5, 0.0)), ("cosface_s64_m04", (1.0, 0.0, 0.4))],
)
def test_combined_margin_reproduces_named_heads(named, margins, margin_reference):
    ref = margin_reference
    m1, m2, m3 = margins
    head = heads.CombinedMargin(ref["W"].shape[1], scale=64.0, m1=m1, m2=m2, m3=m3)
    loss, logits, grad_x, grad_w = run_head(head, ref)
    np.testing.assert_allclose(logits, ref[f"{named}/logits"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(grad_x, ref[f"{named}/grad_embeddings"], atol=1e-4)
    np.testing.assert_allclose(grad_w, ref[f"{named}/grad_W"], atol=1e-4)
