"""Pairwise distances between the rows of a batch of embeddings."""

from keras import ops

DISTANCES = ("l2", "squared_l2", "angular")


def pairwise_distances(embeddings, distance="l2"):
    """The (batch, batch) matrix of distances, zero on the diagonal.

    `"l2"` and `"squared_l2"` are Euclidean (the square root has a zero
    gradient where two rows coincide, as in tensorflow-addons); `"angular"`
    is `1 - cosine similarity`, clipped at 0.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}. Received: distance={distance!r}")
    batch = ops.shape(embeddings)[0]
    off_diagonal = 1.0 - ops.eye(batch, dtype=embeddings.dtype)
    if distance == "angular":
        unit = embeddings / ops.maximum(ops.norm(embeddings, axis=1, keepdims=True), 1e-12)
        return ops.maximum(1.0 - ops.matmul(unit, ops.transpose(unit)), 0.0) * off_diagonal
    squared_norms = ops.sum(ops.square(embeddings), axis=1)
    squared = (
        ops.expand_dims(squared_norms, 1)
        + ops.expand_dims(squared_norms, 0)
        - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings))
    )
    squared = ops.maximum(squared, 0.0)
    if distance == "squared_l2":
        return squared * off_diagonal
    coincide = ops.cast(squared <= 0.0, embeddings.dtype)
    return ops.sqrt(squared + coincide * 1e-16) * (1.0 - coincide) * off_diagonal
