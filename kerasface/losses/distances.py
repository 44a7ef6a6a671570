"""Pairwise distances between the rows of a batch of embeddings."""

from keras import ops

DISTANCES = ("l2", "squared_l2", "angular")


def safe_norm(x, axis, eps=1e-12):
    """`(||x||, divisor)` along `axis` (kept), with finite gradients everywhere.

    `divisor` is `||x||`, or 1 where `||x|| <= eps` (an all-zero row or
    column), so `x / divisor` is the unit vector, or `x` itself (about 0)
    there, with a finite gradient; `||x||` is 0 there, with a zero gradient.
    The plain norm gives NaN gradients at `x = 0` (0 * inf), in float32 and
    in the float16 or bfloat16 gradients cast back from it. Elsewhere the
    values are the plain norm's and the gradients equal up to rounding.
    """
    # x * x rather than square(x): the gradient then adds up as ops.norm's does (same rounding).
    squared = ops.sum(x * x, axis=axis, keepdims=True)
    nonzero = squared > eps * eps
    root = ops.sqrt(ops.where(nonzero, squared, 1.0))
    return ops.where(nonzero, root, 0.0), root


def pairwise_distances(embeddings, distance="l2"):
    """The (batch, batch) matrix of distances, zero on the diagonal.

    `"l2"` and `"squared_l2"` are Euclidean (the square root has a zero
    gradient where two rows coincide, as in tensorflow-addons); `"angular"`
    is `1 - cosine similarity`, clipped at 0 (an all-zero row is at distance 1
    from every other row, with finite gradients).
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}. Received: distance={distance!r}")
    batch = ops.shape(embeddings)[0]
    off_diagonal = 1.0 - ops.eye(batch, dtype=embeddings.dtype)
    if distance == "angular":
        unit = embeddings / safe_norm(embeddings, axis=1)[1]
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
