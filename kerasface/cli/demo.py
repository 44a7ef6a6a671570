"""`kerasface demo`: the centre-loss figure on Fashion-MNIST (Wen et al. 2016, Fig. 3).

Trains `lenetpp_softmax` and `lenetpp_center`, draws their 2-d test features
side by side and prints test accuracy and intra/inter-class ratios.
"""

from kerasface.cli.train import positive_int

RECIPES = ("lenetpp_softmax", "lenetpp_center")


def register(subparsers):
    parser = subparsers.add_parser("demo", help="train LeNet++ with softmax and with centre loss; draw the 2-d features")
    parser.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    parser.add_argument("--data", help="directory of the Fashion-MNIST IDX files (default: the Debian package's)")
    parser.add_argument("--train-size", type=positive_int, default=15000, help="training images (default: 15000)")
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs (default: 3)")
    parser.add_argument("--full", action="store_true", help="the recipes' full schedule on all 60,000 images")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from kerasface.checkpoints import removed_on_failure
    from kerasface.data import load_fashion_mnist
    from kerasface.evaluate import plot_features_2d

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.data)
    out = Path(args.out)
    # A demo failing before its first model is saved leaves no folder behind.
    with removed_on_failure(out, keep=[f"{name}.keras" for name in RECIPES]):
        out.mkdir(parents=True, exist_ok=True)
        rows, panels = _train_recipes(args, out, x_train, y_train, x_test, y_test)
    figure = plot_features_2d(panels, out / "features.png", class_names=FASHION_CLASSES)
    print(f"\n{'recipe':18s} {'test acc':>8s} {'intra/inter dist':>16s} {'intra/inter angle':>17s} {'images/s':>9s}")
    for name, accuracy, separation, speed in rows:
        print(
            f"{name:18s} {accuracy:8.4f} {separation.distance_ratio:16.3f} {separation.angle_ratio:17.3f} {speed:9.0f}"
        )
    print(f"\nwrote {figure} and the two models in {out}")
    return 0


def _train_recipes(args, out, x_train, y_train, x_test, y_test):
    """Trains each of `RECIPES`, saving it in `out` (atomically): `(rows, panels)` for the table and figure."""
    import time

    import keras

    from kerasface import zoo
    from kerasface.checkpoints import save_model
    from kerasface.evaluate import class_separation

    panels, rows = [], []
    for name in RECIPES:
        keras.utils.set_random_seed(args.seed)
        if args.full:
            model = zoo.build(name)
            images, labels, epochs = x_train, y_train, model.recipe.epochs
        else:
            # The short run keeps the recipe's optimiser at its first learning rate.
            first_rate = zoo.recipe(name).schedule_args["values"][0]
            model = zoo.build(name, schedule="constant", schedule_args={"learning_rate": first_rate})
            images, labels, epochs = x_train[: args.train_size], y_train[: args.train_size], args.epochs
        start = time.perf_counter()
        model.fit(images, labels, batch_size=model.recipe.batch_size, epochs=epochs, verbose=2)
        speed = epochs * len(images) / (time.perf_counter() - start)
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
        features = model.predict(x_test, verbose=0)
        separation = class_separation(features, y_test)
        panels.append((f"{name}: test accuracy {accuracy:.3f}", features, y_test))
        rows.append((name, accuracy, separation, speed))
        save_model(model, out / f"{name}.keras")
    return rows, panels


FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
