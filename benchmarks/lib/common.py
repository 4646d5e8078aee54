"""Where results go, the machine they were measured on, and the held-out test seed."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

#: ``benchmarks/results/``: one folder per script, named after it (``results/<script>/``).
RESULTS = Path(__file__).parent.parent / "results"
TEST_SEED = 12345  # the test set never shares a seed with training or validation data


def results_dir(script: str) -> Path:
    """The results folder of ``script`` (its file name without ``.py``): ``benchmarks/results/<script>/``."""
    return RESULTS / script


def machine() -> dict:
    """Where a number was measured (CPU model, cores, load, torch threads, GPU)."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}
    try:
        info["load_avg_1m_at_start"] = os.getloadavg()[0]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    return info


def write_results(script: str, name: str, payload: dict, out: str | None = None) -> Path:
    """Write ``payload`` as JSON to ``out``, or by default to ``results/<script>/<name>.json``."""
    path = Path(out) if out else results_dir(script) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=float))
    return path


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append ``row`` as one JSON line to ``path`` (its folder made if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def record_result(path: str | Path, result: dict) -> None:
    """Print ``result`` as one JSON line (without its per-stage details) and append it to ``path``."""
    print(json.dumps({k: v for k, v in result.items() if k != "stages"}), flush=True)
    append_jsonl(path, result)
