"""Training speed of kerasface against plain PyTorch, measured in one run (issue 7).

Every measurement trains on synthetic uint8 images with uniform labels and
times single steps: the time between the ends of consecutive steps, so data
loading and per-step Python overhead count, while the first step of every fit
(tracing, iterator start-up) does not. Each framework runs in its own worker
process (a process has one Keras backend) and the workers take turns: every
round measures each case once, in the same order, so that all of them share
the machine's load. A case's speed is its median step over all rounds; the
table also gives the median process CPU time of a step (all threads), which
other programs on a shared machine disturb less than the wall clock.

Groups (`--groups`):
    lenetpp   LeNet++ at batch 128: PyTorch (NCHW and channels_last),
              Keras/TF with and without XLA, Keras/JAX; the lenetpp_softmax
              and lenetpp_center recipes. Ratio: images/s over the faster
              PyTorch layout.
    sphere    sphereface20 (A-Softmax, 10,572 classes) at batch 32 against
              PyTorch sphere20a with sphereface_pytorch's AngleLinear.
    heads     every head at 10,000 classes on a fixed 512-d input (the
              embedder is a reshape), plus softmax + centre loss: step time
              over plain softmax's, at batch 128 and 512 (TF), 128 (XLA, JAX).
    recipe_heads  the same comparison inside a real step: sphereface20 at
              batch 32 with each head, and softmax + centre loss (TF).
    precision float32 against mixed_bfloat16 (CPU) / mixed_float16 (GPU).

Usage:
    python bench/speed_bench.py [--groups lenetpp sphere heads recipe_heads precision]
        [--rounds 3] [--steps 8] [--sphere-steps 3] [--json out.json] [--torch-python PATH]
    python bench/speed_bench.py --processes 10 [--tf-variant default other:VAR=VALUE]
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

    `kind` is `"recipe"` (a zoo recipe on its images, with `head` in place
    of its own if given), `"head"` (the head `name` alone on 512-d inputs) or
    `"torch"` (a model of `torch_reference`). `jit_compile` `None` keeps the
    library's default; `policy` is a Keras dtype policy.
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
    channels_last: bool = False
    head: str | None = None

    @property
    def label(self):
        if self.framework == "torch":
            return f"PyTorch {self.name}" + (" channels_last" if self.channels_last else "")
        parts = [f"Keras/{'TF' if self.framework == 'tensorflow' else 'JAX'}", self.name]
        if self.head:
            parts.append(f"head={self.head}")
        if self.center_loss_weight:
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
                Case("lenetpp", "torch", "torch", torch_name, 128, steps, channels_last=True),
                Case("lenetpp", "tensorflow", "recipe", recipe, 128, steps, jit_compile=False),
                Case("lenetpp", "tensorflow", "recipe", recipe, 128, steps, jit_compile=True),
                Case("lenetpp", "jax", "recipe", recipe, 128, steps),
            ]
    if "sphere" in groups:
        found += [
            Case("sphere", "torch", "torch", "sphere20a", 32, sphere_steps),
            Case("sphere", "torch", "torch", "sphere20a", 32, sphere_steps, channels_last=True),
            Case("sphere", "tensorflow", "recipe", "sphereface20", 32, sphere_steps, jit_compile=False),
            Case("sphere", "tensorflow", "recipe", "sphereface20", 32, sphere_steps, jit_compile=True),
            Case("sphere", "jax", "recipe", "sphereface20", 32, sphere_steps),
        ]
    if "heads" in groups:
        setups = [("tensorflow", False, 128), ("tensorflow", False, 512), ("tensorflow", True, 128), ("jax", None, 128)]
        for framework, jit, batch_size in setups:
            found += [Case("heads", framework, "head", head, batch_size, steps * 2, jit) for head in HEADS]
            found.append(
                Case("heads", framework, "head", "softmax", batch_size, steps * 2, jit, center_loss_weight=0.003)
            )
    if "recipe_heads" in groups:
        variants = [(head, 0.0) for head in ("softmax", "sphereface", "cosface", "arcface")] + [("softmax", 0.003)]
        found += [
            Case(
                "recipe_heads",
                "tensorflow",
                "recipe",
                "sphereface20",
                32,
                sphere_steps,
                head=head,
                center_loss_weight=w,
            )
            for head, w in variants
        ]
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

    def __init__(self, framework, torch_python=None, tf_env=None):
        env = dict(os.environ)
        python = sys.executable
        if framework == "torch":
            # GNU OpenMP threads spin while waiting; on a shared machine that
            # costs PyTorch up to half its speed. Passive waiting is the stricter baseline.
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            python = torch_python or python
        else:
            env["KERAS_BACKEND"] = framework
            env.update(tf_env or {})
        self.process = subprocess.Popen(
            [python, os.path.abspath(__file__), "--worker", framework],
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
        waiting = f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
        return {"hardware": f"torch {torch.__version__} on {device}, {waiting}", "accelerator": gpu}
    import keras
    from hardware import describe

    devices = keras.distribution.list_devices()
    gpu = any("gpu" in device.lower() or "cuda" in device.lower() for device in devices)
    return {"hardware": f"{describe()}; devices {', '.join(devices)}", "accelerator": gpu}


def runqueue_wait_seconds():
    """Seconds this process's threads have spent runnable but waiting for a CPU (Linux; 0.0 elsewhere).

    Time taken by other programs on a shared machine shows here, not in the
    process's CPU time: a slow measurement with a large wait met a busy machine.
    """
    total = 0.0
    tasks = "/proc/self/task"
    for task in os.listdir(tasks) if os.path.isdir(tasks) else ():
        try:
            with open(f"{tasks}/{task}/schedstat") as file:
                total += int(file.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):  # the thread ended, or no scheduler statistics
            pass
    return total


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
        trainer.to(device, torch.channels_last if case.channels_last else torch.contiguous_format)
        images, labels = synthetic(shape, classes, case.batch_size * case.steps)
        data = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)
        trainer.fit(*data, case.batch_size, 2)
        models[case] = trainer, data
    trainer, (images, labels) = models[case]
    ends, cpu_ends = [], []

    def on_step_end():
        ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())

    waited = runqueue_wait_seconds()
    loss = trainer.fit(images, labels, case.batch_size, case.steps, on_step_end=on_step_end)
    return {
        "step_seconds": step_seconds(ends),
        "cpu_seconds": step_seconds(cpu_ends),
        "runqueue_seconds": runqueue_wait_seconds() - waited,
        "loss": loss,
    }


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
    waited = runqueue_wait_seconds()
    history = model.fit(images, labels, batch_size=case.batch_size, epochs=1, verbose=0, callbacks=[timer])
    return {
        "step_seconds": step_seconds(timer.ends),
        "cpu_seconds": step_seconds(timer.cpu_ends),
        "runqueue_seconds": runqueue_wait_seconds() - waited,
        "loss": history.history["loss"][-1],
    }


def build_keras(case):
    import keras

    from kerasface import zoo
    from kerasface.layers import CenterLoss
    from kerasface.zoo.face_model import HEADS as HEAD_CLASSES_BY_NAME

    if case.kind == "recipe":
        overrides = {"head": case.head, "center_loss_weight": case.center_loss_weight} if case.head else {}
        model = zoo.build(case.name, steps_per_epoch=case.steps, **overrides)
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
            self.cpu_ends = []

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # JAX dispatches asynchronously: wait for the step
            self.ends.append(time.perf_counter())
            self.cpu_ends.append(time.process_time())

    return StepTimer()


# === Table ===


def run(args):
    frameworks = sorted({case.framework for case in cases(args.groups, 1, 1, False)})
    workers = {framework: Worker(framework, args.torch_python) for framework in frameworks}
    try:
        hardware = {name: worker.request({"describe": True}) for name, worker in workers.items()}
        accelerator = any(found["accelerator"] for found in hardware.values())
        todo = cases(args.groups, args.steps, args.sphere_steps, accelerator)
        load_before = os.getloadavg()[0]
        replies = {case: [] for case in todo}
        for round_index in range(args.rounds):
            start = time.perf_counter()
            for case in todo:
                replies[case].append(workers[case.framework].request({"case": dataclasses.asdict(case)}))
            print(f"round {round_index + 1}/{args.rounds}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    finally:
        for worker in workers.values():
            worker.close()
    print(f"CPU: {cpu_description()}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    for name, found in hardware.items():
        print(f"  {name}: {found['hardware']}")
    rows = [summarise(case, replies[case]) for case in todo]
    print_table(rows, args.groups)
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"cpu": cpu_description(), "hardware": hardware, "rows": rows}, file, indent=2)


# === Spread over fresh processes (issue 13) ===


def spread(args):
    """`--processes N`: LeNet++ (b128) in N fresh pairs of worker processes, one ratio per pair.

    A long-lived worker hides how much a framework's speed depends on the
    process it happens to start in (thread placement, the machine's load at the
    time); here every pair starts anew, measures PyTorch in both layouts and
    each `--tf-variant` of kerasface in turn, and prints every process's ratio
    over the faster PyTorch layout, then the minimum and median per variant.
    "wait ms" is the worker's thread time per step spent runnable but without a
    CPU (other programs' load); "CPU x" compares CPU time per step, PyTorch's
    over kerasface's, which that load disturbs far less than the wall clock.
    A variant is `name` or `name:VAR=VALUE,VAR=VALUE` (environment of its worker).
    """
    variants = dict(parse_variant(text) for text in args.tf_variant)
    steps = args.steps
    torch_cases = [
        Case("lenetpp", "torch", "torch", "lenetpp", 128, steps),
        Case("lenetpp", "torch", "torch", "lenetpp", 128, steps, channels_last=True),
    ]
    keras_case = Case("lenetpp", "tensorflow", "recipe", "lenetpp_softmax", 128, steps)
    print(f"CPU: {cpu_description()}; {args.processes} process pairs, {args.rounds} rounds of {steps} steps each")
    columns = ("images/s", "PyTorch", "ratio", "CPU ms", "wait ms", "PT CPU", "CPU x", "load")
    print(f"{'pair':>4} {'variant':<12} " + " ".join(f"{column:>{width}}" for column, width in zip(columns, WIDTHS)))
    ratios = {name: [] for name in variants}
    cpu_ratios = {name: [] for name in variants}
    for pair in range(args.processes):
        for name, env in variants.items():
            workers = {"torch": Worker("torch", args.torch_python), "tensorflow": Worker("tensorflow", tf_env=env)}
            replies = {case: [] for case in [*torch_cases, keras_case]}
            try:
                for _ in range(args.rounds):
                    for case, found in replies.items():
                        found.append(workers[case.framework].request({"case": dataclasses.asdict(case)}))
            finally:
                for worker in workers.values():
                    worker.close()
            torch_row = max((summarise(case, replies[case]) for case in torch_cases), key=lambda r: r["images_per_s"])
            torch_speed = torch_row["images_per_s"]
            row = summarise(keras_case, replies[keras_case])
            ratios[name].append(row["images_per_s"] / torch_speed)
            cpu_ratios[name].append(torch_row["cpu_ms"] / row["cpu_ms"])
            waited = statistics.median(r["runqueue_seconds"] / len(r["step_seconds"]) for r in replies[keras_case])
            print(
                f"{pair + 1:4d} {name:<12} {row['images_per_s']:9.1f} {torch_speed:8.1f} {ratios[name][-1]:6.2f} "
                f"{row['cpu_ms']:7.0f} {1000 * waited:7.0f} {torch_row['cpu_ms']:7.0f} {cpu_ratios[name][-1]:6.2f} "
                f"{os.getloadavg()[0]:5.1f}",
                flush=True,
            )
    for name, found in ratios.items():
        cpu = cpu_ratios[name]
        print(
            f"{name}: ratio min {min(found):.2f}, median {statistics.median(found):.2f} over {len(found)} processes; "
            f"CPU time per step, PyTorch's over kerasface's: min {min(cpu):.2f}, median {statistics.median(cpu):.2f}"
        )


WIDTHS = (9, 8, 6, 7, 7, 7, 6, 5)


def parse_variant(text):
    name, _, settings = text.partition(":")
    env = dict(setting.split("=", 1) for setting in settings.split(",") if setting)
    return name, env


def cpu_description():
    from hardware import cpu_name

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_name()}, {cores} cores"


def summarise(case, replies):
    """Median wall-clock and process-CPU step times of a case over all its rounds."""
    wall = [seconds for reply in replies for seconds in reply["step_seconds"]]
    cpu = [seconds for reply in replies for seconds in reply["cpu_seconds"]]
    return {
        **dataclasses.asdict(case),
        "label": case.label,
        "step_ms": 1000 * statistics.median(wall),
        "cpu_ms": 1000 * statistics.median(cpu),
        "images_per_s": case.batch_size / statistics.median(wall),
        "wall_range_ms": [1000 * min(wall), 1000 * max(wall)],
        "steps_timed": len(wall),
        "last_loss": replies[-1]["loss"],
    }


TORCH_NAMES = {"lenetpp_softmax": "lenetpp", "lenetpp_center": "lenetpp_center", "sphereface20": "sphere20a"}


def baseline(row, rows):
    """What a row is compared with, and how it is named in the table.

    Networks: the faster PyTorch layout (NCHW or channels_last) of the same
    network. Heads: plain softmax with the same backend, XLA setting and batch.
    Precision: the same case in float32.
    """
    if row["group"] in ("heads", "recipe_heads"):
        keys = ("group", "kind", "framework", "jit_compile", "batch_size")
        found = [r for r in rows if head_of(r) == "softmax" and not r["center_loss_weight"]]
        found = [r for r in found if all(r[key] == row[key] for key in keys)]
        return (found[0], "softmax") if found and found[0] is not row else (None, "")
    if row["group"] == "precision":
        keys = ("framework", "kind", "name")
        found = [r for r in rows if r["group"] == "precision" and r["policy"] == "float32"]
        found = [r for r in found if all(r[key] == row[key] for key in keys)]
        return (found[0], "float32") if found and found[0] is not row else (None, "")
    torch_name = TORCH_NAMES.get(row["name"])
    found = [r for r in rows if r["group"] == row["group"] and r["framework"] == "torch" and r["name"] == torch_name]
    if not found or row["framework"] == "torch":
        return None, ""
    return max(found, key=lambda r: r["images_per_s"]), "the faster PyTorch"


def head_of(row):
    return row["name"] if row["kind"] == "head" else row["head"]


def print_table(rows, groups):
    for group in groups:
        group_rows = [r for r in rows if r["group"] == group]
        if not group_rows:
            continue
        per_step = group in ("heads", "recipe_heads", "precision")
        ratio_header = "wall, CPU time / baseline" if per_step else "images/s / baseline"
        print(f"\n== {group} ==")
        print(
            f"{'case':48s} {'batch':>5s} {'images/s':>9s} {'ms/step':>8s} {'CPU ms':>8s} "
            f"{'wall range':>11s} {'n':>3s}  {ratio_header}"
        )
        for row in group_rows:
            reference, name = baseline(row, rows)
            ratio = ""
            if reference is not None and per_step:
                wall, cpu = row["step_ms"] / reference["step_ms"], row["cpu_ms"] / reference["cpu_ms"]
                ratio = f"{wall:.3f}, {cpu:.3f} x {name}"
            elif reference is not None:
                ratio = f"{row['images_per_s'] / reference['images_per_s']:.2f} x {name}"
            low, high = row["wall_range_ms"]
            print(
                f"{row['label']:48s} {row['batch_size']:5d} {row['images_per_s']:9.1f} {row['step_ms']:8.1f} "
                f"{row['cpu_ms']:8.1f} {f'{low:.0f}-{high:.0f}':>11s} {row['steps_timed']:3d}  {ratio}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--groups", nargs="+", default=["lenetpp", "sphere", "heads", "recipe_heads", "precision"])
    parser.add_argument("--rounds", type=int, default=3, help="times each case is measured (median of all steps)")
    parser.add_argument("--steps", type=int, default=8, help="steps per LeNet++ measurement (heads take twice)")
    parser.add_argument("--sphere-steps", type=int, default=3, help="steps per sphereface20 measurement")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"), help="interpreter with torch")
    parser.add_argument("--processes", type=int, help="spread mode: LeNet++ in this many fresh worker pairs")
    parser.add_argument(
        "--tf-variant", nargs="+", default=["default"], help="spread mode: name[:VAR=VALUE,...] per TF worker"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if args.worker:
        serve(args.worker)
        return 0
    if args.processes:
        spread(args)
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
