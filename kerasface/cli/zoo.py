"""`kerasface zoo [PATTERN]`: the recipes, one line each."""


def register(subparsers):
    parser = subparsers.add_parser("zoo", help="list the recipes")
    parser.add_argument("pattern", nargs="?", default="*", help="glob over recipe names, e.g. 'lenetpp_*'")
    parser.set_defaults(func=run)


def run(args):
    from kerasface import zoo

    names = zoo.names(args.pattern)
    if not names:
        raise ValueError(f"No recipe matches {args.pattern!r}. Recipes: {', '.join(zoo.names())}.")
    for name in names:
        spec = zoo.recipe(name)
        loss = spec.head if spec.head else spec.metric_loss
        if spec.center_loss_weight:
            loss += f" + centre loss {spec.center_loss_weight}"
        height, width, channels = spec.input_shape
        print(f"{name:24s} {spec.backbone:20s} {height}x{width}x{channels:<3d} {spec.embedding_dim:5d}-d  {loss}")
    return 0
