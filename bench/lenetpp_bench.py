"""Every `lenetpp_*` recipe trained on Fashion-MNIST: accuracy, speed, compactness.

For each recipe: test accuracy, training images/s, and the ratio of mean
intra-class to mean inter-class angle (and distance) of the 2-d test
features. With `--open-set`, each recipe is also trained on classes 0-6 only
and the LFW 10-fold protocol is run on pairs of test images from the unseen
classes 7-9 (cosine of the 2-d features), as a face model meets new people.

Each recipe trains for its own length (`--steps` overrides it): the
caffe-face MNIST solver's 10,000 iterations of 128 images, about 21 passes
over the 60k training images.

Usage:
    python bench/lenetpp_bench.py [--train-size 60000] [--steps N] [--open-set] [--json out.json]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hardware import describe  # noqa: E402


LOG_EVERY = 500


def train_recipe(name, images, labels, steps, seed):
    """The recipe trained for `steps` iterations (its own length when None) on shuffled, repeated data."""
    import keras
    import tensorflow as tf

    from kerasface import zoo

    keras.utils.set_random_seed(seed)
    spec = zoo.recipe(name)
    steps = steps or spec.steps
    steps_per_epoch = -(-len(images) // spec.batch_size)
    model = zoo.build(name, num_classes=int(labels.max()) + 1, steps_per_epoch=steps_per_epoch)
    data = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(spec.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    chunk = min(LOG_EVERY, steps)
    start = time.perf_counter()
    model.fit(data, epochs=steps // chunk, steps_per_epoch=chunk, verbose=0)
    return model, steps, (steps // chunk) * chunk * spec.batch_size / (time.perf_counter() - start)


def open_set_pairs(labels, seen, pairs_per_fold=300, folds=10, seed=0):
    """Indices of 10 folds of 300 same + 300 different pairs among unseen classes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    unseen = np.flatnonzero(~np.isin(labels, seen))
    a, b, same = [], [], []
    for _ in range(folds):
        for is_same in (True, False):
            count = 0
            while count < pairs_per_fold:
                i, j = rng.choice(unseen, 2, replace=False)
                if (labels[i] == labels[j]) == is_same:
                    a.append(i), b.append(j), same.append(is_same)
                    count += 1
    return np.array(a), np.array(b), np.array(same)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="*")
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--steps", type=int, help="iterations (default: each recipe's own length)")
    parser.add_argument("--open-set", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import numpy as np

    from kerasface import zoo
    from kerasface.data import load_fashion_mnist
    from kerasface.evaluate import class_separation, cosine_scores, verify

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    names = args.recipes or zoo.names("lenetpp_*")
    length = f"{args.steps} iterations" if args.steps else "each recipe's own schedule"
    print(f"Fashion-MNIST, {len(x_train)} training images, {length}; {describe()}")
    print(f"{'recipe':20s} {'test acc':>8s} {'images/s':>9s} {'angle ratio':>11s} {'dist ratio':>10s} {'open-set':>15s}")
    results = {}
    for name in names:
        model, steps, speed = train_recipe(name, x_train, y_train, args.steps, args.seed)
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
        separation = class_separation(model.predict(x_test, verbose=0), y_test)
        row = {
            "steps": steps,
            "test_accuracy": accuracy,
            "images_per_second": speed,
            "angle_ratio": separation.angle_ratio,
            "distance_ratio": separation.distance_ratio,
        }
        open_set = ""
        if args.open_set:
            seen = np.arange(7)
            keep = np.isin(y_train, seen)
            model, _, _ = train_recipe(name, x_train[keep], y_train[keep], args.steps, args.seed)
            a, b, same = open_set_pairs(y_test, seen, seed=args.seed)
            features = model.predict(x_test, verbose=0)
            result = verify(cosine_scores(features[a], features[b]), same)
            row["open_set_accuracy"], row["open_set_std"] = result.accuracy, result.std
            open_set = f"{result.accuracy:.4f}+-{result.std:.4f}"
        results[name] = row
        print(
            f"{name:20s} {accuracy:8.4f} {speed:9.0f} {separation.angle_ratio:11.3f} "
            f"{separation.distance_ratio:10.3f} {open_set:>15s}",
            flush=True,
        )
        if args.json:  # after every recipe, so a long run keeps what it finished
            with open(args.json, "w") as handle:
                json.dump({"hardware": describe(), "settings": vars(args), "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
