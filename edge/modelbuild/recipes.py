"""What each model's int8 build does differently: range policy and fixed ranges.

Fixed ranges are named by role and resolved to tensor names from the graph's
structure (walking back from an output), not from name patterns: MediaPipe's
fused tensor names mention unrelated layers.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from edge.modelbuild import flatbuf
from edge.modelbuild.ranges import RangeMethod, RangePolicy

#: Ops a head passes through unchanged on its way to an output.
_HEAD_MOVES = frozenset({"RESHAPE", "CONCATENATION"})


@dataclass(frozen=True, slots=True)
class FixedRange:
    """``low``/``high`` for the tensors of an output head (or the logit before its sigmoid)."""

    output: str
    low: float
    high: float
    before_sigmoid: bool = False
    why: str = ""


@dataclass(frozen=True, slots=True)
class ModelRecipe:
    role: str
    source: str  # [sources.<name>] in the manifest
    method: RangeMethod
    percentile: float
    input_range: tuple[float, float]
    fixed: tuple[FixedRange, ...]
    calibration: str  # "detector" (letterboxed frames) or "landmark" (crops)
    #: Outputs whose head convs get empirical bias correction (see biascorrect).
    bias_corrected: tuple[str, ...] = ()
    #: Cross-layer equalisation of the residual streams before calibration
    #: (:mod:`edge.modelbuild.equalize`).
    equalize: bool = False
    #: Positions (in the prepared float graph) of ops left in float: a mixed-precision
    #: build. The quantiser puts DEQUANTIZE/QUANTIZE at the island's edges; I/O stays int8.
    float_ops: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipe": "static_wi8_ai8",
            "weights": "int8 per-channel symmetric",
            "activations": "int8 per-tensor asymmetric"
            + (f"; float in {len(self.float_ops)} ops" if self.float_ops else ""),
            "io": "int8",
            "activation_range": RangePolicy(self.method, self.percentile).describe(),
            "input_range": list(self.input_range),
            "bias_correction": list(self.bias_corrected),
            # only when on, so manifests of earlier builds stay comparable
            **({"cross_layer_equalization": True} if self.equalize else {}),
            **({"float_ops": list(self.float_ops)} if self.float_ops else {}),
            "fixed_ranges": {
                (f"{f.output} logit" if f.before_sigmoid else f.output): [f.low, f.high]
                for f in self.fixed
            },
        }


#: Heatmap logits are mostly far below zero, so a percentile range ended at 0 and
#: clipped every positive peak (float peaks reach +4.6 on calibration crops) that
#: heatmap refinement weighs by; below -24 a logit's sigmoid is < 1e-10.
_HEATMAP_WHY = "heatmap logits: keep the positive peaks refinement weighs by"


def _landmark_recipe(role: str) -> ModelRecipe:
    """The landmark models (lite, full) share one recipe; only the source differs."""
    return ModelRecipe(
        role=role,
        source=f"pose_landmark_{role}",
        method="percentile",
        percentile=99.9,
        input_range=(0.0, 1.0),
        fixed=(
            FixedRange("Identity_1", -12.0, 12.0, before_sigmoid=True, why="pose flag"),
            FixedRange("Identity_3", -24.0, 8.0, why=_HEATMAP_WHY),
        ),
        calibration="landmark",
        bias_corrected=("Identity", "Identity_4"),
    )


#: The lite model's mixed-precision build (``lite-mixed``, SCOREBOARD row 42): ops left
#: in float, by position in the prepared graph of the pinned source, found by measuring
#: float islands one stage at a time: the stem and the 64x64 stage (positions 0-17: one
#: step of the stem's 8-channel stream moved the next expansion's output by up to 111
#: steps) and the regression branch from the 8x8 trunk to the landmark heads (97-121:
#: its 2x2x192 tensors carry every landmark). 31% of the MACs; I/O and heads stay int8.
LITE_FLOAT_OPS: tuple[int, ...] = (*range(0, 18), *range(97, 122))

RECIPES: dict[str, ModelRecipe] = {
    "detector": ModelRecipe(
        role="detector",
        source="pose_detection",
        method="minmax",
        percentile=99.9,
        input_range=(-1.0, 1.0),
        fixed=(
            FixedRange("Identity_1", -12.0, 12.0, why="score logits: sigmoid saturates beyond"),
            FixedRange("Identity", -160.0, 160.0, why="box regressors (useful anchors: +-52)"),
        ),
        calibration="detector",
        bias_corrected=("Identity_1",),
    ),
    "lite": _landmark_recipe("lite"),
    "full": _landmark_recipe("full"),
    "lite-mixed": dataclasses.replace(
        _landmark_recipe("lite"), role="lite-mixed", float_ops=LITE_FLOAT_OPS
    ),
}


def head_tensors(model_bytes: bytes, output: str) -> tuple[list[str], str | None]:
    """Tensors from ``output`` back through RESHAPE/CONCATENATION, and the LOGISTIC input
    reached that way (if any)."""
    model = flatbuf.read(model_bytes)
    sg = model.subgraphs[0]
    by_name = {flatbuf.tensor_name(t): i for i, t in enumerate(sg.tensors)}
    if output not in by_name:
        raise KeyError(f"no tensor named {output!r}")
    producer = flatbuf.producers(model)
    names: list[str] = []
    logit: str | None = None
    stack = [by_name[output]]
    while stack:
        index = stack.pop()
        names.append(flatbuf.tensor_name(sg.tensors[index]))
        pos = producer.get(index)
        if pos is None:
            continue
        op = sg.operators[pos]
        kind = flatbuf.op_name(model, op)
        if kind == "RESHAPE":
            stack.append(int(op.inputs[0]))
        elif kind == "CONCATENATION":
            stack.extend(int(i) for i in op.inputs)
        elif kind == "LOGISTIC":
            logit = flatbuf.tensor_name(sg.tensors[int(op.inputs[0])])
    return names, logit


def range_policy(recipe: ModelRecipe, prepared: bytes, input_name: str) -> RangePolicy:
    """The recipe's policy with fixed ranges resolved to exact tensor names."""
    overrides: list[tuple[str, float, float]] = [
        (f"^{re.escape(input_name)}$", recipe.input_range[0], recipe.input_range[1])
    ]
    for fixed in recipe.fixed:
        names, logit = head_tensors(prepared, fixed.output)
        if fixed.before_sigmoid:
            if logit is None:
                raise ValueError(f"{fixed.output} is not produced by a sigmoid")
            targets = [logit]
        else:
            targets = names
        overrides += [(f"^{re.escape(n)}$", fixed.low, fixed.high) for n in targets]
    return RangePolicy(recipe.method, recipe.percentile, tuple(overrides))
