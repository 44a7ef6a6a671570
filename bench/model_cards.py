"""Writes zoo/<recipe>.md, one model card per recipe, from the recipe itself,
parameter counts measured by building it, and benchmark results (JSON).

Usage:
    python bench/model_cards.py [--lenetpp zoo/measured/lenetpp.json [more.json ...]] [--out zoo]

With several --lenetpp files, a recipe's result comes from the last file that
has it (each file keeps its own settings and hardware).
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REFERENCE_CODE = {
    "sphereface": "the SphereFace Caffe prototxts (github.com/wy1iu/sphereface, `sphereface_model.prototxt`)",
    "lenet_plus_plus": "the centre-loss Caffe MNIST example (github.com/ydwen/caffe-face, `mnist_example`)",
    "inception_resnet_v1": "davidsandberg/facenet `src/models/inception_resnet_v1.py`",
    "mobilefacenet": "the MobileFaceNet paper's Table 1 and insightface `recognition/arcface_torch/backbones/mobilefacenet.py`",
    "iresnet": "insightface `recognition/arcface_torch/backbones/iresnet.py` and `configs/ms1mv2_r50.py`",
    "resnet50_reid": "the SphereReID paper (network D: GAP, BN, dropout 0.5, FC 1024, BN, L2) on torchvision's "
    "ResNet-50 (v1.5: stride in the 3x3 conv, no conv biases, PyTorch batch-norm settings), written in Keras; "
    "schedule from the CoinCheung/SphereReID reproduction",
}


def hyper_parameters(spec):
    rows = [
        ("backbone", f"`{spec.backbone}` {spec.backbone_args or ''}"),
        ("input (h x w x c)", " x ".join(map(str, spec.input_shape))),
        ("preprocessing (inside the model)", f"`{spec.preprocessing.description}`"),
        ("embedding", f"{spec.embedding_dim}-d"),
        ("classes (default)", f"{spec.num_classes:,}"),
    ]
    if spec.head:
        rows.append(("head", f"`{spec.head}` {spec.head_args or ''}"))
    if spec.center_loss_weight:
        rows.append(("centre loss", f"lambda {spec.center_loss_weight}, alpha {spec.center_loss_alpha}"))
    if spec.metric_loss:
        rows.append(("metric loss", f"`{spec.metric_loss}` {spec.metric_loss_args}"))
    rows += [
        ("optimiser", f"{spec.optimizer} {spec.optimizer_args or ''} (`l2_decay`: added to the gradient, as the "
         "reference; see `kerasface.optimizers`)"),
        ("schedule", f"{spec.schedule} {spec.schedule_args} (rates change at each boundary)"),
        ("global batch (the rate's)", str(spec.batch_size)
         + (f" (P={spec.identities_per_batch} x K={spec.images_per_identity})" if spec.identities_per_batch else "")
         + "; `train(batch_size=...)` scales the rate linearly"),
        ("length", f"{spec.steps:,} iterations" if spec.steps else f"{spec.epochs} epochs"
         + (f" of {spec.paper_steps_per_epoch():,} iterations ({spec.dataset_size:,} images)" if spec.dataset_size else "")),
    ]
    return "\n".join(f"| {key} | {value} |" for key, value in rows)


def measured_section(spec, lenetpp):
    if spec.backbone == "lenet_plus_plus" and spec.name in lenetpp.get("results", {}):
        row = lenetpp["results"][spec.name]
        settings = lenetpp["settings"]
        length = f"{row['steps']:,} iterations" if "steps" in row else f"{settings['epochs']} epochs"
        text = (
            f"On Fashion-MNIST ({settings['train_size']} training images, {length}, "
            f"the recipe's optimiser and schedule), on {lenetpp['hardware']}:\n\n"
            f"| test accuracy | training images/s | intra/inter angle | intra/inter distance |"
            + (" open-set 10-fold (classes 7-9 unseen) |" if "open_set_accuracy" in row else "")
            + "\n|---|---|---|---|" + ("---|" if "open_set_accuracy" in row else "") + "\n"
            f"| {row['test_accuracy']:.4f} | {row['images_per_second']:.0f} | {row['angle_ratio']:.3f} | "
            f"{row['distance_ratio']:.3f} |"
            + (f" {row['open_set_accuracy']:.4f} +- {row['open_set_std']:.4f} |" if "open_set_accuracy" in row else "")
        )
        command = (
            f"cd bench && python lenetpp_bench.py --train-size {settings['train_size']}"
            + (f" --recipes {' '.join(settings['recipes'])}" if settings.get("recipes") else "")
            + (f" --steps {settings['steps']}" if settings.get("steps") else "")
            + (f" --epochs {settings['epochs']}" if settings.get("epochs") else "")
            + (" --open-set" if settings.get("open_set") else "")
            + f" --json ../{lenetpp.get('file', 'zoo/measured/lenetpp.json')}"
        )
        note = f"\n\n**Note:** {settings['note']}." if settings.get("note") else ""
        return text + note + (
            f"\n\nMeasured with `{command}`; the recipe's full schedule is "
            f"`--train-size 60000` ({spec.steps:,} iterations)."
        )
    return (
        "No face-identity data set installs on our machines, so this recipe is not trained here. It is proven by:\n"
        "the parity of its head and losses with pytorch-metric-learning / tensorflow-addons "
        "(`tests/test_heads_parity.py`, `tests/test_losses_parity.py`, on TensorFlow and JAX), the backbone's "
        "parameter count and forward pass against the reference architecture (`tests/backbones/`), the recipe built "
        "at a tiny size with its head, loss and schedule (`tests/zoo/`), and one training step of every recipe under "
        "`MirroredStrategy` and on two workers (`pytest -m slow tests/distribute/test_every_recipe.py`). "
        "Export sizes and latencies: "
        "`python bench/export_bench.py " + spec.name + "`."
    )


def notes_section(spec):
    from kerasface.zoo.registry import notes

    text = notes(spec.name)
    return f"\n## How it follows the reference\n\n{text}\n" if text else ""


def card(spec, params, lenetpp):
    lenetpp = lenetpp.get(spec.name, {})
    embedder_params, head_params = params
    return f"""# `{spec.name}`

**Paper:** {spec.paper}

**Reference code followed:** {REFERENCE_CODE[spec.backbone]}. Our code is our own, written with `keras.ops`.
Every training constant is pinned against the reference files in `tests/zoo/test_reference_settings.py`
(table with sources: `docs/reference_settings.md`).
{notes_section(spec)}
## Architecture and hyper-parameters

| setting | value |
|---|---|
{hyper_parameters(spec)}

Parameters (measured by building it): embedder {embedder_params:,}; head {head_params:,} at {spec.num_classes:,} classes.

```python
model = kerasface.zoo.build("{spec.name}", num_classes=...)
```

## What the paper reported

{spec.reported or "No number for this exact setting; see the paper."}

## What we measured

{measured_section(spec, lenetpp)}

## Licences

- Code: Apache-2.0 (kerasface). No pretrained weights are shipped: models start from random initialisation.
- Data the paper trained on: {spec.dataset}. Check its licence before training a model you ship.
"""


def count_params(spec):
    from kerasface import zoo

    model = zoo.from_recipe(spec, compile=False)
    head = model.head.count_params() if model.head is not None else 0
    return model.embedder.count_params(), head


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lenetpp", nargs="+", default=["zoo/measured/lenetpp.json", "zoo/measured/lenetpp_full.json"])
    parser.add_argument("--out", default="zoo")
    args = parser.parse_args(argv)
    from kerasface import zoo

    lenetpp = {}  # recipe name -> the result file that measured it, with only that recipe's result
    for path in map(Path, args.lenetpp):
        if path.exists():
            measured = json.loads(path.read_text())
            for name, row in measured["results"].items():
                lenetpp[name] = {**measured, "results": {name: row}, "file": str(path)}
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    index = ["# Model cards\n", "| recipe | paper | embedder parameters |", "|---|---|---|"]
    for name in zoo.names():
        spec = zoo.recipe(name)
        params = count_params(spec)
        (out / f"{name}.md").write_text(card(spec, params, lenetpp))
        index.append(f"| [`{name}`]({name}.md) | {spec.paper.split(',')[0]} | {params[0]:,} |")
        print("wrote", out / f"{name}.md", flush=True)
    (out / "README.md").write_text("\n".join(index) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
