"""Where every benchmark leaves its figures: ``<out>/<name>.json`` and ``<out>/<name>.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
