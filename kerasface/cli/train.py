"""`kerasface train RECIPE --data DIR`: model.fit with checkpoints, logs and --resume."""


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a recipe on a folder of identity folders or Fashion-MNIST")
    parser.add_argument("recipe", help="a recipe name (kerasface zoo lists them)")
    parser.add_argument("--data", required=True, help="folder of identity folders, or 'fashion-mnist'")
    parser.add_argument("--out", default="runs/train", help="output directory (default: runs/train)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out exactly")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args):
    from kerasface.train import train

    model, history = train(
        args.recipe, args.data, args.out, epochs=args.epochs, resume=args.resume, batch_size=args.batch_size,
        seed=args.seed,
    )
    last = {key: round(values[-1], 4) for key, values in history.history.items()}
    print(f"trained {args.recipe}: {last}; wrote {args.out}/model.keras and {args.out}/embedder.keras")
    return 0
