"""`kerasface train RECIPE --data DIR`: model.fit with checkpoints, logs and --resume."""


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a recipe on a folder of identity folders or Fashion-MNIST")
    parser.add_argument("recipe", help="a recipe name (kerasface zoo lists them)")
    parser.add_argument(
        "--data",
        required=True,
        help="folder of identity folders, an insightface train.rec (or the folder holding it), or 'fashion-mnist'",
    )
    parser.add_argument("--out", default="runs/train", help="output directory (default: runs/train)")
    parser.add_argument("--epochs", type=positive_int, help="epochs (default: the recipe's)")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help="global batch size (default: the recipe's); the learning rate is scaled linearly to it, and P x K "
        "recipes keep K images per identity",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a recipe field, VALUE in JSON, e.g. --set 'input_shape=[56,48,3]' --set embedding_dim=128 "
        "(repeatable)",
    )
    parser.add_argument(
        "--verify",
        nargs="+",
        metavar="BIN",
        help="insightface .bin pair sets (lfw.bin cfp_fp.bin agedb_30.bin) to verify on during training, or 'auto' "
        "for the .bin files beside train.rec; logs verification.csv and keeps best.keras",
    )
    parser.add_argument("--verify-every", type=positive_int, default=2000, help="steps between verifications (2000)")
    parser.add_argument("--lr", type=float, help="the schedule's first learning rate (the others scale with it)")
    parser.add_argument(
        "--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"), help="mixed precision (default float32)"
    )
    parser.add_argument("--devices", type=positive_int, help="train data-parallel on this many GPUs")
    parser.add_argument("--sample-rate", type=float, help="Partial FC: the share of classes sampled per step (0, 1]")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out exactly")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def positive_int(text):
    """An argparse type: a whole number >= 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1. Received: {text!r}")
    return value


def run(args):
    from kerasface import zoo
    from kerasface.train import train

    spec = zoo.recipe(args.recipe)
    fields = check_fields(spec, args.set)
    if args.sample_rate is not None:
        if spec.head is None:
            raise ValueError(f"--sample-rate is for margin heads; recipe {args.recipe!r} trains a metric loss.")
        fields["head_args"] = {**fields.get("head_args", spec.head_args), "sample_rate": args.sample_rate}
    verify = None
    if args.verify:
        verify = "auto" if args.verify == ["auto"] else args.verify
    model, history = train(
        args.recipe, args.data, args.out, epochs=args.epochs, resume=args.resume, batch_size=args.batch_size,
        seed=args.seed, verify=verify, verify_every=args.verify_every, learning_rate=args.lr,
        precision=args.precision, devices=args.devices, **fields,
    )
    last = {key: round(values[-1], 4) for key, values in history.history.items()}
    print(f"trained {args.recipe}: {last}; wrote {args.out}/model.keras and {args.out}/embedder.keras")
    return 0


def parse_fields(assignments):
    """`["embedding_dim=8", "input_shape=[32,32,3]"]` -> `{"embedding_dim": 8, "input_shape": [32, 32, 3]}`."""
    import json

    fields = {}
    for assignment in assignments:
        field, separator, value = assignment.partition("=")
        if not separator or not field.strip():
            raise ValueError(f"--set takes FIELD=VALUE. Received: {assignment!r}")
        try:
            fields[field.strip()] = json.loads(value)
        except json.JSONDecodeError:
            fields[field.strip()] = value
    return fields


# The JSON values each kind of recipe field accepts, and their names.
_JSON_TYPES = {int: (int,), float: (int, float), str: (str,), bool: (bool,), dict: (dict,), tuple: (list,)}
_JSON_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
               tuple: "a list", type(None): "null"}


def check_fields(spec, assignments):
    """The `--set` assignments as recipe fields, each checked on its own against `spec`.

    A value of the wrong JSON type (`embedding_dim=2.5`, `input_shape=7`), an
    unknown field or one the recipe refuses raises a `ValueError` that names
    the `--set` argument.
    """
    import dataclasses

    annotations = {field.name: field.type for field in dataclasses.fields(spec)}
    fields = {}
    for assignment in assignments:
        ((name, value),) = parse_fields([assignment]).items()
        if name in annotations and not _json_value_fits(value, annotations[name]):
            kinds = _kinds(annotations[name])
            expected = " or ".join(_JSON_NAMES.get(kind, getattr(kind, "__name__", str(kind))) for kind in kinds)
            raise ValueError(f"--set {assignment}: {name} takes {expected} in JSON. Received: {name}={value!r}")
        try:
            spec.replace(**{name: value})
        except (ValueError, TypeError, OverflowError) as error:
            raise ValueError(f"--set {assignment}: {error}") from error
        fields[name] = value
    return fields


def _kinds(annotation):
    import types

    return annotation.__args__ if isinstance(annotation, types.UnionType) else (annotation,)


def _json_value_fits(value, annotation):
    import math

    kinds = _kinds(annotation)
    if value is None:
        return type(None) in kinds
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is no integer
    if isinstance(value, float) and not math.isfinite(value):
        return False
    allowed = tuple(json_type for kind in kinds for json_type in _JSON_TYPES.get(kind, (object,)))
    return isinstance(value, allowed)
