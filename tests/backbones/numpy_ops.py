"""NumPy versions of the operations of the reference frameworks (inference only).

Convolutions follow Caffe and PyTorch: symmetric zero padding of `pad`
pixels and floor division of the output size. Tensors are NHWC and kernels
are stored as Keras stores them, so a model's weights can be used directly.
"""

import numpy as np


def _windows(x, kernel_size, stride, pad):
    """Yields `(i, j, patch)`: the input pixels under kernel tap (i, j) for every output."""
    kh, kw = kernel_size
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]


def conv2d(x, kernel, bias=None, stride=1, pad=0):
    """Cross-correlation with a `(kh, kw, c_in, c_out)` kernel."""
    out = sum(patch @ kernel[i, j] for i, j, patch in _windows(x, kernel.shape[:2], stride, pad))
    return out if bias is None else out + bias


def depthwise_conv2d(x, kernel, stride=1, pad=0):
    """One filter per channel, with a `(kh, kw, channels, 1)` kernel."""
    return sum(patch * kernel[i, j, :, 0] for i, j, patch in _windows(x, kernel.shape[:2], stride, pad))


def max_pool(x, size, stride, pad=0):
    """Max-pooling; PyTorch pads with -inf, so padding never wins."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    return np.max([patch for _, _, patch in _windows(x, (size, size), stride, 0)], axis=0)


def relu(x):
    return np.maximum(x, 0)


def prelu(x, alpha):
    return np.where(x > 0, x, alpha.reshape(-1) * x)


def batch_norm(x, gamma, beta, mean, variance, epsilon):
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta
