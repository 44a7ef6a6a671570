"""`kerasface train RECIPE --data DIR`: model.fit with checkpoints, logs and --resume."""


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a recipe on a folder of identity folders or Fashion-MNIST")
    parser.add_argument("recipe", help="a recipe name (kerasface zoo lists them)")
    parser.add_argument("--data", required=True, help="folder of identity folders, or 'fashion-mnist'")
    parser.add_argument("--out", default="runs/train", help="output directory (default: runs/train)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the recipe's)")
    parser.add_argument(
        "--batch-size",
        type=int,
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
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out exactly")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args):
    from kerasface.train import train

    model, history = train(
        args.recipe, args.data, args.out, epochs=args.epochs, resume=args.resume, batch_size=args.batch_size,
        seed=args.seed, **parse_fields(args.set),
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
        if not separator or not field:
            raise ValueError(f"--set takes FIELD=VALUE. Received: {assignment!r}")
        try:
            fields[field.strip()] = json.loads(value)
        except json.JSONDecodeError:
            fields[field.strip()] = value
    return fields
