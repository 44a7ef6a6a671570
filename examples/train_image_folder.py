"""Train a zoo recipe on your own aligned faces, one folder per identity.

    python examples/train_image_folder.py faces/ --recipe sphereface20 --epochs 10 --out runs/sphere20
"""

import argparse

from kerasface.train import train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder of identity folders")
    parser.add_argument("--recipe", default="sphereface20")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--out", default="runs/example")
    parser.add_argument("--input-shape", type=int, nargs=3, help="override the recipe's (height width channels)")
    args = parser.parse_args(argv)
    overrides = {"input_shape": tuple(args.input_shape)} if args.input_shape else {}
    model, history = train(args.recipe, args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, **overrides)
    print("final loss", history.history["loss"][-1])
    return model


if __name__ == "__main__":
    main()
