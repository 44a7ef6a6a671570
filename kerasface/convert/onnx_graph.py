"""Reads the weights of an ONNX recognition model by graph structure, not by name.

An ONNX model exported from PyTorch with constant folding (the
`torch.onnx.export` default, and insightface's model-zoo files) has
initializers named by numbers (`onnx::Conv_123`, `683`), and in evaluation
mode each batch norm that follows a convolution is folded into the
convolution's weight and bias. So the graph is read as the sequence of its
parametrised nodes in execution order (Conv, BatchNormalization, PRelu,
Gemm/MatMul), and matched to the family's modules in `forward` order
(`families.units_for`), with each node's type, group, stride and weight
shape checked against the Keras layer it fills. The result is a state dict
in PyTorch's names and layouts, which the state-dict loader then checks and
assigns like any other; a folded convolution gives its batch norm the
identity statistics (mean 0, variance 1 - epsilon, scale 1) with its bias
as the shift, which computes the same function exactly.

Leading `Sub`/`Mul`/`Div`/`Add` nodes on the input (insightface's older,
MXNet-converted files normalise inside the graph, which
`insightface/model_zoo/arcface_onnx.py` detects the same way) become the
model's preprocessing.
"""

import collections

import numpy as np

NORMALISING_OPS = ("Sub", "Mul", "Div", "Add")


class Op:
    def __init__(self, kind, node, inputs, output, **params):
        self.kind, self.node, self.inputs, self.output, self.params = kind, node, inputs, output, params

    def describe(self):
        shape = {k: tuple(v.shape) for k, v in self.params.items() if isinstance(v, np.ndarray)}
        return f"{self.node.op_type} node {self.node.name or self.output!r} {shape}"


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise ImportError(
            "Reading an ONNX model needs the onnx package: pip install 'kerasface[export]'."
        ) from error
    return onnx, numpy_helper


def read_graph(path):
    """`(ops, preprocessing)`: the parametrised nodes in order, and `(scale, offset)` or `None`."""
    onnx, numpy_helper = _import_onnx()
    where = str(path)
    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf's DecodeError and friends
        raise ValueError(f"{where}: not a readable ONNX model (truncated or corrupt): {error}") from None
    graph = model.graph
    if not graph.node:
        raise ValueError(f"{where}: the ONNX model has no graph nodes.")
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attribute.t)
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]

    def const(node, index, what):
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in consts:
            raise ValueError(
                f"{where}: the {what} of {node.op_type} node {node.name or node.output[0]!r} is computed in the "
                "graph, not stored: export the model with constant folding (torch.onnx.export's default)."
            )
        return np.asarray(consts[name], dtype=np.float32)

    ops = []
    by_output = {}
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = None
        if node.op_type == "Conv":
            op = Op(
                "conv", node, [node.input[0]], node.output[0], weight=const(node, 1, "weight"),
                bias=const(node, 2, "bias"), group=int(attrs.get("group", 1)),
                strides=tuple(attrs.get("strides", (1, 1))), dilations=tuple(attrs.get("dilations", (1, 1))),
            )
        elif node.op_type == "BatchNormalization":
            op = Op(
                "bn", node, [node.input[0]], node.output[0], weight=const(node, 1, "scale"),
                bias=const(node, 2, "bias"), running_mean=const(node, 3, "mean"),
                running_var=const(node, 4, "variance"), epsilon=float(attrs.get("epsilon", 1e-5)),
            )
        elif node.op_type == "PRelu":
            op = Op("prelu", node, [node.input[0]], node.output[0], weight=const(node, 1, "slope"))
        elif node.op_type == "Gemm":
            weight = const(node, 1, "weight")
            if attrs.get("transA", 0) or float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0:
                raise ValueError(f"{where}: Gemm node {node.name!r} with transA/alpha/beta is not a linear layer.")
            if not attrs.get("transB", 0):
                weight = weight.T
            op = Op("dense", node, [node.input[0]], node.output[0], weight=weight, bias=const(node, 2, "bias"))
        elif node.op_type == "MatMul" and node.input[1] in consts:
            op = Op("dense", node, [node.input[0]], node.output[0], weight=const(node, 1, "weight").T, bias=None)
        elif node.op_type == "Add" and len(node.input) == 2:
            producer = by_output.get(node.input[0])
            if producer is not None and producer.kind == "dense" and producer.params["bias"] is None and (
                node.input[1] in consts
            ):
                producer.params["bias"] = const(node, 1, "bias")
                by_output[node.output[0]] = producer
                producer.output = node.output[0]
                continue
        if op is not None:
            ops.append(op)
            by_output[op.output] = op
    return ops, _input_normalisation(graph, consts)


def _input_normalisation(graph, consts):
    """The affine map of leading Sub/Mul/Div/Add nodes on the graph input, as `(scale, offset)`."""
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        return None
    current, scale, offset, found = inputs[0], 1.0, 0.0, False
    for node in graph.node:
        if node.op_type not in NORMALISING_OPS or current not in node.input:
            if node.op_type in ("Conv", "Gemm", "MatMul"):
                break
            continue
        other = [name for name in node.input if name != current]
        if len(other) != 1 or other[0] not in consts or np.asarray(consts[other[0]]).size != 1:
            break
        c = float(np.asarray(consts[other[0]]).reshape(()))
        if node.op_type == "Sub" and node.input[0] == current:
            offset -= c
        elif node.op_type == "Add":
            offset += c
        elif node.op_type == "Mul":
            scale, offset = scale * c, offset * c
        elif node.op_type == "Div" and node.input[0] == current:
            scale, offset = scale / c, offset / c
        else:
            break
        current, found = node.output[0], True
    return (scale, offset) if found else None


def state_dict_from_graph(ops, units, backbone, where):
    """Matches `ops` to the family's `units` and returns a PyTorch-named state dict."""
    state = collections.OrderedDict()
    position = 0

    def mismatch(unit, expected, op):
        found = op.describe() if op is not None else "the end of the graph"
        raise ValueError(
            f"{where}: the ONNX graph does not have the expected structure: Keras layer {unit.layer!r} "
            f"(module {unit.key}) needs {expected}, the graph has {found} (parametrised node {position + 1} "
            f"of {len(ops)})."
        )

    def next_op():
        return ops[position] if position < len(ops) else None

    def follower_bn(op):
        nxt = ops[position] if position < len(ops) else None
        if nxt is not None and nxt.kind == "bn" and nxt.inputs[0] == op.output:
            return nxt
        return None

    def put_bn(unit, bn_op, shift, channels):
        layer = backbone.get_layer(unit.bn)
        if bn_op is None:  # folded into the convolution or dense layer
            state[f"{unit.bn_key}.weight"] = np.ones(channels, np.float32)
            state[f"{unit.bn_key}.bias"] = shift
            state[f"{unit.bn_key}.running_mean"] = np.zeros(channels, np.float32)
            state[f"{unit.bn_key}.running_var"] = np.full(channels, 1.0 - layer.epsilon, np.float32)
            return
        if abs(bn_op.params["epsilon"] - layer.epsilon) > 1e-9:
            raise ValueError(
                f"{where}: batch norm {bn_op.describe()} has epsilon {bn_op.params['epsilon']}, the Keras layer "
                f"{unit.bn!r} {layer.epsilon}."
            )
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"{unit.bn_key}.{name}"] = bn_op.params[name]
        # A bias of the layer before it shifts the mean it subtracts.
        state[f"{unit.bn_key}.running_mean"] = bn_op.params["running_mean"] - shift

    for unit in units:
        op = next_op()
        if unit.kind == "conv":
            layer = backbone.get_layer(unit.layer)
            depthwise = "Depthwise" in type(layer).__name__
            expected = f"a {'depthwise ' if depthwise else ''}Conv with strides {tuple(layer.strides)}"
            if op is None or op.kind != "conv":
                mismatch(unit, expected, op)
            weight = op.params["weight"]
            groups_ok = op.params["group"] == (weight.shape[0] if depthwise else getattr(layer, "groups", 1))
            if not groups_ok or op.params["strides"] != tuple(layer.strides) or set(op.params["dilations"]) != {1}:
                mismatch(unit, expected, op)
            position += 1
            state[f"{unit.key}.weight"] = weight
            bias = op.params["bias"]
            channels = weight.shape[0]
            if unit.bn and getattr(layer, "use_bias", False):
                state[f"{unit.key}.bias"] = bias if bias is not None else np.zeros(channels, np.float32)
                bias = None
            if unit.bn:
                shift = bias if bias is not None else np.zeros(channels, np.float32)
                bn_op = follower_bn(op)
                if bn_op is not None:
                    position += 1
                put_bn(unit, bn_op, shift, channels)
            elif bias is not None:
                state[f"{unit.key}.bias"] = bias
        elif unit.kind == "bn":
            if op is None or op.kind != "bn":
                mismatch(unit, "a BatchNormalization", op)
            position += 1
            for name in ("weight", "bias", "running_mean", "running_var"):
                state[f"{unit.key}.{name}"] = op.params[name]
        elif unit.kind == "prelu":
            if op is None or op.kind != "prelu":
                mismatch(unit, "a PRelu", op)
            position += 1
            state[f"{unit.key}.weight"] = op.params["weight"].reshape(-1)
        elif unit.kind == "dense":
            if op is None or op.kind != "dense":
                mismatch(unit, "a Gemm or MatMul (fully connected layer)", op)
            position += 1
            weight, bias = op.params["weight"], op.params["bias"]
            state[f"{unit.key}.weight"] = weight
            if unit.bn and getattr(backbone.get_layer(unit.layer), "use_bias", False):
                state[f"{unit.key}.bias"] = bias if bias is not None else np.zeros(weight.shape[0], np.float32)
                bias = None
            if unit.bn:
                shift = bias if bias is not None else np.zeros(weight.shape[0], np.float32)
                bn_op = ops[position] if position < len(ops) and ops[position].kind == "bn" else None
                if bn_op is not None:
                    position += 1
                put_bn(unit, bn_op, shift, weight.shape[0])
            elif bias is not None:
                state[f"{unit.key}.bias"] = bias
    if position < len(ops):
        extra = ", ".join(op.describe() for op in ops[position : position + 3])
        raise ValueError(
            f"{where}: the ONNX graph has {len(ops) - position} parametrised node(s) after the last layer of the "
            f"Keras model ({extra}): it is not this architecture or depth."
        )
    return state
