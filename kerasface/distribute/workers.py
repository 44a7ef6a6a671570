"""Training under `tf.distribute.MultiWorkerMirroredStrategy` without `Model.fit`.

Keras 3's `fit` does not run under `MultiWorkerMirroredStrategy`: its first
symbolic build reduces a nested batch, and its log reduction asks for axis 0
of scalars, both of which the collective strategy refuses (keras-team/keras
issue 20585, open since Keras 3.0). `train_on_workers` runs the model's own
`train_step` (so `compute_loss`, the centre update and the optimiser are the
ones `fit` uses) over a dataset of global batches on every worker.
"""


def train_on_workers(model, dataset, steps=None, strategy=None):
    """Trains `model` on `dataset` (global batches of `(images, labels)`), one step per batch.

    Call it on every worker with the same dataset; the strategy's
    auto-sharding gives each worker its part of every global batch (by data
    for in-memory datasets, by file for datasets that read files).

    Args:
        model: a compiled Keras model whose variables were created under `strategy.scope()`.
        dataset: a batched `tf.data.Dataset`; each batch is a global batch.
        steps: number of batches to train on. Defaults to the whole dataset.
        strategy: defaults to the strategy the model was built under.

    Returns:
        The logs after each step, as floats: `loss` and the metrics, means
        over the replicas and over the steps so far (like one epoch of `fit`).
    """
    import tensorflow as tf

    strategy = strategy or model.distribute_strategy
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.reset_metrics()

        @tf.function
        def step(batch):
            logs = strategy.run(model.train_step, args=(batch,))
            return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

        history = []
        for batch in strategy.experimental_distribute_dataset(dataset.take(steps or -1)):
            history.append({name: float(value) for name, value in step(batch).items()})
    return history
