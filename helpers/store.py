"""Where sweep results live: a folder that any number of processes, on any number of machines, can write
into at once, and the older one-CSV table it replaces.

A :class:`ResultsStore` is a folder with one record per finished run, keyed by the run's config hash::

    <folder>/runs/<hash>.lists.json   the run's per-case lists (test scores and labels, the validation
                                      curve, ...): written first
    <folder>/runs/<hash>.row.json     the run's scalar fields: written last; its presence means "finished"

Why one file per run and not SQLite: sweeps that outgrow one machine share a folder over a network file
system (NFS, Lustre, GPFS), where SQLite's locking is unreliable and a single database file becomes the
point every worker waits on. Here no writer ever touches another run's files, so no lock is needed; each
file is written to a temporary name in the same folder, flushed to disk and renamed over the final name,
which POSIX makes atomic. A process killed at any moment leaves either a whole record or none (a leftover
``.tmp`` file or an orphan ``.lists.json`` is never read as a finished run); two processes that finish the
same run write the same key, so nothing is duplicated. Appending costs the same for run 10 and run 10,000.
Only JSON is ever read back (no pickle).

:class:`ResultsTable` is the previous format (one CSV rewritten after every run): still read and written,
so finished sweeps are not lost, and :meth:`ResultsStore.import_csv` converts one.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LIST_COLUMNS = ("curve", "test_scores", "test_labels", "path", "froc", "matches", "frame_table", "lr_grid")
"""Columns that hold lists or tables per run: kept beside the record, decoded to Python lists on load."""

ROW_SUFFIX = ".row.json"
LISTS_SUFFIX = ".lists.json"


def _plain(value: Any) -> Any:
    """A JSON-ready value: NumPy scalars and arrays to Python, NaN to None."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _encode_cell(value: Any) -> Any:
    """A list column's cell as JSON text (lists, tables and arrays); anything else unchanged."""
    return json.dumps(_plain(value)) if isinstance(value, (list, dict, np.ndarray)) else value


def decode_cell(value: Any) -> Any:
    """A list column's cell as Python lists (JSON text parsed; missing -> empty list); lists unchanged."""
    if isinstance(value, str):
        value = value.strip()
        return json.loads(value) if value else []
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def decode_list_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A copy with every :data:`LIST_COLUMNS` column decoded (:func:`decode_cell`); idempotent."""
    out = table.copy()
    for col in LIST_COLUMNS:
        if col in out.columns:
            out[col] = pd.Series([decode_cell(v) for v in out[col]], index=out.index, dtype=object)
    return out


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, fsync'd, then renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class ResultsStore:
    """A folder of run records that many processes can append to at once (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.suffix == ".csv":
            raise ValueError(f"{self.folder} is a CSV file name; a results store is a folder. Use "
                             "open_results() to read an old CSV table, or ResultsStore(folder).import_csv(csv).")
        self.runs = self.folder / "runs"

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.folder)!r})"

    def append(self, row: dict) -> None:
        """Store one finished run (replacing an earlier record of the same hash): lists first, record last."""
        key = str(row["config_hash"])
        self.runs.mkdir(parents=True, exist_ok=True)
        lists = {c: _plain(row[c]) for c in LIST_COLUMNS if c in row}
        scalars = {k: _plain(v) for k, v in row.items() if k not in lists}
        _write_atomically(self.runs / f"{key}{LISTS_SUFFIX}", json.dumps(lists))
        _write_atomically(self.runs / f"{key}{ROW_SUFFIX}", json.dumps(scalars, sort_keys=True))

    def done(self) -> set[str]:
        """Hashes of the finished runs (from the file names alone: cheap at any size)."""
        if not self.runs.is_dir():
            return set()
        return {p.name[: -len(ROW_SUFFIX)] for p in self.runs.glob(f"*{ROW_SUFFIX}") if not p.name.startswith(".")}

    def load(self, keys: set[str] | None = None, lists: bool = True) -> pd.DataFrame:
        """Every finished run (or those in ``keys``) as one DataFrame, list columns as Python lists."""
        rows = []
        for key in sorted(self.done() if keys is None else self.done() & set(keys)):
            row = json.loads((self.runs / f"{key}{ROW_SUFFIX}").read_text())
            if lists:
                row.update(json.loads((self.runs / f"{key}{LISTS_SUFFIX}").read_text()))
            rows.append(row)
        table = pd.DataFrame(rows)
        return table.sort_values("finished_at", kind="stable").reset_index(drop=True) \
            if "finished_at" in table else table

    def import_csv(self, csv: str | Path) -> int:
        """Copy every row of an old CSV results table into this store; returns how many were added."""
        table = ResultsTable(csv).load()
        done = self.done()
        added = 0
        for row in table.to_dict("records"):
            if row.get("config_hash") not in done:
                self.append(row)
                added += 1
        return added


class ResultsTable:
    """The previous format: one CSV of result rows, rewritten atomically after every finished run.

    Safe against a crash of its one writer, but not against two writers (the last rename wins), and each
    append rewrites the whole file: use a :class:`ResultsStore` for anything larger than a classroom sweep.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultsTable({str(self.path)!r})"

    def load(self, keys: set[str] | None = None) -> pd.DataFrame:
        """Every stored row (list columns decoded), or an empty table."""
        if not self.path.exists():
            return pd.DataFrame()
        try:
            table = pd.read_csv(self.path)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        table = decode_list_columns(table)
        if keys is not None and "config_hash" in table:
            table = table[table["config_hash"].isin(keys)].reset_index(drop=True)
        return table

    def done(self) -> set[str]:
        """Hashes of the finished runs."""
        table = self.load()
        return set(table["config_hash"]) if "config_hash" in table else set()

    def append(self, row: dict) -> None:
        """Add (or replace, by hash) one row and write the table atomically."""
        table = self.load()
        if "config_hash" in table:
            table = table[table["config_hash"] != row["config_hash"]]
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
        for col in LIST_COLUMNS:
            if col in table:
                table[col] = [_encode_cell(v) for v in table[col]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.path, table.to_csv(index=False))


Results = ResultsStore | ResultsTable


def open_results(where: str | Path | Results) -> Results:
    """A store for a folder, the old table for a ``.csv`` path, or the object itself."""
    if isinstance(where, (ResultsStore, ResultsTable)):
        return where
    return ResultsTable(where) if Path(where).suffix == ".csv" else ResultsStore(where)


class StoreWriter:
    """``run_fn`` wrapped so the process that runs a config also stores its row (returns the hash only).

    Workers on other machines then send nothing big back, and a worker that dies loses only its own run.
    Picklable (a module-level class holding a module-level function), so process pools, Dask and
    submitit can ship it.
    """

    def __init__(self, results: Results, run_fn) -> None:
        self.results, self.run_fn = results, run_fn

    def __call__(self, config) -> str:
        row = self.run_fn(config)
        self.results.append(row)
        return str(row["config_hash"])
