"""Share of a `sphereface20` training step spent waiting for input (issue 13).

Trains the same model for the same steps twice in one process, alternating:
from a folder of JPEG faces through `kerasface.train.training_data` (decode,
flip, prefetch, as `train()` feeds `fit`), and from the same batches already
decoded in memory. The waiting share is `1 - t_memory / t_folder`: what
`fit` loses to the input pipeline once prefetching overlaps it with compute.

Usage:
    python bench/input_wait_bench.py [--steps 30] [--batch 32] [--rounds 3]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hardware import describe  # noqa: E402


def write_faces(root, identities, each, shape, seed=0):
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    for identity in range(identities):
        folder = Path(root) / f"id{identity:03d}"
        folder.mkdir(parents=True)
        template = rng.integers(0, 200, shape, dtype=np.uint8)
        for i in range(each):
            face = (template + rng.integers(0, 50, shape)).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i}.jpg"), face, [cv2.IMWRITE_JPEG_QUALITY, 90])


def timed_fit(model, data, steps):
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from kerasface import zoo
    from kerasface.train import training_data

    spec = zoo.recipe("sphereface20").for_batch_size(args.batch)
    with tempfile.TemporaryDirectory() as root:
        write_faces(root, identities=16, each=args.batch, shape=spec.input_shape)
        folder, _, classes, _, _ = training_data(spec, root, seed=0)
        model = zoo.from_recipe(spec.replace(num_classes=classes), steps_per_epoch=100)
        cached = list(folder.take(args.steps))
        memory = tf.data.Dataset.from_tensor_slices(
            (tf.stack([x for x, _ in cached]), tf.stack([y for _, y in cached]))
        ).unbatch().batch(args.batch).repeat().prefetch(2)
        timed_fit(model, memory, 2)  # trace once
        times = {"folder": [], "memory": []}
        for _ in range(args.rounds):
            times["memory"].append(timed_fit(model, memory, args.steps))
            times["folder"].append(timed_fit(model, folder, args.steps))
    best = {key: min(values) for key, values in times.items()}
    print(f"sphereface20, batch {args.batch}, {args.steps} steps x {args.rounds} rounds; {describe()}")
    for key in ("memory", "folder"):
        print(f"  from {key:6s}: {args.steps * args.batch / best[key]:7.1f} images/s (best of {args.rounds})")
    print(f"  share of the step waiting for input: {max(0.0, 1 - best['memory'] / best['folder']):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
