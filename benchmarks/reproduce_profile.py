"""Where `make reproduce` spends its time: the slowest code cells of every executed notebook.

papermill records each cell's duration in the executed copies it writes to ``reports/``; this reads them
(no notebook is run again) and prints, per notebook, the time in code cells and the cells that took most.

    python -m benchmarks.reproduce_profile [reports/] [--top 5]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cell_times(notebook: Path) -> list[tuple[float, int, str]]:
    """(seconds, cell index, first code line) of every executed code cell, slowest first."""
    cells = json.loads(notebook.read_text())["cells"]
    rows = []
    for index, cell in enumerate(cells):
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell["cell_type"] == "code" and seconds is not None:
            lines = [line for line in "".join(cell["source"]).splitlines() if line.strip() and not line.startswith("#")]
            rows.append((float(seconds), index, lines[0][:80] if lines else ""))
    return sorted(rows, reverse=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="?", default="reports", type=Path)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args(argv)
    notebooks = sorted(args.reports.glob("[0-9]*.ipynb"))
    if not notebooks:
        raise SystemExit(f"No executed notebooks in {args.reports}/: run make reproduce first.")
    for notebook in notebooks:
        rows = cell_times(notebook)
        print(f"{notebook.stem}: {sum(r[0] for r in rows):.0f} s in {len(rows)} code cells")
        for seconds, index, line in rows[: args.top]:
            print(f"  {seconds:7.1f} s  cell {index:2d}  {line}")


if __name__ == "__main__":
    main()
