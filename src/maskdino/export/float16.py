"""Convert an exported float32 ONNX graph to float16 compute, keeping float32 input and outputs.

Every float32 weight, constant and intermediate becomes float16. Operators that ONNX does not define for
float16 (`Range`) run in float32 between two Casts; so do the graph's input and outputs, so that callers
feed and read float32 as with the float32 graph.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT32_OPS = frozenset({"Range"})
FP16_MAX = float(np.finfo(np.float16).max)


def _to_float16(tensor: TensorProto) -> TensorProto:
    values = numpy_helper.to_array(tensor)
    finite = np.isfinite(values)
    values = np.where(finite, np.clip(values, -FP16_MAX, FP16_MAX), values)  # keep +-inf, saturate the rest
    return numpy_helper.from_array(values.astype(np.float16), tensor.name)


def convert_to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` (its input and outputs stay float32)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    float32 = {
        v.name
        for v in [*graph.value_info, *graph.input, *graph.output]
        if v.type.tensor_type.elem_type == TensorProto.FLOAT
    }
    float32 |= {t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    nodes = []
    for value in graph.input:
        if value.name in float32:
            nodes.append(
                helper.make_node("Cast", [value.name], [value.name + "_fp16"], to=TensorProto.FLOAT16)
            )
    outputs = {v.name for v in graph.output if v.name in float32}
    renamed = {v.name: v.name + "_fp16" for v in [*graph.input, *graph.output] if v.name in float32}
    upcast: set[str] = set()
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [name + "_fp16" if name in outputs else name for name in node.output]
        for attr in node.attribute:
            if attr.name == "to" and attr.i == TensorProto.FLOAT and node.op_type == "Cast":
                attr.i = TensorProto.FLOAT16
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_to_float16(attr.t))
        if node.op_type not in FLOAT32_OPS:
            nodes.append(node)
            continue
        # run it in float32: cast its float inputs up (once per value) and its float outputs back down
        for i, name in enumerate(node.input):
            if name in float32:
                if name not in upcast:
                    upcast.add(name)
                    nodes.append(helper.make_node("Cast", [name], [name + "_fp32"], to=TensorProto.FLOAT))
                node.input[i] = name + "_fp32"
        casts = []
        for i, name in enumerate(node.output):
            if name in float32:
                casts.append(helper.make_node("Cast", [name + "_fp32"], [name], to=TensorProto.FLOAT16))
                node.output[i] = name + "_fp32"
        nodes += [node, *casts]
    for name in outputs:
        nodes.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    initializers = [_to_float16(t) if t.data_type == TensorProto.FLOAT else t for t in graph.initializer]
    converted = helper.make_graph(nodes, graph.name, graph.input, graph.output, initializers)
    out = helper.make_model(converted, opset_imports=model.opset_import, ir_version=model.ir_version)
    out.producer_name = model.producer_name
    return out
