"""Training speed of kerasface against plain PyTorch, measured in one run (issue 7).

Every measurement trains on synthetic uint8 images with uniform labels and
times single steps: the time between the ends of consecutive steps, so data
loading and per-step Python overhead count, while the first step of every fit
(tracing, iterator start-up) does not. Each framework runs in its own worker
process (a process has one Keras backend) and the workers take turns: every
round measures each case once, in the same order, so that all of them share
the machine's load. A case's speed is its median step over all rounds.

Groups (`--groups`):
    lenetpp   LeNet++ at batch 128: PyTorch, Keras/TF with and without XLA,
              Keras/JAX; softmax and softmax + centre loss (the recipes).
    sphere    sphereface20 (A-Softmax, 10,572 classes) at batch 32 against
              PyTorch sphere20a with sphereface_pytorch's AngleLinear.
    heads     every head at 10,000 classes on a fixed 512-d input (the
              embedder is a reshape), plus softmax + centre loss: step time
              and the ratio to plain softmax.
    precision float32 against mixed_bfloat16 (CPU) / mixed_float16 (GPU).

Usage:
    python bench/speed_bench.py [--groups lenetpp sphere heads precision]
        [--rounds 3] [--steps 8] [--sphere-steps 3] [--json out.json]
"""

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RESULT = "RESULT "
HEAD_CLASSES, HEAD_DIM = 10_000, 512
HEADS = {
    "softmax": {},
    "sphereface": {},
    "cosface": {},
    "arcface": {},
    "combined": {"m1": 1.0, "m2": 0.3, "m3": 0.2},
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One thing to time.

    `kind` is `"recipe"` (a zoo recipe on its images), `"head"` (a head alone on
    512-d inputs) or `"torch"` (a model of `torch_reference`). `jit_compile`
    `None` keeps the library's default; `policy` is a Keras dtype policy.
    """

    group: str
    framework: str
    kind: str
    name: str
    batch_size: int
    steps: int
    jit_compile: bool | None = None
    policy: str = "float32"
    center_loss_weight: float = 0.0

    @property
    def label(self):
        if self.framework == "torch":
            return f"PyTorch {self.name}"
        parts = [f"Keras/{'TF' if self.framework == 'tensorflow' else 'JAX'}", self.name]
        if self.center_loss_weight and self.kind == "head":
            parts.append("+ centre")
        if self.framework == "tensorflow":
            parts.append({None: "(default)", True: "XLA", False: "no XLA"}[self.jit_compile])
        if self.policy != "float32":
            parts.append(self.policy)
        return " ".join(parts)


def cases(groups, steps, sphere_steps, accelerator):
    """The cases of `groups`, in the order every round runs them."""
    low_precision = "mixed_float16" if accelerator else "mixed_bfloat16"
    found = []
    if "lenetpp" in groups:
        for weight in (0.0, 0.1):
            recipe = "lenetpp_center" if weight else "lenetpp_softmax"
            torch_name = "lenetpp_center" if weight else "lenetpp"
            found += [
                Case("lenetpp", "torch", "torch", torch_name, 128, steps),
                Case("lenetpp", "tensorflow", "recipe", recipe, 128, steps, jit_compile=False),
                Case("lenetpp", "tensorflow", "recipe", recipe, 128, steps, jit_compile=True),
                Case("lenetpp", "jax", "recipe", recipe, 128, steps),
            ]
    if "sphere" in groups:
        found += [
            Case("sphere", "torch", "torch", "sphere20a", 32, sphere_steps),
            Case("sphere", "tensorflow", "recipe", "sphereface20", 32, sphere_steps, jit_compile=False),
            Case("sphere", "tensorflow", "recipe", "sphereface20", 32, sphere_steps, jit_compile=True),
            Case("sphere", "jax", "recipe", "sphereface20", 32, sphere_steps),
        ]
    if "heads" in groups:
        for framework, jit in (("tensorflow", False), ("tensorflow", True), ("jax", None)):
            found += [Case("heads", framework, "head", head, 128, steps * 2, jit_compile=jit) for head in HEADS]
            found.append(Case("heads", framework, "head", "softmax", 128, steps * 2, jit, center_loss_weight=0.003))
    if "precision" in groups:
        for policy in ("float32", low_precision):
            found += [
                Case("precision", "tensorflow", "recipe", "lenetpp_center", 128, steps, False, policy),
                Case("precision", "jax", "recipe", "lenetpp_center", 128, steps, None, policy),
                Case("precision", "tensorflow", "recipe", "sphereface20", 32, sphere_steps, False, policy),
                Case("precision", "tensorflow", "head", "arcface", 128, steps * 2, False, policy),
            ]
    return found


# === Workers ===


class Worker:
    """A `--worker` subprocess of one framework, fed cases as JSON lines."""

    def __init__(self, framework):
        env = dict(os.environ)
        if framework != "torch":
            env["KERAS_BACKEND"] = framework
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", framework],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )

    def request(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        for line in self.process.stdout:
            if line.startswith(RESULT):
                reply = json.loads(line[len(RESULT) :])
                if "error" in reply:
                    raise RuntimeError(f"worker failed on {message}: {reply['error']}")
                return reply
        raise RuntimeError(f"worker exited (code {self.process.wait()}) on {message}")

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def serve(framework):
    """The worker loop: time each case it is sent, keeping built models."""
    measure = measure_torch if framework == "torch" else measure_keras
    models = {}
    for line in sys.stdin:
        message = json.loads(line)
        try:
            if message.get("describe"):
                reply = describe_worker(framework)
            else:
                case = Case(**message["case"])
                reply = measure(case, models)
        except Exception as error:  # noqa: BLE001 (reported to the main process, which stops)
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(RESULT + json.dumps(reply), flush=True)


def describe_worker(framework):
    """`{"hardware": text, "accelerator": whether a GPU trains}` as this worker sees it."""
    if framework == "torch":
        import torch

        gpu = torch.cuda.is_available()
        device = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
        return {"hardware": f"torch {torch.__version__} on {device}", "accelerator": gpu}
    import keras
    from hardware import describe

    devices = keras.distribution.list_devices()
    gpu = any("gpu" in device.lower() or "cuda" in device.lower() for device in devices)
    return {"hardware": f"{describe()}; devices {', '.join(devices)}", "accelerator": gpu}


def step_seconds(ends):
    """Durations of the steps after the first, from the times the steps ended."""
    return [b - a for a, b in itertools.pairwise(ends)]


def synthetic(shape, num_classes, count, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8), rng.integers(0, num_classes, count)


def measure_torch(case, models):
    import torch
    import torch_reference

    if case not in models:
        torch.manual_seed(0)
        if case.name == "sphere20a":
            trainer, shape, classes = torch_reference.sphere20a(), (3, 112, 96), 10572
        else:
            weight = 0.1 if case.name == "lenetpp_center" else 0.0
            trainer, shape, classes = torch_reference.lenetpp(center_loss_weight=weight), (1, 28, 28), 10
        device = "cuda" if torch.cuda.is_available() else "cpu"
        trainer.to(device)
        images, labels = synthetic(shape, classes, case.batch_size * case.steps)
        data = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)
        trainer.fit(*data, case.batch_size, 2)
        models[case] = trainer, data
    trainer, (images, labels) = models[case]
    ends = []
    loss = trainer.fit(
        images, labels, case.batch_size, case.steps, on_step_end=lambda: ends.append(time.perf_counter())
    )
    return {"step_seconds": step_seconds(ends), "loss": loss}


def measure_keras(case, models):
    import keras
    import numpy as np

    if case not in models:
        keras.utils.set_random_seed(0)
        keras.config.set_dtype_policy(case.policy)
        try:
            model = build_keras(case)
        finally:
            keras.config.set_dtype_policy("float32")
        shape = model.input_shape_hw
        images, labels = synthetic(shape, model.head.num_classes, case.batch_size * case.steps)
        if case.kind == "head":
            images = np.random.default_rng(0).normal(size=images.shape).astype("float32")
        model.fit(images, labels, batch_size=case.batch_size, epochs=1, steps_per_epoch=2, verbose=0)
        models[case] = model, images, labels
    model, images, labels = models[case]
    timer = step_timer()
    history = model.fit(images, labels, batch_size=case.batch_size, epochs=1, verbose=0, callbacks=[timer])
    return {"step_seconds": step_seconds(timer.ends), "loss": history.history["loss"][-1]}


def build_keras(case):
    import keras

    from kerasface import zoo
    from kerasface.layers import CenterLoss
    from kerasface.zoo.face_model import HEADS as HEAD_CLASSES_BY_NAME

    if case.kind == "recipe":
        model = zoo.build(case.name, steps_per_epoch=case.steps)
        if case.jit_compile is not None:
            model.compile(jit_compile=case.jit_compile, steps_per_epoch=case.steps)
        return model
    # A head alone: the "images" are 1x1x512 maps of float embeddings.
    inputs = keras.Input((1, 1, HEAD_DIM))
    embedder = keras.Model(inputs, keras.layers.Flatten()(inputs))
    head = HEAD_CLASSES_BY_NAME[case.name](HEAD_CLASSES, name="head", **HEADS[case.name])
    center_loss = CenterLoss(HEAD_CLASSES, weight=case.center_loss_weight) if case.center_loss_weight else None
    model = zoo.FaceModel(embedder, head, center_loss)
    kwargs = {} if case.jit_compile is None else {"jit_compile": case.jit_compile}
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **kwargs,
    )
    return model


def step_timer():
    """A callback noting the wall-clock time at the end of each step, once its loss is computed."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # JAX dispatches asynchronously: wait for the step
            self.ends.append(time.perf_counter())

    return StepTimer()


# === Table ===


def run(args):
    frameworks = sorted({case.framework for case in cases(args.groups, 1, 1, False)})
    workers = {framework: Worker(framework) for framework in frameworks}
    try:
        hardware = {name: worker.request({"describe": True}) for name, worker in workers.items()}
        accelerator = any(found["accelerator"] for found in hardware.values())
        todo = cases(args.groups, args.steps, args.sphere_steps, accelerator)
        print(f"CPU: {cpu_description()}")
        for name, found in hardware.items():
            print(f"  {name}: {found['hardware']}")
        steps = {case: [] for case in todo}
        losses = {}
        for round_index in range(args.rounds):
            start = time.perf_counter()
            for case in todo:
                reply = workers[case.framework].request({"case": dataclasses.asdict(case)})
                steps[case] += reply["step_seconds"]
                losses[case] = reply["loss"]
            print(f"round {round_index + 1}/{args.rounds}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    finally:
        for worker in workers.values():
            worker.close()
    rows = [summarise(case, steps, losses) for case in todo]
    print_table(rows, args)
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"hardware": hardware, "cpu": cpu_description(), "rows": rows}, file, indent=2, default=str)


def cpu_description():
    from hardware import cpu_name

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_name()}, {cores} cores, load average {os.getloadavg()[0]:.1f} at the end"


def summarise(case, steps, losses):
    seconds = statistics.median(steps[case])
    return {
        **dataclasses.asdict(case),
        "label": case.label,
        "step_ms": 1000 * seconds,
        "images_per_s": case.batch_size / seconds,
        "spread": f"{1000 * min(steps[case]):.0f}-{1000 * max(steps[case]):.0f}",
        "samples": len(steps[case]),
        "loss": losses[case],
    }


def reference_for(row, rows):
    """The row a row is compared with: PyTorch for networks, plain softmax for heads."""
    same_setup = [r for r in rows if r["group"] == row["group"]]
    if row["group"] == "heads":
        matches = [
            r
            for r in same_setup
            if r["framework"] == row["framework"]
            and r["jit_compile"] == row["jit_compile"]
            and r["name"] == "softmax"
            and not r["center_loss_weight"]
        ]
        return matches[0], "softmax"
    if row["group"] == "precision":
        matches = [
            r
            for r in same_setup
            if (r["framework"], r["name"], r["kind"]) == (row["framework"], row["name"], row["kind"])
            and r["policy"] == "float32"
        ]
        return matches[0], "float32"
    torch_name = {"lenetpp_softmax": "lenetpp", "lenetpp_center": "lenetpp_center", "sphereface20": "sphere20a"}
    matches = [
        r for r in same_setup if r["framework"] == "torch" and r["name"] == torch_name.get(row["name"], row["name"])
    ]
    return (matches[0], "PyTorch") if matches else (None, "")


def print_table(rows, args):
    header = f"{'case':46s} {'batch':>5s} {'images/s':>9s} {'ms/step':>8s} {'min-max ms':>13s} {'n':>3s}  ratio"
    for group in args.groups:
        group_rows = [r for r in rows if r["group"] == group]
        if not group_rows:
            continue
        print(f"\n== {group} ==")
        print(header)
        for row in group_rows:
            reference, against = reference_for(row, rows)
            ratio = ""
            if reference is not None and reference is not row:
                if group == "heads" or group == "precision":
                    ratio = f"{row['step_ms'] / reference['step_ms']:.3f} x the step time of {against}"
                else:
                    ratio = f"{row['images_per_s'] / reference['images_per_s']:.2f} x the images/s of {against}"
            print(
                f"{row['label']:46s} {row['batch_size']:5d} {row['images_per_s']:9.1f} {row['step_ms']:8.1f} "
                f"{row['spread']:>13s} {row['samples']:3d}  {ratio}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--groups", nargs="+", default=["lenetpp", "sphere", "heads", "precision"])
    parser.add_argument("--rounds", type=int, default=3, help="times each case is measured (median of all steps)")
    parser.add_argument("--steps", type=int, default=8, help="steps per LeNet++ measurement (heads take twice)")
    parser.add_argument("--sphere-steps", type=int, default=3, help="steps per sphereface20 measurement")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if args.worker:
        serve(args.worker)
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
