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

A record damaged from outside (a file cut short when a disk filled up, a copy that stopped halfway, an
edit by hand) never stops the others from being read: :meth:`ResultsStore.load` names the damaged file
in a :class:`DamagedRecordWarning`, moves it aside to ``<name>.damaged`` (nothing is deleted) and returns
every other run, so a resumed sweep sees that run as not done and runs it again. ``strict=True`` raises a
:class:`DamagedRecordError` instead.

:class:`ResultsTable` is the previous format (one CSV rewritten after every run): still read and written,
so finished sweeps are not lost, and :meth:`ResultsStore.import_csv` converts one. Several processes may
append to one CSV: a file lock (``<table>.csv.lock``) serialises their read-modify-write, so no row is lost,
but every append still rewrites the whole file; a store is the format for sweeps of any size.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import warnings

import numpy as np
import pandas as pd
from filelock import FileLock

from .schema import upgrade

LIST_COLUMNS = ("curve", "test_scores", "test_labels", "path", "froc", "matches", "frame_table", "lr_grid")
"""Columns that hold lists or tables per run: kept beside the record, decoded to Python lists on load."""

ROW_SUFFIX = ".row.json"
LISTS_SUFFIX = ".lists.json"
DAMAGED_SUFFIX = ".damaged"


class DamagedRecordError(ValueError):
    """A run record that cannot be read (cut short, not JSON, not a record); the message names its file."""


class DamagedRecordWarning(UserWarning):
    """A damaged run record was moved aside and left out; a resumed sweep runs that run again."""


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
        """Hashes of the finished runs (from the file names alone: cheap at any size; a damaged record
        counts until :meth:`load` or :meth:`verify` has read it and moved it aside)."""
        if not self.runs.is_dir():
            return set()
        return {p.name[: -len(ROW_SUFFIX)] for p in self.runs.glob(f"*{ROW_SUFFIX}") if not p.name.startswith(".")}

    def _read(self, key: str, lists: bool) -> dict:
        """One record as a dict; :class:`DamagedRecordError` (naming the file) when it cannot be read."""
        paths = [self.runs / f"{key}{ROW_SUFFIX}"] + ([self.runs / f"{key}{LISTS_SUFFIX}"] if lists else [])
        row: dict = {}
        for path in paths:
            try:
                part = json.loads(path.read_text())
            except FileNotFoundError as err:
                raise DamagedRecordError(f"{path}: missing (its run's record {paths[0].name} exists)") from err
            except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
                size = path.stat().st_size if path.exists() else 0
                raise DamagedRecordError(f"{path}: not a readable JSON record ({size:,} bytes; {err})") from err
            if not isinstance(part, dict):
                raise DamagedRecordError(f"{path}: holds a JSON {type(part).__name__}, not a run record")
            row.update(part)
        if row.get("config_hash", key) != key:
            raise DamagedRecordError(f"{paths[0]}: records run {row.get('config_hash')!r}, not {key!r}")
        return row

    def _set_aside(self, key: str) -> list[Path]:
        """Rename a damaged run's files to ``<name>.damaged`` (a number added if that exists): kept, not read."""
        moved = []
        for suffix in (ROW_SUFFIX, LISTS_SUFFIX):
            path = self.runs / f"{key}{suffix}"
            if not path.exists():
                continue
            target, n = path.with_name(path.name + DAMAGED_SUFFIX), 1
            while target.exists():
                target, n = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{n}"), n + 1
            try:
                os.replace(path, target)
                moved.append(target)
            except FileNotFoundError:   # another reader moved it first
                pass
        return moved

    def _damaged(self, problems: list[tuple[str, DamagedRecordError]], strict: bool) -> None:
        if not problems:
            return
        if strict:
            raise DamagedRecordError(
                f"{len(problems)} damaged run record(s) in {self.folder}: "
                + "; ".join(str(err) for _, err in problems)
                + ". Delete or move the file(s) named (a resumed sweep then runs those runs again), or load "
                  "with strict=False to read every other run.") from problems[0][1]
        for key, err in problems:
            moved = self._set_aside(key)
            where = ", ".join(p.name for p in moved) or "nothing left to move"
            warnings.warn(f"Damaged run record left out: {err}. Moved aside to {where} (kept for inspection); "
                          "the other runs were read, and a resumed sweep runs this one again.",
                          DamagedRecordWarning, stacklevel=3)

    def verify(self, keys: set[str] | None = None, strict: bool = False) -> list[str]:
        """Read every finished record (or those in ``keys``) once and set the damaged ones aside, as
        :meth:`load` does; returns their hashes. A sweep calls this before deciding what is left to run."""
        problems = []
        for key in sorted(self.done() if keys is None else self.done() & set(keys)):
            try:
                self._read(key, lists=True)
            except DamagedRecordError as err:
                problems.append((key, err))
        self._damaged(problems, strict)
        return [key for key, _ in problems]

    def load(self, keys: set[str] | None = None, lists: bool = True, strict: bool = False) -> pd.DataFrame:
        """Every finished run (or those in ``keys``) as one DataFrame, list columns as Python lists.

        A record that cannot be read is named in a :class:`DamagedRecordWarning`, moved aside and left
        out, and every other run is returned; with ``strict=True`` a :class:`DamagedRecordError` is
        raised instead (naming every damaged file) and nothing is moved."""
        rows, problems = [], []
        for key in sorted(self.done() if keys is None else self.done() & set(keys)):
            try:
                rows.append(self._read(key, lists))
            except DamagedRecordError as err:
                problems.append((key, err))
        self._damaged(problems, strict)
        # rows in the order of their hashes, never in the order workers finished: the same store gives the
        # same table (and the same analysis) however many workers wrote it; older names mapped (helpers.schema)
        return upgrade(pd.DataFrame(rows))

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

    Safe against a crash of a writer, and against several writers on one machine or on a file system
    whose locks work (a file lock serialises appends), but each append rewrites the whole file: use a
    :class:`ResultsStore` for anything larger than a classroom sweep, and on network file systems.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultsTable({str(self.path)!r})"

    @property
    def lock(self) -> FileLock:
        """The lock every append holds around its read-modify-write: ``<table>.csv.lock`` beside the table."""
        return FileLock(str(self.path) + ".lock", timeout=600)

    def load(self, keys: set[str] | None = None) -> pd.DataFrame:
        """Every stored row (list columns decoded), or an empty table."""
        if not self.path.exists():
            return pd.DataFrame()
        try:
            table = pd.read_csv(self.path)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise DamagedRecordError(
                f"{self.path}: not a readable results table ({err}). Restore it from a copy, or start a results "
                "store (a folder) and rerun the sweep: a store keeps one file per run, so one damaged file "
                "never hides the others.") from err
        table = decode_list_columns(table)
        if keys is not None and "config_hash" in table:
            table = table[table["config_hash"].isin(keys)].reset_index(drop=True)
        return upgrade(table)

    def done(self) -> set[str]:
        """Hashes of the finished runs."""
        table = self.load()
        return set(table["config_hash"]) if "config_hash" in table else set()

    def append(self, row: dict) -> None:
        """Add (or replace, by hash) one row and write the table atomically, under the table's file lock
        (:attr:`lock`), so that appends from several processes are applied one after another, none lost."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            table = self.load()
            if "config_hash" in table:
                table = table[table["config_hash"] != row["config_hash"]]
            table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
            for col in LIST_COLUMNS:
                if col in table:
                    table[col] = [_encode_cell(v) for v in table[col]]
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
