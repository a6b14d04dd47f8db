"""Flatbuffer surgery on .tflite files (the object API of LiteRT's generated schema).

Only this module (and the other build modules) import ``ai_edge_litert``'s schema;
the runtime never needs it. Every function takes and returns a ``ModelT`` (the
mutable object tree) or plain Python values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ModelT = Any  # ai_edge_litert.schema_py_generated.ModelT (untyped vendor code)


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


def read(path_or_bytes: Path | bytes | bytearray) -> ModelT:
    """Parse a .tflite file (path or bytes) into a mutable object tree."""
    from ai_edge_litert.tools import flatbuffer_utils

    if isinstance(path_or_bytes, Path):
        path_or_bytes = path_or_bytes.read_bytes()
    return flatbuffer_utils.read_model_from_bytearray(bytearray(path_or_bytes))


def to_bytes(model: ModelT) -> bytes:
    """Serialise an object tree back to .tflite bytes."""
    from ai_edge_litert.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _names(enum_cls: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def op_name(model: ModelT, op: Any) -> str:
    """Builtin operator name (``CONV_2D``) of ``op``."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    return _names(_schema().BuiltinOperator).get(builtin, f"OP_{builtin}")


def op_version(model: ModelT, op: Any) -> int:
    return int(model.operatorCodes[op.opcodeIndex].version)


def tensor_type_name(type_code: int) -> str:
    return _names(_schema().TensorType).get(int(type_code), f"TYPE_{type_code}")


def tensor_type_code(type_name: str) -> int:
    return int(getattr(_schema().TensorType, type_name))


def tensor_name(tensor: Any) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def opcode_index(model: ModelT, builtin_name: str, version: int = 1) -> int:
    """Index of ``builtin_name`` in the operator-code table, added if absent."""
    schema = _schema()
    builtin = int(getattr(schema.BuiltinOperator, builtin_name))
    for i, code in enumerate(model.operatorCodes):
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == builtin:
            code.version = max(int(code.version), version)
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


@dataclass(frozen=True, slots=True)
class TensorSummary:
    name: str
    type_name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int


@dataclass(frozen=True, slots=True)
class OpSummary:
    name: str
    version: int
    #: Type of each non-constant input and of each output (``INT8``, ``FLOAT32``...).
    activation_types: tuple[str, ...]
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GraphSummary:
    """What the ops and I/O of a model are, for checks, tests and ``models list``."""

    ops: tuple[OpSummary, ...]
    inputs: tuple[TensorSummary, ...]
    outputs: tuple[TensorSummary, ...]

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(op.name for op in self.ops).items()))


def _tensor_summary(model: ModelT, index: int) -> TensorSummary:
    t = model.subgraphs[0].tensors[index]
    q = t.quantization
    scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
    zp = (
        int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
    )
    return TensorSummary(
        tensor_name(t), tensor_type_name(t.type), tuple(int(s) for s in t.shape), scale, zp
    )


def _is_constant(model: ModelT, index: int) -> bool:
    t = model.subgraphs[0].tensors[index]
    data = model.buffers[t.buffer].data
    return data is not None and len(data) > 0


def _options(op: Any) -> dict[str, Any]:
    opts = op.builtinOptions
    if opts is None:
        return {}
    return {k: v for k, v in vars(opts).items() if isinstance(v, bool | int | float)}


def summarize(model: ModelT) -> GraphSummary:
    """Ops (name, version, activation dtypes, scalar options) and I/O tensors of subgraph 0."""
    sg = model.subgraphs[0]
    ops = []
    for op in sg.operators:
        types = [
            tensor_type_name(sg.tensors[i].type)
            for i in list(op.inputs)
            if i >= 0 and not _is_constant(model, i)
        ]
        types += [tensor_type_name(sg.tensors[i].type) for i in op.outputs]
        ops.append(OpSummary(op_name(model, op), op_version(model, op), tuple(types), _options(op)))
    return GraphSummary(
        tuple(ops),
        tuple(_tensor_summary(model, i) for i in sg.inputs),
        tuple(_tensor_summary(model, i) for i in sg.outputs),
    )


def add_signature(model: ModelT, key: str = "serving_default") -> None:
    """Add a SignatureDef over subgraph 0's inputs and outputs (named after the tensors)."""
    schema = _schema()
    sg = model.subgraphs[0]

    def tensor_map(index: int) -> Any:
        m = schema.TensorMapT()
        m.name = tensor_name(sg.tensors[index]).encode()
        m.tensorIndex = int(index)
        return m

    sig = schema.SignatureDefT()
    sig.signatureKey = key.encode()
    sig.subgraphIndex = 0
    sig.inputs = [tensor_map(i) for i in sg.inputs]
    sig.outputs = [tensor_map(i) for i in sg.outputs]
    model.signatureDefs = [sig]


def set_constant(model: ModelT, tensor_index: int, values: NDArray[Any]) -> None:
    """Give tensor ``tensor_index`` a new buffer holding ``values`` (type from the dtype)."""
    schema = _schema()
    types = {
        np.dtype(np.float32): schema.TensorType.FLOAT32,
        np.dtype(np.int8): schema.TensorType.INT8,
        np.dtype(np.int32): schema.TensorType.INT32,
    }
    t = model.subgraphs[0].tensors[tensor_index]
    buf = schema.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    t.type = types[values.dtype]
    t.shape = np.array(values.shape, dtype=np.int32)
    t.shapeSignature = None
    t.sparsity = None
    t.quantization = None


def constant(model: ModelT, tensor_index: int, dtype: Any) -> NDArray[Any]:
    """A constant tensor's values (a writable copy, in the tensor's shape)."""
    t = model.subgraphs[0].tensors[tensor_index]
    data = np.asarray(model.buffers[t.buffer].data, np.uint8).tobytes()
    return np.frombuffer(data, dtype=dtype).reshape([int(v) for v in t.shape]).copy()


def overwrite_constant(model: ModelT, tensor_index: int, values: NDArray[Any]) -> None:
    """Replace a constant tensor's bytes in place (same type, shape and quantisation)."""
    t = model.subgraphs[0].tensors[tensor_index]
    model.buffers[t.buffer].data = np.frombuffer(
        np.ascontiguousarray(values).tobytes(), dtype=np.uint8
    )


def remove_ops(model: ModelT, positions: set[int]) -> None:
    sg = model.subgraphs[0]
    sg.operators = [op for i, op in enumerate(sg.operators) if i not in positions]


def rewire(model: ModelT, old_index: int, new_index: int) -> None:
    """Make every op input and graph output that reads ``old_index`` read ``new_index``."""
    sg = model.subgraphs[0]
    for op in sg.operators:
        op.inputs = np.array(
            [new_index if i == old_index else i for i in op.inputs], dtype=np.int32
        )
    sg.outputs = np.array([new_index if i == old_index else i for i in sg.outputs], dtype=np.int32)


def compact(model: ModelT) -> None:
    """Drop tensors no op or graph I/O uses, then buffers no tensor uses (keeps buffer 0)."""
    sg = model.subgraphs[0]
    used: set[int] = set(int(i) for i in sg.inputs) | set(int(i) for i in sg.outputs)
    for op in sg.operators:
        used |= {int(i) for i in op.inputs if i >= 0}
        used |= {int(i) for i in op.outputs}
        if op.intermediates is not None:
            used |= {int(i) for i in op.intermediates}
    order = sorted(used)
    remap = {old: new for new, old in enumerate(order)}
    sg.tensors = [sg.tensors[i] for i in order]

    def m(indices: Any) -> NDArray[np.int32]:
        return np.array([remap[int(i)] if i >= 0 else -1 for i in indices], dtype=np.int32)

    for op in sg.operators:
        op.inputs = m(op.inputs)
        op.outputs = m(op.outputs)
        if op.intermediates is not None:
            op.intermediates = m(op.intermediates)
    sg.inputs = m(sg.inputs)
    sg.outputs = m(sg.outputs)
    for sig in model.signatureDefs or []:
        for tm in list(sig.inputs) + list(sig.outputs):
            tm.tensorIndex = remap[int(tm.tensorIndex)]
    # Buffers: keep 0 (the empty sentinel) and metadata buffers.
    keep = {0} | {int(md.buffer) for md in model.metadata or []}
    keep |= {int(t.buffer) for t in sg.tensors}
    border = sorted(keep)
    bremap = {old: new for new, old in enumerate(border)}
    model.buffers = [model.buffers[i] for i in border]
    for t in sg.tensors:
        t.buffer = bremap[int(t.buffer)]
    for md in model.metadata or []:
        md.buffer = bremap[int(md.buffer)]
    # Operator codes: drop the ones no op uses.
    used_codes = sorted({int(op.opcodeIndex) for op in sg.operators})
    cremap = {old: new for new, old in enumerate(used_codes)}
    model.operatorCodes = [model.operatorCodes[i] for i in used_codes]
    for op in sg.operators:
        op.opcodeIndex = cremap[int(op.opcodeIndex)]


def producers(model: ModelT) -> dict[int, int]:
    """tensor index -> position of the op that writes it."""
    out: dict[int, int] = {}
    for pos, op in enumerate(model.subgraphs[0].operators):
        for i in op.outputs:
            out[int(i)] = pos
    return out


def consumers(model: ModelT) -> dict[int, list[int]]:
    """tensor index -> positions of the ops that read it."""
    out: dict[int, list[int]] = {}
    for pos, op in enumerate(model.subgraphs[0].operators):
        for i in op.inputs:
            if i >= 0:
                out.setdefault(int(i), []).append(pos)
    return out
