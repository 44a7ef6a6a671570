"""One module per family; importing them fills the registry."""

from kerasface.zoo.recipes import facenet, insightface, lenetpp, reid, sphereface  # noqa: F401
