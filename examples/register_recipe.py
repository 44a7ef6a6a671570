"""Register a recipe of your own and build it by name, like the zoo's.

    python examples/register_recipe.py
"""

from kerasface import zoo


@zoo.register
def mobilefacenet_cosface():
    """MobileFaceNet trained with CosFace instead of ArcFace."""
    return zoo.recipe("mobilefacenet_arcface").replace(
        name="mobilefacenet_cosface", head="cosface", head_args={"scale": 64.0, "margin": 0.35}
    )


def main(num_classes=1000, input_shape=None):
    overrides = {"input_shape": input_shape} if input_shape else {}
    model = zoo.build("mobilefacenet_cosface", num_classes=num_classes, **overrides)
    print(zoo.names("mobilefacenet_*"), type(model.head).__name__, model.head.margin)
    return model


if __name__ == "__main__":
    main()
