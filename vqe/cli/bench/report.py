"""Where every benchmark leaves its figures (``<out>/<name>.json`` and ``<out>/<name>.md``) and
what it records about the machine."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch


def save_report(out: Path, name: str, result: dict[str, Any], table: str) -> tuple[Path, Path]:
    """Write the raw result as JSON and the human table as markdown, print the table and where
    both went; returns the two paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    markdown_path.write_text(table)
    print()
    print(table)
    print(f"wrote {json_path} and {markdown_path}")
    return json_path, markdown_path


def machine_description(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on: torch and Python versions, CPU model and threads,
    and the GPU when ``device`` is one."""
    cpu = platform.processor() or platform.machine()
    try:  # the model name is only in /proc/cpuinfo on Linux
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    description: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        description["gpu"] = torch.cuda.get_device_name(device)
    return description
