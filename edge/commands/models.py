"""``edge-pose models``: fetch the float originals, build and verify the int8 models,
check them for the Coral Edge TPU."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EX_UNAVAILABLE = 69

DESCRIPTION = """\
The models a device runs are int8 TFLite files committed in models/ and listed,
with their sha256, in models/manifest.toml. They are built from MediaPipe's float
originals (the PyPI wheel mediapipe 0.10.14 for the detector, the npm package
@mediapipe/pose 0.5.1675469404 for the landmark models), which `fetch` downloads
with pip and npm into the cache (~/.cache/edge-pose, or $EDGE_POSE_CACHE_DIR).
Nothing downloads at run time on a device.
"""

EPILOG = """\
examples:
  edge-pose models verify                  # are the installed models intact?
  edge-pose models list                    # sizes, hashes and ops of each model
  edge-pose models fetch                   # float originals into the cache (npm pack, pip download)
  edge-pose models build --calibration ../shared/data/video/dance.mp4 \\
      ../shared/data/video/three-people-stretching.mp4 \\
      ../shared/data/video/one-by-one-enter-leave.mp4
  edge-pose models build --calibration my-camera-clips/ --out /tmp/models --models lite
  edge-pose models check-edgetpu models/pose_landmark_lite_int8.tflite
  edge-pose models compile-edgetpu         # needs edgetpu_compiler (x86-64, Coral's apt repo)
  edge-pose models evaluate                # scoreboard of the built pair vs float (issue 4)
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="fetch, build, verify and inspect the int8 models",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda args: _usage(p))
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    _register_verify(msub)
    _register_list(msub)
    _register_fetch(msub)
    _register_build(msub)
    _register_check(msub)
    _register_compile(msub)
    from edge.eval.cli import register_evaluate

    register_evaluate(msub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _parser(sub: Any, name: str, help_text: str, description: str, epilog: str) -> Any:
    return sub.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# --- verify ----------------------------------------------------------------


def _register_verify(sub: Any) -> None:
    p = _parser(
        sub,
        "verify",
        "check the model files against the sha256 in manifest.toml",
        "Check every model listed in manifest.toml against its sha256. A missing or\n"
        "corrupt file fails (exit 1) with the file, the expected and actual hash, and the fix.",
        "examples:\n  edge-pose models verify\n"
        "  edge-pose models verify --dir /opt/edge-pose/models\n",
    )
    p.add_argument("--dir", type=Path, default=None, help="models folder (default: installed)")
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from edge import models, paths

    directory = args.dir or paths.models_dir()
    problems = models.verify_models(directory)
    if problems:
        for problem in problems:
            print(f"FAIL {problem.message}", file=sys.stderr)
        return 1
    manifest = models.read_manifest(directory)
    for role, entry in manifest.models.items():
        print(f"ok   {role:9s} {directory / entry.file}  sha256 {entry.sha256}")
    return 0


# --- list ------------------------------------------------------------------


def _register_list(sub: Any) -> None:
    p = _parser(
        sub,
        "list",
        "show each model's file, size, hash and ops",
        "List the models in manifest.toml: file, size, whether the hash matches, input\n"
        "quantisation and an ops summary.",
        "examples:\n  edge-pose models list\n  edge-pose models list --json\n",
    )
    p.add_argument("--dir", type=Path, default=None, help="models folder (default: installed)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from edge import models, paths
    from edge.modelbuild import flatbuf

    directory = args.dir or paths.models_dir()
    manifest = models.read_manifest(directory)
    rows = []
    for role, entry in manifest.models.items():
        path = directory / entry.file
        row: dict[str, Any] = {"role": role, "file": entry.file, "sha256": entry.sha256}
        if not path.is_file():
            row["status"] = "missing"
        else:
            row["size_bytes"] = path.stat().st_size
            row["status"] = "ok" if models.sha256_file(path) == entry.sha256 else "CORRUPT"
            summary = flatbuf.summarize(flatbuf.read(path))
            row["ops"] = summary.op_counts()
            row["input"] = [
                {
                    "dtype": t.type_name,
                    "shape": t.shape,
                    "scale": t.scale,
                    "zero_point": t.zero_point,
                }
                for t in summary.inputs
            ]
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        size = f"{row.get('size_bytes', 0) / 1e6:.2f} MB"
        status = row["status"]
        print(f"{row['role']:9s} {row['file']:34s} {size:>9s}  {status:7s} {row['sha256'][:16]}")
        for inp in row.get("input", []):
            print(
                f"          input {inp['dtype']} {list(inp['shape'])} "
                f"scale {inp['scale']:.6g} zero point {inp['zero_point']}"
            )
        if "ops" in row:
            ops = ", ".join(f"{k} x{v}" for k, v in row["ops"].items())
            print(f"          ops: {ops}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


# --- fetch -----------------------------------------------------------------


def _register_fetch(sub: Any) -> None:
    p = _parser(
        sub,
        "fetch",
        "download the float originals with npm/pip into the cache (checksummed)",
        "Fetch MediaPipe's float models with the package clients (`npm pack`, `pip download\n"
        "--no-deps`) into <cache>/sources, unpack them to <cache>/float and check each\n"
        "against the sha256 in manifest.toml [sources]. Skips files already present with\n"
        "the right hash. The cache is ~/.cache/edge-pose (or $EDGE_POSE_CACHE_DIR).",
        "examples:\n  edge-pose models fetch\n  edge-pose models fetch --only pose_landmark_lite\n"
        "  EDGE_POSE_CACHE_DIR=/tmp/cache edge-pose models fetch\n",
    )
    p.add_argument("--only", nargs="+", metavar="NAME", help="source names from manifest.toml")
    p.set_defaults(func=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    from edge.modelbuild.sources import FetchError, fetch_all

    try:
        results = fetch_all(names=args.only)
    except FetchError as exc:
        print(f"edge-pose models fetch: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.action:10s} {r.path}  sha256 {r.sha256}")
    return 0


# --- build -----------------------------------------------------------------


def _register_build(sub: Any) -> None:
    p = _parser(
        sub,
        "build",
        "rebuild the int8 models from the float originals and calibration footage",
        "Rebuild the int8 models: fetch/verify the float originals, prepare each graph\n"
        "(fp32 weights, signature; checked bit-exact), calibrate on the given videos and\n"
        "image folders (the detector on letterboxed frames and their mirror images, the\n"
        "landmark models on person crops through the float detector's ROI plus random\n"
        "non-person crops), quantise fully to int8 with ai-edge-quantizer (static_wi8_ai8),\n"
        "check every op and I/O tensor is int8 (lite-mixed: all but its float layers), and\n"
        "measure each model against its float original on held-out frames (1 in 5, never\n"
        "calibrated on; a video's *.presence.json marks empty frames, whose detections are\n"
        "reported as detector false positives, not person crops). Writes the models,\n"
        "manifest.toml and BUILD_REPORT.md/.json into --out. Deterministic: sorted inputs,\n"
        "fixed seeds. Needs the `models` extra (pip install -e '.[models]').",
        "examples:\n"
        "  edge-pose models build --calibration ../shared/data/video/dance.mp4 \\\n"
        "      ../shared/data/video/three-people-stretching.mp4 \\\n"
        "      ../shared/data/video/one-by-one-enter-leave.mp4\n"
        "  edge-pose models build --calibration clips/ --out /tmp/m --models detector,lite,full\n"
        "\nThe maintainers' build (detector, lite and lite-mixed, 300 frames) takes about 2.5\n"
        "minutes on an idle 2-core x86 machine; --models full adds about 2 minutes.\n",
    )
    p.add_argument(
        "--calibration",
        nargs="+",
        type=Path,
        required=True,
        metavar="PATH",
        help="videos, images or folders of them (your own camera's footage works best)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: models/)")
    p.add_argument(
        "--models",
        default="detector,lite,lite-mixed",
        help="comma-separated models to build: detector, lite, full, lite-mixed (lite "
        "with float layers, CPU only; models/SCOREBOARD.md) (default: detector,lite,lite-mixed)",
    )
    p.add_argument(
        "--frames-per-video",
        type=int,
        default=None,
        help="frames sampled evenly from each video (default: 100)",
    )
    p.add_argument(
        "--person-jitter",
        type=int,
        default=0,
        help="extra tracking-style jittered copies of each calibration person crop (default: 0)",
    )
    p.add_argument(
        "--non-person-per-frame",
        type=int,
        default=1,
        help="random non-person crops per calibration frame (default: 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from edge import paths
    from edge.modelbuild.frames import CalibrationInputError

    try:
        from edge.modelbuild.build import DEFAULT_FRAMES_PER_VIDEO, BuildOptions, build_models
        from edge.modelbuild.manifest_io import REPORT_MD
    except ImportError as exc:
        print(
            f"edge-pose models build: {exc}; install the toolchain: pip install -e '.[models]'",
            file=sys.stderr,
        )
        return 1
    roles = tuple(r.strip() for r in args.models.split(",") if r.strip())
    out = args.out or paths.models_dir()
    opts = BuildOptions(
        calibration=tuple(args.calibration),
        out_dir=out,
        roles=roles,
        frames_per_video=args.frames_per_video or DEFAULT_FRAMES_PER_VIDEO,
        person_jitter=args.person_jitter,
        non_person_per_frame=args.non_person_per_frame,
    )
    progress = _null_progress if args.no_progress else _tqdm_progress
    try:
        result = build_models(opts, progress=progress)
    except (CalibrationInputError, ValueError) as exc:
        print(f"edge-pose models build: {exc}", file=sys.stderr)
        return 2
    print((out / REPORT_MD).read_text(encoding="utf-8"))
    print(f"wrote {', '.join(m['file'] for m in result.report['models'].values())} to {out}")
    return 0


def _tqdm_progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", leave=True, mininterval=1.0)


def _null_progress(total: int, desc: str) -> Any:
    from edge.modelbuild.build import no_progress

    return no_progress(total, desc)


# --- Edge TPU ----------------------------------------------------------------


def _register_check(sub: Any) -> None:
    p = _parser(
        sub,
        "check-edgetpu",
        "list ops that keep a model off the Coral Edge TPU",
        "Statically check a .tflite model against Coral's list of supported operations:\n"
        "ops not on the list, ops with float tensors, and op versions known to be\n"
        "rejected (RESIZE_BILINEAR with half_pixel_centers, op version 3, by compilers\n"
        "14-15). The Edge TPU compiler maps ops up to the first unsupported one; the rest\n"
        "runs on the CPU. Exit 1 when anything blocks full mapping.",
        "examples:\n  edge-pose models check-edgetpu models/pose_detection_int8.tflite\n"
        "  edge-pose models check-edgetpu models/*.tflite --json\n",
    )
    p.add_argument("model", nargs="+", type=Path, help=".tflite file(s)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from edge.modelbuild.edgetpu import check_model

    status = 0
    reports = []
    for path in args.model:
        if not path.is_file():
            print(f"edge-pose models check-edgetpu: {path}: no such file", file=sys.stderr)
            return 2
        report = check_model(path)
        reports.append(report)
        if report.issues:
            status = 1
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
        return status
    for r in reports:
        print(r.text())
    return status


def _register_compile(sub: Any) -> None:
    p = _parser(
        sub,
        "compile-edgetpu",
        "run edgetpu_compiler on the int8 models (where it is installed)",
        "Compile int8 models for the Coral Edge TPU with `edgetpu_compiler`, writing\n"
        '<name>_edgetpu.tflite next to them (what `delegate = "edgetpu"` loads). The\n'
        "compiler is x86-64 only and comes from Coral's apt repository (package\n"
        "edgetpu-compiler); it is not on PyPI. Without it this command says so and exits 69.",
        "examples:\n  edge-pose models compile-edgetpu\n"
        "  edge-pose models compile-edgetpu models/pose_landmark_lite_int8.tflite --out /tmp\n",
    )
    p.add_argument("model", nargs="*", type=Path, help=".tflite files (default: detector, lite)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: next to model)")
    p.set_defaults(func=_compile)


def _compile(args: argparse.Namespace) -> int:
    from edge.models import model_path

    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        print(
            "edge-pose models compile-edgetpu: edgetpu_compiler is not installed on this "
            "machine. It runs only on x86-64 Linux and comes from Coral's apt repository "
            "(package edgetpu-compiler); it cannot be installed from PyPI. Compile on such a "
            "machine and copy the *_edgetpu.tflite files into the models folder. "
            "`edge-pose models check-edgetpu MODEL` lists what would not map meanwhile.",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    targets = list(args.model) or [model_path("detector", "int8"), model_path("lite", "int8")]
    for target in targets:
        out = args.out or target.parent
        cmd = [compiler, "-s", "-o", str(out), str(target)]
        print("running " + " ".join(cmd))
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            print(f"edgetpu_compiler failed on {target} (exit {proc.returncode})", file=sys.stderr)
            return 1
    return 0
