"""Operator codes of a TFLite flatbuffer: the check that only builtin ops are used.

A model converted with Select TF ops carries `Flex*` custom operators that run
only with the TensorFlow delegate, which phone and edge runtimes usually lack.
"""

from kerasface.export._optional import require


def operators(model_bytes):
    """The operators a TFLite flatbuffer declares, as `(name, is_builtin)` pairs.

    Builtin operators are named as in the TFLite schema (`"CONV_2D"`), custom
    ones by their custom code (`"FlexErfinv"`).
    """
    schema = require("ai_edge_litert.schema_py_generated", "Reading a TFLite model")
    builtin_names = {
        code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
    }
    model = schema.Model.GetRootAs(model_bytes, 0)
    found = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes below 127 live in the deprecated byte field, larger ones in the int field.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            found.append((code.CustomCode().decode(), False))
        else:
            found.append((builtin_names[builtin], True))
    return found


def check_builtin_ops(model_bytes, where):
    """Raises `ValueError` if the flatbuffer uses custom (e.g. Flex) operators."""
    custom = sorted({name for name, is_builtin in operators(model_bytes) if not is_builtin})
    if custom:
        raise ValueError(
            f"{where} uses operators outside the TFLite builtins, which phone and edge "
            "runtimes cannot run. Flex ops come from TensorFlow ops without a TFLite "
            f"kernel; replace the layers that produce them. Received: custom_ops={custom}"
        )
