"""Callbacks for long training runs: verification on insightface `.bin` sets, and throughput.

arcface_torch evaluates LFW / CFP-FP / AgeDB-30 every N steps during training
(`CallBackVerification` in utils/utils_callbacks.py) and keeps the best
model; `VerificationCallback` does the same inside `model.fit`, with
insightface's protocol (`kerasface.evaluate.insightface_verification`).
"""

import csv
import os
import time
from pathlib import Path

import keras
import numpy as np


class VerificationCallback(keras.callbacks.Callback):
    """Verification accuracy on `.bin` pair sets every `every_n_steps` steps.

    Each evaluation embeds both images of every pair and their mirrors
    (summed, as insightface), runs insightface's 10-fold protocol, prints one
    line, appends a row to `out/verification.csv`, and, when the mean
    accuracy over the sets is the best so far, saves the model to
    `out/best.keras` (written to a temporary file, then renamed). The last
    results also go into the epoch's logs as `{name}_accuracy`, so
    `CSVLogger` and TensorBoard record them.

    Args:
        sets: `{name: path}` of insightface `.bin` files, or `{name: (images_a,
            images_b, issame)}` arrays.
        every_n_steps: evaluate after every this many training steps (and at
            the end of each epoch when `0`). Defaults to `2000` (arcface_torch).
        out: folder for `verification.csv` and `best.keras`; `None` keeps
            neither.
        batch_size: images per forward pass. Defaults to `128`.
    """

    def __init__(self, sets, every_n_steps=2000, out=None, batch_size=128):
        super().__init__()
        if not sets:
            raise ValueError(f"VerificationCallback needs at least one pair set. Received: sets={sets!r}")
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 0:
            raise ValueError(f"every_n_steps must be an integer >= 0. Received: every_n_steps={every_n_steps!r}")
        self.sets = dict(sets)
        self.every_n_steps = every_n_steps
        self.out = None if out is None else Path(out)
        self.batch_size = batch_size
        self.best = -np.inf
        self.last = {}
        self._pairs = None

    def _load(self):
        from kerasface.align import fit_to_template
        from kerasface.evaluate import read_verification_bin

        size = tuple(self.model.embedder.inputs[0].shape[1:3])
        pairs = {}
        for name, source in self.sets.items():
            a, b, same = read_verification_bin(source) if isinstance(source, (str, os.PathLike)) else source
            pairs[name] = (fit_to_template(np.asarray(a), size), fit_to_template(np.asarray(b), size), same)
        return pairs

    def evaluate(self):
        """Runs every set now; returns `{name: InsightFaceVerification}`."""
        from kerasface.evaluate import embed_images, insightface_verification

        if self._pairs is None:
            self._pairs = self._load()
        embedder = self.model.embedder
        results = {}
        for name, (a, b, same) in self._pairs.items():
            results[name] = insightface_verification(
                embed_images(embedder, a, "sum", self.batch_size),
                embed_images(embedder, b, "sum", self.batch_size),
                same,
            )
        return results

    def _run(self, step):
        results = self.evaluate()
        self.last = {f"{name}_accuracy": result.accuracy for name, result in results.items()}
        mean = float(np.mean(list(self.last.values())))
        text = ", ".join(f"{name} {r.accuracy:.4f} +- {r.std:.4f}" for name, r in results.items())
        improved = mean > self.best
        print(f"step {step}: verification (insightface protocol): {text}" + (" (best)" if improved else ""))
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / "verification.csv"
            new = not path.exists()
            with open(path, "a", newline="") as file:
                writer = csv.writer(file)
                if new:
                    writer.writerow(["step", *self.last, "protocol"])
                writer.writerow([step, *(f"{v:.6f}" for v in self.last.values()), "insightface"])
            if improved:
                temporary = self.out / ".best.tmp.keras"
                self.model.save(temporary)
                os.replace(temporary, self.out / "best.keras")
        self.best = max(self.best, mean)

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps:
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            if step % self.every_n_steps == 0:
                self._run(step)

    def on_epoch_end(self, epoch, logs=None):
        if not self.every_n_steps:
            self._run(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
        if logs is not None:
            logs.update(self.last)


class ImagesPerSecond(keras.callbacks.Callback):
    """Adds `images_per_second` (training throughput since the epoch began) to the logs.

    The progress bar shows it beside the loss; the epoch's value goes to the
    CSV log. The first step of a run (tracing and compilation) is left out.
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = int(batch_size)
        self.start = None
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = None, 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.start is None:
            self.start = now
            return
        self.steps += 1
        if logs is not None:
            logs["images_per_second"] = self.steps * self.batch_size / max(now - self.start, 1e-9)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.steps and self.start is not None:
            logs["images_per_second"] = self.steps * self.batch_size / max(time.perf_counter() - self.start, 1e-9)
