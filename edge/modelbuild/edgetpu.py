"""Static Edge TPU readiness check of a .tflite model.

What the Edge TPU compiler needs, as far as it can be checked without it: every
op on Coral's list of supported operations, with int8/uint8 tensors (the
compiler maps nothing that computes in float), and no op version a known
compiler release rejects. The compiler maps the graph up to the first op it
cannot map; everything after runs on the CPU, so the *first* blocker matters most.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.modelbuild import flatbuf

#: Coral's documented supported operations (TFLite builtin names).
SUPPORTED_OPS = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "EXPAND_DIMS",
        "FULLY_CONNECTED",
        "L2_NORMALIZATION",
        "LOGISTIC",
        "LSTM",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MEAN",
        "MINIMUM",
        "MUL",
        "PACK",
        "PAD",
        "PRELU",
        "QUANTIZE",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RELU_N1_TO_1",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "RSQRT",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "SQUARED_DIFFERENCE",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
    }
)

_QUANTIZED = frozenset({"INT8", "UINT8"})


@dataclass(frozen=True, slots=True)
class EdgeTpuIssue:
    op_index: int
    op: str
    version: int
    reason: str


@dataclass(frozen=True, slots=True)
class EdgeTpuReport:
    model: str
    ops_total: int
    issues: tuple[EdgeTpuIssue, ...]

    @property
    def first_blocker(self) -> int | None:
        return self.issues[0].op_index if self.issues else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ops_total": self.ops_total,
            "ready": not self.issues,
            "first_blocker_op_index": self.first_blocker,
            "issues": [asdict(i) for i in self.issues],
        }

    def text(self) -> str:
        if not self.issues:
            return (
                f"{self.model}: all {self.ops_total} ops are on Coral's supported list with "
                "int8 tensors (compile with `edge-pose models compile-edgetpu` to confirm)"
            )
        lines = [
            f"{self.model}: {len(self.issues)} of {self.ops_total} ops would not map to the "
            f"Edge TPU; mapping stops at op #{self.first_blocker}, the rest runs on the CPU:"
        ]
        lines += [f"  op #{i.op_index} {i.op} v{i.version}: {i.reason}" for i in self.issues]
        return "\n".join(lines)


def op_issues(
    name: str, version: int, activation_types: tuple[str, ...], options: dict[str, Any]
) -> list[str]:
    """Why one op would not map (empty when it would, as far as known)."""
    reasons = []
    if name not in SUPPORTED_OPS:
        reasons.append("not on Coral's list of supported operations")
    floats = [t for t in activation_types if t not in _QUANTIZED and t != "INT32"]
    if floats:
        reasons.append(f"non-quantised tensors ({', '.join(sorted(set(floats)))})")
    if name == "RESIZE_BILINEAR" and (options.get("halfPixelCenters") or version >= 3):
        reasons.append(
            "half_pixel_centers=True (op version 3) is rejected by edgetpu_compiler 14-15"
        )
    return reasons


def check_model(path: Path) -> EdgeTpuReport:
    summary = flatbuf.summarize(flatbuf.read(path))
    issues = []
    for index, op in enumerate(summary.ops):
        for reason in op_issues(op.name, op.version, op.activation_types, op.options):
            issues.append(EdgeTpuIssue(index, op.name, op.version, reason))
    for tensor in summary.inputs + summary.outputs:
        if tensor.type_name not in _QUANTIZED:
            issues.append(EdgeTpuIssue(-1, "I/O", 0, f"tensor {tensor.name} is {tensor.type_name}"))
    return EdgeTpuReport(path.name, len(summary.ops), tuple(issues))
