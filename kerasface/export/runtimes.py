"""Running an embedder or one of its exports on NumPy images.

Each runtime is a callable from float32 images `(n, height, width, channels)`
in [0, 255] to float32 embeddings `(n, dim)`, so that exports can be compared
with the Keras embedder and timed the same way.
"""

import time

import numpy as np

from kerasface.export._optional import require


class KerasRuntime:
    """The Keras embedder itself, the reference every export is compared with."""

    name = "keras"

    def __init__(self, embedder):
        self.embedder = embedder

    def __call__(self, images):
        return np.asarray(self.embedder.predict_on_batch(images), dtype=np.float32)


class SavedModelRuntime:
    """A SavedModel written by `Model.export`, loaded with `tf.saved_model.load`."""

    name = "tensorflow"

    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(path))

    def __call__(self, images):
        return self._loaded.serve(self._tf.constant(images)).numpy()


class TFLiteRuntime:
    """A TFLite flatbuffer run by the LiteRT interpreter (`ai_edge_litert`).

    Int8 inputs and outputs are quantised and dequantised with the tensors'
    own scale and zero point, so callers always see float32.
    """

    name = "litert"

    def __init__(self, path, num_threads=None):
        litert = require("ai_edge_litert.interpreter", "Running a TFLite export")
        self._interpreter = litert.Interpreter(model_path=str(path), num_threads=num_threads)
        (self._input,) = self._interpreter.get_input_details()
        (self._output,) = self._interpreter.get_output_details()
        self._batch = None

    @property
    def input_details(self):
        return self._input

    @property
    def output_details(self):
        return self._output

    def __call__(self, images):
        if len(images) != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], (len(images), *images.shape[1:]))
            self._interpreter.allocate_tensors()
            self._batch = len(images)
        self._interpreter.set_tensor(self._input["index"], _quantize(images, self._input))
        self._interpreter.invoke()
        return _dequantize(self._interpreter.get_tensor(self._output["index"]), self._output)


class OnnxRuntime:
    """An ONNX file run by ONNX Runtime on the CPU."""

    name = "onnxruntime"

    def __init__(self, path, num_threads=None):
        ort = require("onnxruntime", "Running an ONNX export")
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name

    def __call__(self, images):
        (embeddings,) = self._session.run(None, {self._input_name: images})
        return embeddings


def load_runtime(format, path, num_threads=None):
    """Loads the export at `path`, written in `format` (a `Format`), with its own runtime."""
    if format.runtime == "tensorflow":
        return SavedModelRuntime(path)
    if format.runtime == "litert":
        return TFLiteRuntime(path, num_threads)
    return OnnxRuntime(path, num_threads)


def limit_tensorflow_threads(num_threads):
    """Runs TensorFlow (Keras and SavedModel) ops on `num_threads` CPU threads.

    Returns `False`, changing nothing, once TensorFlow has started executing:
    the thread pools are fixed at its first op.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        return False
    return True


def latency_per_image(runtime, image, repeats=20, warmup=3):
    """Mean seconds `runtime` takes for one image (batch 1), after `warmup` calls."""
    batch = image[None]
    for _ in range(warmup):
        runtime(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        runtime(batch)
    return (time.perf_counter() - start) / repeats


def _quantize(images, details):
    if details["dtype"] == np.float32:
        return images.astype(np.float32)
    scale, zero_point = details["quantization"]
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(details["dtype"])


def _dequantize(values, details):
    if details["dtype"] == np.float32:
        return values.copy()
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
