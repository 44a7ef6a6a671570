"""Each recipe's optimiser against its reference's update rule, written out in NumPy.

The rules (with g' = g + wd * w for decayed variables):
- Caffe SGDSolver (SphereFace, caffe-face LeNet++): v <- m v + lr g', w <- w - v
  (BVLC/caffe src/caffe/solvers/sgd_solver.cpp, Regularize + ComputeUpdateValue).
- torch.optim.SGD (arcface_torch): b <- m b + g' (b = g' at the first step), w <- w - lr b.
- torch.optim.Adam (SphereReID reproduction): bias-corrected m, v of g'; w <- w - lr m^ / (sqrt(v^) + eps).
- tf.train.AdamOptimizer (davidsandberg/facenet, epsilon 0.1): lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
  w <- w - lr_t m / (sqrt(v) + eps); facenet's L2 loss wd * sum(w^2) / 2 adds wd * w to g.
- tf.train.AdagradOptimizer (facenet triplet): a <- a + g^2 (a starts at 0.1), w <- w - lr g / sqrt(a).
With momentum the coupled and decoupled rules already differ at the second step; five steps are compared.
"""

import keras
import numpy as np
import pytest

from kerasface import zoo
from kerasface.optimizers import SGD

STEPS = 5
SHAPES = {"dense/kernel": (4, 3), "dense/bias": (3,), "prelu/alpha": (3,), "head/kernel": (5, 3)}


def rate(lr, t):
    return lr(t) if callable(lr) else lr


def caffe_sgd(w, g, state, lr, t, momentum, wd):
    v = state.get("v", np.zeros_like(w))
    v = momentum * v + rate(lr, t) * (g + wd * w)
    state["v"] = v
    return w - v


def torch_sgd(w, g, state, lr, t, momentum, wd):
    g = g + wd * w
    b = g if "b" not in state else momentum * state["b"] + g
    state["b"] = b
    return w - rate(lr, t) * b


def torch_adam(w, g, state, lr, t, beta_1, beta_2, epsilon, wd):
    g = g + wd * w
    m = beta_1 * state.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * state.get("v", 0.0) + (1 - beta_2) * g * g
    state.update(m=m, v=v)
    return w - lr * (m / (1 - beta_1**t)) / (np.sqrt(v / (1 - beta_2**t)) + epsilon)


def tf1_adam(w, g, state, lr, t, beta_1, beta_2, epsilon, wd):
    g = g + wd * w
    m = beta_1 * state.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * state.get("v", 0.0) + (1 - beta_2) * g * g
    state.update(m=m, v=v)
    return w - lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(v) + epsilon)


def tf1_adagrad(w, g, state, lr, t, initial, wd):
    g = g + wd * w
    accumulator = state.get("a", np.full_like(w, initial)) + g * g
    state["a"] = accumulator
    return w - lr * g / np.sqrt(accumulator)


def arcface_poly(t, steps_per_epoch=1000, epochs=20):
    """arcface_torch lr_scheduler.py PolyScheduler (no warm-up): 0.1 (1 - step / total)^2, step from 0."""
    return 0.1 * (1 - (t - 1) / (steps_per_epoch * epochs)) ** 2


# recipe -> (reference rule, its hyper-parameters as the reference files set them, decayed variables).
# The constants are written here from the references (docs/reference_settings.md), not read from the recipes.
ALL = set(SHAPES)
REFERENCES = {
    "sphereface20": (caffe_sgd, dict(lr=0.1, momentum=0.9, wd=5e-4), ALL - {"dense/bias"}),
    "cosface20": (caffe_sgd, dict(lr=0.1, momentum=0.9, wd=5e-4), ALL - {"dense/bias"}),
    "lenetpp_softmax": (caffe_sgd, dict(lr=0.01, momentum=0.9, wd=5e-4), ALL),
    "lenetpp_center": (caffe_sgd, dict(lr=0.01, momentum=0.9, wd=5e-4), ALL),
    "iresnet50_arcface": (torch_sgd, dict(lr=arcface_poly, momentum=0.9, wd=1e-4), ALL),
    "iresnet100_arcface": (torch_sgd, dict(lr=arcface_poly, momentum=0.9, wd=5e-4), ALL),
    "spherereid": (torch_adam, dict(lr=5e-5, beta_1=0.9, beta_2=0.999, epsilon=1e-8, wd=5e-4), ALL),
    "facenet_center": (tf1_adam, dict(lr=0.1, beta_1=0.9, beta_2=0.999, epsilon=0.1, wd=5e-4), ALL),
    "facenet": (tf1_adagrad, dict(lr=0.1, initial=0.1, wd=0.0), ALL),
}


class Holder(keras.layers.Layer):
    """Variables with the paths a network gives them (`dense/bias`, ...)."""

    def __init__(self, values):
        super().__init__(name="model")
        self.tracked = {}
        for path, value in values.items():
            layer, name = path.split("/")
            sub = keras.layers.Layer(name=layer)
            setattr(self, layer.replace("/", "_"), sub)
            with keras.name_scope(layer, caller=sub):
                self.tracked[path] = sub.add_weight(shape=value.shape, initializer="zeros", name=name)
            self.tracked[path].assign(value)


def run_recipe_optimizer(name, values, gradients):
    optimizer = zoo.make_optimizer(zoo.recipe(name), steps_per_epoch=1000)
    holder = Holder(values)
    variables = [holder.tracked[path] for path in SHAPES]
    for step in range(STEPS):
        optimizer.apply([keras.ops.convert_to_tensor(gradients[step][p]) for p in SHAPES], variables)
    return {path: keras.ops.convert_to_numpy(holder.tracked[path]) for path in SHAPES}


@pytest.mark.backends
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_recipe_optimizer_follows_the_reference_rule(name):
    rng = np.random.default_rng(0)
    values = {p: rng.normal(size=shape).astype("float32") for p, shape in SHAPES.items()}
    gradients = [{p: rng.normal(scale=0.1, size=shape).astype("float32") for p, shape in SHAPES.items()} for _ in range(STEPS)]
    rule, settings, decayed = REFERENCES[name]
    expected = {}
    for path in SHAPES:
        w, state = values[path].astype("float64"), {}
        for step in range(STEPS):
            args = dict(settings, wd=settings["wd"] if path in decayed else 0.0)
            w = rule(w, gradients[step][path].astype("float64"), state, t=step + 1, **args)
        expected[path] = w
    got = run_recipe_optimizer(name, values, gradients)
    for path in SHAPES:
        np.testing.assert_allclose(got[path], expected[path], rtol=2e-5, atol=1e-6, err_msg=f"{name} {path}")


@pytest.mark.backends
def test_coupled_decay_is_ten_times_keras_decoupled_decay():
    """The issue's measurement: zero gradient, lr 0.1, momentum 0.9, wd 5e-4, 1,000 steps."""
    results = {}
    for label, optimizer in {
        "coupled": SGD(0.1, momentum=0.9, l2_decay=5e-4),
        "decoupled": keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=5e-4),
    }.items():
        variable = keras.Variable(np.ones(2, "float32"))
        for _ in range(1000):
            optimizer.apply([keras.ops.zeros(2)], [variable])
        results[label] = float(keras.ops.convert_to_numpy(variable)[0])
    w, v = 1.0, 0.0
    for _ in range(1000):
        v = 0.9 * v + 0.1 * 5e-4 * w
        w -= v
    assert results["coupled"] == pytest.approx(w, rel=1e-5) == pytest.approx(0.6078, abs=1e-4)
    assert results["decoupled"] == pytest.approx(0.951, abs=1e-3)


@pytest.mark.backends
def test_coupled_decay_trains_inside_fit_and_survives_saving(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.compile(SGD(0.1, momentum=0.9, l2_decay=0.5, l2_exclude=["bias"]), loss="mse")
    kernel = keras.ops.convert_to_numpy(model.layers[0].kernel).copy()
    model.fit(np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32"), epochs=2, batch_size=4, verbose=0)
    # Zero inputs and targets: only the L2 term moves the kernel (v1 = 0.05 w, v2 = 0.9 v1 + 0.05 w1).
    w1 = kernel * (1 - 0.05)
    w2 = w1 - (0.9 * 0.05 * kernel + 0.05 * w1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].kernel), w2, rtol=1e-5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.layers[0].bias), 0.0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert type(restored.optimizer) is SGD
    assert restored.optimizer.l2_decay == 0.5 and restored.optimizer.l2_exclude == ("bias",)


def test_torch_sgd_agrees_where_installed():
    """torch.optim.SGD under a per-step decaying rate, against momentum_style="pytorch"."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(4, 3)).astype("float32")
    gradients = rng.normal(size=(STEPS, 4, 3)).astype("float32")
    parameter = torch.nn.Parameter(torch.tensor(w0))
    reference = torch.optim.SGD([parameter], lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(reference, lambda step: (1 - step / 10) ** 2)
    variable = keras.Variable(w0)
    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, 10, end_learning_rate=0.0, power=2.0)
    optimizer = SGD(schedule, momentum=0.9, l2_decay=5e-4, momentum_style="pytorch")
    for g in gradients:
        parameter.grad = torch.tensor(g)
        reference.step()
        scheduler.step()
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), parameter.detach().numpy(), rtol=1e-5)


@pytest.mark.parametrize("bad", [-1e-4, "5e-4", True])
def test_bad_l2_decay_is_refused(bad):
    with pytest.raises(ValueError, match="l2_decay must be a number >= 0. Received"):
        SGD(0.1, l2_decay=bad)
