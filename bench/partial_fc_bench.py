"""Step time and peak memory of a 512-d ArcFace head, full and Partial FC.

For every number of classes and sample rate, a fresh Python process trains an
`ArcFace(num_classes, sample_rate=...)` head alone on random 512-d
embeddings (one batch of 128, repeated) through `keras.Model.fit` with the loss
`FaceModel` uses (`head.logits_and_labels`), and arcface_torch's optimiser:
SGD, momentum 0.9, weight decay 5e-4 added to the gradient, PyTorch's momentum
form. A sampling head trains two ways: `rows`, `FaceModel`'s step
(`SampledRowsTraining`: only the sampled rows and their momentum are read
and written), and `dense`, Keras' own `train_step` (a dense kernel gradient,
every row stepped).

It reports the median step time after the first (tracing) step, the resident
memory once the kernel and the optimiser's momentum exist, the process's
peak resident memory (`getrusage` maxrss), both as ratios to the full head,
and the floor: the resident memory before the head was built (Python and the
backend) plus the arrays a step cannot do without. For a sampling head that
is the kernel and its momentum, `2 C d` floats, plus the sampled rows, their
gradient and the logits, `2 S d + B S`; for the full head the kernel, its
momentum, its gradient and the logits, `3 C d + B C` (C classes, S sampled,
d = 512, B = 128, float32).

Usage:
    python bench/partial_fc_bench.py [--classes 10000 100000 1000000] [--rates 1 0.3 0.1]
        [--paths rows dense] [--steps 4] [--backend tensorflow|jax] [--jit-compile]

`--jit-compile` compiles the TensorFlow step with XLA (JAX always does), which fuses
the elementwise work of the margin and the optimiser into fewer temporaries.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hardware import cpu_name

EMBEDDING_DIM = 512
BATCH_SIZE = 128


def total_memory_gib():
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return float("nan")
    total_kib = next(int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal"))
    return total_kib / 2**20


def resident_mib():
    """This process's resident memory now (Linux `/proc/self/statm`)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_resident_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux


def volunteer_for_the_oom_killer():
    """Makes a worker the first process Linux kills when memory runs out, not
    another program: the full head's largest configurations may not fit."""
    score = Path("/proc/self/oom_score_adj")
    if score.exists():
        score.write_text("1000")


def floor_mib(num_classes, num_sampled):
    """MiB of the arrays a step can't do without (see the module docstring), float32."""
    if num_sampled == num_classes:
        floats = 3 * num_classes * EMBEDDING_DIM + BATCH_SIZE * num_classes
    else:
        floats = 2 * num_classes * EMBEDDING_DIM + 2 * num_sampled * EMBEDDING_DIM + BATCH_SIZE * num_sampled
    return floats * 4 / 2**20


def measure(num_classes, sample_rate, path, steps, jit_compile=False, seed=0):
    """Trains the head for `steps` steps in this process; returns the measurements."""
    import keras
    import numpy as np

    from kerasface import heads, optimizers

    baseline_mib = resident_mib()
    # `rows`: FaceModel's sampled-rows step; `dense`: Keras' own train_step.
    base = (heads.SampledRowsTraining, keras.Model) if path == "rows" else (keras.Model,)

    class HeadTrainer(*base):
        """Fits a head alone on given embeddings, with FaceModel's loss."""

        def __init__(self, head):
            super().__init__()
            self.head = head

        def call(self, embeddings):
            return embeddings

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            logits, labels = self.head.logits_and_labels(y_pred, y, training)
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)
            losses.append(float(logs["loss"]))

    keras.utils.set_random_seed(seed)
    head = heads.ArcFace(num_classes, sample_rate=sample_rate)
    head.build((None, EMBEDDING_DIM))
    model = HeadTrainer(head)
    model.compile(
        optimizer=optimizers.SGD(0.1, momentum=0.9, l2_decay=5e-4, momentum_style="pytorch"),
        jit_compile=jit_compile or "auto",
    )
    model.optimizer.build(model.trainable_variables)
    setup_mib = resident_mib()

    # One batch, repeated: the falling loss shows that the head learns it.
    rng = np.random.default_rng(seed)
    embeddings = np.tile(rng.normal(size=(BATCH_SIZE, EMBEDDING_DIM)).astype("float32"), (steps + 1, 1))
    labels = np.tile(rng.integers(0, num_classes, BATCH_SIZE).astype("int32"), steps + 1)
    times, losses = [], []
    model.fit(embeddings, labels, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0, callbacks=[StepTimer()])
    return {
        "num_sampled": head.num_sampled,
        "floor_mib": baseline_mib + floor_mib(num_classes, head.num_sampled),
        "step_s": statistics.median(times[1:]),
        "first_step_s": times[0],
        "setup_mib": setup_mib,
        "peak_mib": peak_resident_mib(),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def run_worker(num_classes, sample_rate, path, steps, backend, jit_compile=False):
    """`measure` in a fresh interpreter, so that each peak is its own."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, __file__, "--worker", str(num_classes), str(sample_rate), path, "--steps", str(steps)]
    command += ["--jit-compile"] if jit_compile else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = "killed, out of memory?" if done.returncode == -9 else done.stderr.strip().splitlines()[-1:]
        return {"error": f"exit {done.returncode}: {reason}"}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["transient_mib"] = row["peak_mib"] - row["setup_mib"]
    return row


def ratio(row, full, key):
    """`row[key]` over the full head's, as a table cell."""
    return f"{row[key] / full[key]:>8.2f}" if full else f"{'-':>8}"


def table(rows):
    """Rows `((num_classes, rate, path), measurements)`, each class count's full head first."""
    header = (
        f"{'classes':>9}{'rate':>6}{'path':>6}{'sampled':>9}{'step s':>9}{'x full':>8}{'setup MiB':>11}"
        f"{'peak MiB':>10}{'x full':>8}{'floor MiB':>11}{'x floor':>9}{'loss first->last':>20}"
    )
    lines = [header]
    full_rows = {}
    for (num_classes, rate, path), row in rows:
        if "error" in row:
            lines.append(f"{num_classes:>9}{rate:>6}{path:>6}  {row['error']}")
            continue
        if rate == 1.0:
            full_rows[num_classes] = row
        full = full_rows.get(num_classes)
        lines.append(
            f"{num_classes:>9}{rate:>6}{path if rate < 1 else '-':>6}{row['num_sampled']:>9}{row['step_s']:>9.3f}"
            f"{ratio(row, full, 'step_s')}{row['setup_mib']:>11.0f}{row['peak_mib']:>10.0f}"
            f"{ratio(row, full, 'peak_mib')}{row['floor_mib']:>11.0f}{row['peak_mib'] / row['floor_mib']:>9.2f}"
            f"{row['first_loss']:>11.2f} -> {row['last_loss']:<5.2f}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 0.3, 0.1], help="1.0 (full head) first")
    parser.add_argument("--paths", nargs="+", default=["rows", "dense"], choices=["rows", "dense"],
                        help="how a sampling head trains (see the module docstring)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps after the first")
    parser.add_argument("--jit-compile", action="store_true", help="XLA on TensorFlow too")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--worker", nargs=3, metavar=("CLASSES", "RATE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        volunteer_for_the_oom_killer()
        num_classes, rate, path = args.worker
        print(json.dumps(measure(int(num_classes), float(rate), path, args.steps, args.jit_compile)))
        return 0

    print(
        f"CPU: {cpu_name()} ({os.cpu_count()} logical cores), {total_memory_gib():.1f} GiB RAM; "
        f"Keras backend {args.backend}; ArcFace {EMBEDDING_DIM}-d, batch {BATCH_SIZE}, "
        f"SGD momentum 0.9 + weight decay 5e-4 (arcface_torch); median of {args.steps} steps after the first; "
        f"XLA {'on' if args.jit_compile or args.backend == 'jax' else 'off'}"
    )
    print(
        "setup = resident memory with the kernel and momentum built; peak = maxrss of the process; "
        "floor = resident before the head + the arrays a step needs; rate 1.0 = the full head"
    )
    rows = []
    for num_classes in args.classes:
        for rate in args.rates:
            for path in args.paths if rate < 1 else ["rows"]:
                row = run_worker(num_classes, rate, path, args.steps, args.backend, args.jit_compile)
                rows.append(((num_classes, rate, path), row))
                print(table(rows).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
