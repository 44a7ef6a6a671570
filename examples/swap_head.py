"""Swap the head of a recipe: SphereFace-20's backbone with ArcFace or CosFace.

    python examples/swap_head.py --head arcface
"""

import argparse

import numpy as np

from kerasface import zoo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="sphereface20")
    parser.add_argument("--head", default="arcface", choices=["softmax", "normface", "cosface", "arcface", "combined"])
    parser.add_argument("--num-classes", type=int, default=10572)
    parser.add_argument("--input-shape", type=int, nargs=3, default=None)
    args = parser.parse_args(argv)
    overrides = {"head": args.head}
    if args.input_shape:
        overrides["input_shape"] = tuple(args.input_shape)
    model = zoo.build(args.recipe, num_classes=args.num_classes, **overrides)
    print(f"{args.recipe} with a {type(model.head).__name__} head: {model.count_params():,} parameters")
    images = np.zeros((2, *model.recipe.input_shape), "uint8")
    print("embeddings:", model.predict(images, verbose=0).shape)
    return model


if __name__ == "__main__":
    main()
