"""`kerasface evaluate`: verification or re-identification metrics of a saved model."""

import json
import sys
from pathlib import Path

import numpy as np

TABLE_FARS = (1e-1, 1e-2, 1e-3, 1e-4)
DEPLOYMENT_FAR = 1e-3

PROTOCOL_CHOICES = ("insightface", "midpoint")
FLIP_CHOICES = ("sum", "concat", "none")
# Every number printed or written says which of these produced it.
ROC_PROTOCOL = "roc-all-pairs"
ROC_DESCRIPTION = "ROC of cosine scores over all pairs at once, no folds; accept when score >= threshold"
REID_PROTOCOL = "market1501"
REID_DESCRIPTION = (
    "Market-1501 single query, cosine ranking; the gallery's junk (-1) and the query person's images from "
    "the query's camera are removed"
)


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, TAR@FAR and ROC on face pairs, or CMC/mAP on Market-1501",
        description=(
            "Scores a saved .keras embedding model. The model receives RGB pixels in [0, 255] as "
            "float32, so it must hold its own preprocessing. Aligned .bin faces are cropped to the "
            "model's template (ArcFace 112x112 to SphereFace 112x96: columns 8:104), never resized; "
            "LFW and Market-1501 images are resized to the model's input size. Every number is "
            "printed with the protocol that produced it."
        ),
    )
    parser.add_argument("model", help="a .keras model from images (n, h, w, 3) to embeddings (n, dim)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="LFW pairs.txt (with --root)")
    source.add_argument("--bin", help="insightface verification file (lfw.bin, cfp_fp.bin, agedb_30.bin)")
    source.add_argument("--reid", help="Market-1501 folder holding query/ and bounding_box_test/")
    parser.add_argument("--root", help="LFW image folder (name/name_0001.jpg), with --pairs")
    parser.add_argument("--out", default=".", help="folder for roc.png (default: the current folder)")
    parser.add_argument("--folds", type=int, default=10, help="verification folds (default: 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        help=(
            "verification protocol: insightface (arcface_torch eval/verification.py, that of published "
            "LFW/CFP-FP/AgeDB-30 numbers; default with --bin) or midpoint (exact optimum on cosine "
            "scores; default with --pairs)"
        ),
    )
    parser.add_argument(
        "--flip",
        choices=FLIP_CHOICES,
        help=(
            "combine each embedding with its horizontal mirror's: sum (insightface; default with the "
            "insightface protocol and --reid), concat (SphereFace; default with midpoint) or none"
        ),
    )
    parser.add_argument("--json", help="also write the numbers, each with its protocol, to this JSON file")
    parser.set_defaults(func=run)


def _settings(args):
    """`(protocol, flip)`: the choices given, else the defaults of the evaluation set."""
    protocol = args.protocol or ("midpoint" if args.pairs else "insightface")
    flip = args.flip or ("concat" if protocol == "midpoint" and not args.reid else "sum")
    return protocol, None if flip == "none" else flip


def run(args):
    if args.pairs and not args.root:
        print("kerasface evaluate: error: --pairs needs --root, the LFW image folder", file=sys.stderr)
        return 2
    if args.reid and args.protocol:
        print("kerasface evaluate: error: --protocol applies to verification (--bin, --pairs), not --reid", file=sys.stderr)
        return 2
    from kerasface import evaluate
    from kerasface.cli.main import error_message, load_model_file

    protocol, flip = _settings(args)
    try:
        model = load_model_file(args.model)
        if args.reid:
            rows, numbers = reid_results(model, args, flip)
            print(_format(rows))
            _write_json(args, numbers)
            return 0
        embeddings_a, embeddings_b, issame = _verification_embeddings(model, args, flip)
        rows, numbers = verification_results(embeddings_a, embeddings_b, issame, args.folds, protocol, flip)
        print(_format(rows))
        scores = evaluate.cosine_scores(embeddings_a, embeddings_b)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        far, tar, _ = evaluate.roc(scores, issame)
        print(f"ROC curve: {evaluate.plot_roc(far, tar, out / 'roc.png', label=Path(args.model).stem)}")
        _write_json(args, numbers)
    except (ValueError, OSError) as error:
        print(f"kerasface evaluate: error: {error_message(error)}", file=sys.stderr)
        return 1
    return 0


def _write_json(args, numbers):
    if args.json:
        numbers = {"model": str(args.model), "data": str(args.bin or args.pairs or args.reid), **numbers}
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
        print(f"numbers: {args.json}")


def _image_size(model):
    """The model's (height, width), or `None` where it accepts any size."""
    height, width = model.input_shape[1:3]
    return None if height is None or width is None else (height, width)


def _verification_embeddings(model, args, flip):
    from kerasface import evaluate
    from kerasface.align import fit_to_template

    size = _image_size(model)
    if args.bin:
        # Aligned crops are cropped to the model's template (ArcFace 112x112 -> SphereFace 112x96), never resized.
        images_a, images_b, issame = evaluate.read_verification_bin(args.bin)
        images_a, images_b = fit_to_template(images_a, size), fit_to_template(images_b, size)
    else:
        paths_a, paths_b, issame = evaluate.read_lfw_pairs(args.pairs)
        root = Path(args.root)
        images_a = evaluate.load_images([root / path for path in paths_a], size)
        images_b = evaluate.load_images([root / path for path in paths_b], size)
    embeddings_a = evaluate.embed_images(model, images_a, flip=flip, batch_size=args.batch_size)
    embeddings_b = evaluate.embed_images(model, images_b, flip=flip, batch_size=args.batch_size)
    return embeddings_a, embeddings_b, issame


def verification_results(embeddings_a, embeddings_b, issame, folds, protocol="insightface", flip="sum"):
    """The printed rows and the JSON numbers: k-fold accuracy (and VAL@FAR), TAR at the measurable FARs.

    Each row's name says which protocol produced its number; each JSON entry
    carries its `protocol`.
    """
    from kerasface import evaluate

    issame = np.asarray(issame, dtype=bool)
    scores = evaluate.cosine_scores(embeddings_a, embeddings_b)
    smallest = evaluate.smallest_measurable_far(issame)
    flip_name = flip or "none"
    rows = [
        ("pairs", f"{len(issame)} ({int(issame.sum())} same, {int((~issame).sum())} different)"),
        ("protocol", f"{protocol} (flip: {flip_name}); {evaluate.PROTOCOLS[protocol]}"),
    ]
    numbers = {
        "pairs": len(issame),
        "flip": flip_name,
        "protocols": {protocol: evaluate.PROTOCOLS[protocol], ROC_PROTOCOL: ROC_DESCRIPTION},
    }
    if protocol == "insightface":
        result = evaluate.insightface_verification(embeddings_a, embeddings_b, issame, folds=folds)
    else:
        result = evaluate.verify(scores, issame, folds=folds)
    tag = f"{result.protocol}, {folds} folds"
    rows.append((f"accuracy ({tag})", f"{100 * result.accuracy:.2f}% ± {100 * result.std:.2f}%"))
    numbers["accuracy"] = {
        "protocol": result.protocol,
        "folds": folds,
        "mean": result.accuracy,
        "std": result.std,
        "fold_thresholds": list(result.fold_thresholds),
    }
    if protocol == "insightface":
        rows.append(
            (
                f"VAL @ FAR={result.far_target:.0e} ({tag})",
                f"{100 * result.val:.2f}% ± {100 * result.val_std:.2f}% (FAR reached {result.far:.2e})",
            )
        )
        numbers["val_at_far"] = {
            "protocol": result.protocol,
            "folds": folds,
            "far_target": result.far_target,
            "mean": result.val,
            "std": result.val_std,
            "far": result.far,
        }
    tar = {}
    for far in TABLE_FARS:
        value = evaluate.tar_at_far(scores, issame, far) if far >= smallest else None
        tar[f"{far:.0e}"] = value
        rows.append(
            (
                f"TAR @ FAR={far:.0e} ({ROC_PROTOCOL})",
                "n/a (too few different pairs)" if value is None else f"{100 * value:.2f}%",
            )
        )
    threshold = evaluate.threshold_at_far(scores, issame, DEPLOYMENT_FAR) if DEPLOYMENT_FAR >= smallest else None
    rows.append(
        (
            f"cosine threshold @ FAR={DEPLOYMENT_FAR:.0e} ({ROC_PROTOCOL})",
            "n/a (too few different pairs)" if threshold is None else f"{threshold:.4f}",
        )
    )
    numbers["tar_at_far"] = {"protocol": ROC_PROTOCOL, **tar}
    numbers["cosine_threshold_at_far"] = {"protocol": ROC_PROTOCOL, "far": DEPLOYMENT_FAR, "threshold": threshold}
    return rows, numbers


def reid_results(model, args, flip):
    """Embeds Market-1501's query and gallery images: the printed CMC and mAP rows and the JSON numbers."""
    from kerasface import evaluate

    size = _image_size(model)
    query, gallery = evaluate.read_market1501(args.reid)
    features = [
        evaluate.embed_images(model, evaluate.load_images(split.paths, size), flip, args.batch_size)
        for split in (query, gallery)
    ]
    result = evaluate.cmc_map(
        features[0], query.ids, query.cams, features[1], gallery.ids, gallery.cams, ranks=(1, 5, 10)
    )
    rows = [
        ("queries", f"{result.num_queries} of {len(query.ids)}"),
        ("gallery", str(len(gallery.ids))),
        ("protocol", f"{REID_PROTOCOL} (flip: {flip or 'none'}); {REID_DESCRIPTION}"),
    ]
    rows += [(f"CMC rank-{rank}", f"{100 * rate:.2f}%") for rank, rate in result.cmc.items()]
    rows.append(("mAP", f"{100 * result.mean_ap:.2f}%"))
    numbers = {
        "queries": result.num_queries,
        "gallery": len(gallery.ids),
        "flip": flip or "none",
        "protocols": {REID_PROTOCOL: REID_DESCRIPTION},
        "cmc": {"protocol": REID_PROTOCOL, **{str(rank): rate for rank, rate in result.cmc.items()}},
        "mean_ap": {"protocol": REID_PROTOCOL, "value": result.mean_ap},
    }
    return rows, numbers


def _format(rows):
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
