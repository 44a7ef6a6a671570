"""Size and batch-1 latency of every export of zoo models, side by side with Keras.

For each zoo recipe the embedder (random weights: sizes and speed do not
depend on training) is exported to SavedModel, TFLite fp32 / fp16 / int8 and
ONNX, each export is checked against Keras as `kerasface.export.export` does,
and its file size and mean latency per image (batch 1, the same number of CPU
threads for every runtime) are printed as ratios to Keras.

Usage:
    python bench/export_bench.py [RECIPE ...] [--threads 2] [--repeats 30]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from hardware import cpu_name

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_RECIPES = ("sphereface20", "mobilefacenet_arcface")
CALIBRATION_IMAGES = 64


def bench_recipe(name, folder, threads, repeats):
    """Rows `(format, runtime, size_bytes, latency_s, max_abs_error, mean_cosine)`, Keras first."""
    from kerasface import export, zoo

    embedder = zoo.build(name, compile=False).embedder
    spec = export.ImageSpec.of(embedder)
    image = export.synthetic_images(spec, count=1, seed=11)[0]
    calibration = export.synthetic_images(spec, count=CALIBRATION_IMAGES, seed=12)
    checks = calibration[:16]
    keras_runtime = export.KerasRuntime(embedder)
    keras_file = folder / f"{name}.keras"
    embedder.save(keras_file)
    keras_latency = export.latency_per_image(keras_runtime, image, repeats)
    rows = [("keras", "keras", keras_file.stat().st_size, keras_latency, None, None)]
    for fmt in export.FORMATS.values():
        path = folder / f"{name}{fmt.suffix}"
        try:
            export.export(embedder, path, fmt.name, representative_data=calibration, check_inputs=checks)
        except export.ExportMismatchError as error:
            # Untrained weights make deep networks chaotic: int8 may miss its bound.
            # The file is written; time it all the same.
            print(f"note: {name} {fmt.name}: {error}", file=sys.stderr)
        runtime = export.load_runtime(fmt, path, num_threads=threads)
        parity = export.agreement(keras_runtime(checks), runtime(checks))
        latency = export.latency_per_image(runtime, image, repeats)
        rows.append((fmt.name, runtime.name, export.size_on_disk(path), latency, *parity))
    return spec, rows


def table(name, spec, rows):
    _, _, keras_size, keras_latency, _, _ = rows[0]
    lines = [
        f"{name}: input {spec.height}x{spec.width}x{spec.channels}",
        (
            f"{'format':<13}{'runtime':<13}{'size MB':>9}{'x keras':>9}{'ms/image':>10}"
            f"{'x keras':>9}{'max|diff|':>11}{'mean cos':>10}"
        ),
    ]
    for format, runtime, size, latency, max_abs_error, mean_cosine in rows:
        parity = "" if max_abs_error is None else f"{max_abs_error:>11.2e}{mean_cosine:>10.5f}"
        lines.append(
            f"{format:<13}{runtime:<13}{size / 1e6:>9.2f}{size / keras_size:>9.2f}"
            f"{latency * 1e3:>10.2f}{latency / keras_latency:>9.2f}{parity}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="*", default=DEFAULT_RECIPES, help="zoo recipe names")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every runtime")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per runtime")
    args = parser.parse_args(argv)

    from kerasface import export

    if not export.limit_tensorflow_threads(args.threads):
        print("warning: TensorFlow already started; its thread count is not limited", file=sys.stderr)
    print(
        f"CPU: {cpu_name()} ({os.cpu_count()} logical cores), {args.threads} threads, batch 1, "
        f"mean of {args.repeats} calls"
    )
    with tempfile.TemporaryDirectory() as folder:
        for name in args.recipes:
            spec, rows = bench_recipe(name, Path(folder), args.threads, args.repeats)
            print()
            print(table(name, spec, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
