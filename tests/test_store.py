"""helpers.store: a results folder that many processes write into at once, for real.

Covered: the record round trip; replacing by hash; temporary and orphan files never read as finished
runs; a failed write keeps the old record; two processes writing at once lose and duplicate nothing;
``kill -9`` at random moments, repeated, leaves only whole records and a resume completes the set;
an old CSV table is still read and converts.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import store as ST
from helpers.store import ResultsStore, ResultsTable, open_results

REPO = Path(__file__).resolve().parents[1]

WRITER = """
import sys, time
from helpers.store import ResultsStore
folder, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = ResultsStore(folder)
done = store.done()
for i in range(start, stop):
    key = f"run{i:04d}"
    if key in done:
        continue
    store.append({"config_hash": key, "i": i, "test_auc": i / 1000, "finished_at": f"{i:06d}",
                  "test_scores": [i / 7] * 500, "test_labels": [0, 1] * 250, "curve": [[1, 0.5], [2, i]]})
"""


def row(key: str, auc: float = 0.5, n: int = 4) -> dict:
    return {"config_hash": key, "test_auc": auc, "lr": None, "finished_at": key, "collapsed": False,
            "test_scores": [auc] * n, "test_labels": [0, 1] * (n // 2), "curve": [[10, 0.5], [20, auc]],
            "path": [{"level": "fc8", "val_auc": 0.7}]}


def check_whole(table: pd.DataFrame) -> None:
    """Every record read back is complete: scalars and lists belong together."""
    for _, r in table.iterrows():
        assert r["test_auc"] == r["i"] / 1000 and r["curve"] == [[1, 0.5], [2, r["i"]]]
        assert r["test_scores"] == [r["i"] / 7] * 500 and len(r["test_labels"]) == 500


def spawn_writer(folder: Path, start: int, stop: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(start), str(stop)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


# ----------------------------------------------------------------------------- records

def test_round_trip_replace_and_done(tmp_path):
    store = ResultsStore(tmp_path / "store")
    assert store.done() == set() and store.load().empty
    store.append(row("a", 0.5))
    store.append(row("b", 0.6))
    store.append(row("a", 0.9))
    assert store.done() == {"a", "b"}
    table = store.load()
    assert sorted(table["config_hash"]) == ["a", "b"]
    a = table.set_index("config_hash").loc["a"]
    assert a["test_auc"] == 0.9 and a["test_scores"] == [0.9] * 4 and a["path"] == [{"level": "fc8", "val_auc": 0.7}]
    assert pd.isna(a["lr"]) and not a["collapsed"]
    only_b = store.load({"b", "zzz"})
    assert list(only_b["config_hash"]) == ["b"]
    assert "test_scores" not in store.load(lists=False)
    files = sorted(p.name for p in (tmp_path / "store" / "runs").iterdir())
    assert files == ["a.lists.json", "a.row.json", "b.lists.json", "b.row.json"]


def test_temporary_and_orphan_files_are_not_finished_runs(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(row("a"))
    (store.runs / ".b.row.json.x1y2.tmp").write_text('{"config_hash": "b", "half')
    (store.runs / "c.lists.json").write_text(json.dumps({"test_scores": [1]}))   # killed before its record
    assert store.done() == {"a"} and list(store.load()["config_hash"]) == ["a"]


def test_a_failed_write_keeps_the_old_record(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.append(row("a", 0.5))
    before = {p.name: p.read_bytes() for p in store.runs.iterdir()}

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(ST.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        store.append(row("a", 0.9))
    assert {p.name: p.read_bytes() for p in store.runs.iterdir()} == before


def test_a_csv_name_is_refused_with_the_way_out(tmp_path):
    with pytest.raises(ValueError, match="open_results"):
        ResultsStore(tmp_path / "results.csv")


def test_old_csv_tables_are_read_and_converted(tmp_path):
    old = ResultsTable(tmp_path / "04_sweep.csv")
    old.append(row("a", 0.7))
    old.append(row("b", 0.8))
    assert isinstance(open_results(tmp_path / "04_sweep.csv"), ResultsTable)
    assert isinstance(open_results(tmp_path / "store"), ResultsStore)
    store = ResultsStore(tmp_path / "store")
    assert store.import_csv(old.path) == 2 and store.import_csv(old.path) == 0
    table = store.load().set_index("config_hash")
    assert table.loc["b", "test_auc"] == 0.8 and table.loc["b", "test_scores"] == [0.8] * 4
    assert table.loc["a", "curve"] == [[10, 0.5], [20, 0.7]]


# ----------------------------------------------------------------------------- many writers

def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    """Two writers with overlapping halves (runs 0-59 and 40-99) into one folder: 100 whole records."""
    folder = tmp_path / "shared"
    writers = [spawn_writer(folder, 0, 60), spawn_writer(folder, 40, 100)]
    for w in writers:
        out, _ = w.communicate(timeout=120)
        assert w.returncode == 0, out.decode()
    store = ResultsStore(folder)
    table = store.load()
    assert len(table) == 100 and table["config_hash"].is_unique
    assert store.done() == {f"run{i:04d}" for i in range(100)}
    check_whole(table)


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """A writer is SIGKILLed six times, each time after a random number of further records; every time,
    what reads back is whole and unique, and a last writer completes the set."""
    folder = tmp_path / "killed"
    store = ResultsStore(folder)
    rng = random.Random(0)
    total, kills = 400, 0
    for _ in range(6):
        target = min(total - 1, len(store.done()) + rng.randint(1, 40))
        child = spawn_writer(folder, 0, total)
        deadline = time.monotonic() + 60
        while len(store.done()) < target and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.wait(timeout=30)
        table = store.load()                         # whatever was killed, what reads back is whole
        assert table["config_hash"].is_unique
        check_whole(table)
    assert kills >= 3, "the children finished before their kills: nothing was interrupted"
    assert len(store.done()) < total
    last = spawn_writer(folder, 0, total)            # resume to the end
    assert last.wait(timeout=120) == 0
    table = store.load()
    assert len(table) == total and table["config_hash"].is_unique
    check_whole(table)


# ----------------------------------------------------------------------------- damaged records

def _cut_short(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])          # as a full disk or a copy stopped halfway leaves it


def test_a_damaged_record_is_named_and_every_other_run_is_read(tmp_path):
    store = ResultsStore(tmp_path / "store")
    for key in ("a", "b", "c"):
        store.append(row(key, 0.6))
    damaged = store.runs / "b.row.json"
    _cut_short(damaged)
    # strict: an error naming the file and what to do; nothing is moved
    with pytest.raises(ST.DamagedRecordError, match=r"b\.row\.json.*not a readable JSON record") as err:
        store.load(strict=True)
    assert "strict=False" in str(err.value) and damaged.exists()
    # default: a warning naming the file; the other runs are read; the file is kept beside, not deleted
    with pytest.warns(ST.DamagedRecordWarning, match=r"b\.row\.json") as caught:
        table = store.load()
    assert sorted(table["config_hash"]) == ["a", "c"]
    assert "resumed sweep runs this one again" in str(caught[0].message)
    assert not damaged.exists() and (store.runs / "b.row.json.damaged").exists()
    assert (store.runs / "b.lists.json.damaged").exists()
    assert store.done() == {"a", "c"}                 # so a resumed sweep runs it again
    # a damaged lists file, a record of another run, and a JSON list are damaged records too
    (store.runs / "a.lists.json").write_text("[1, 2")
    (store.runs / "c.row.json").write_text(json.dumps({"config_hash": "zzz"}))
    store.append(row("d"))
    (store.runs / "d.row.json").write_text("[]")
    with pytest.warns(ST.DamagedRecordWarning) as caught:
        assert store.load().empty
    assert len(caught) == 3 and store.done() == set()
    store.append(row("b"))                            # a rerun writes the record again; the damaged copy stays
    _cut_short(store.runs / "b.row.json")
    with pytest.warns(ST.DamagedRecordWarning):
        store.load()
    assert (store.runs / "b.row.json.damaged.1").exists()


def test_a_resumed_sweep_reruns_the_damaged_run(tmp_path):
    from helpers.experiments import RunConfig
    from helpers.runner import run_sweep

    calls = []

    def fake(config):
        calls.append(config.key())
        return {"config_hash": config.key(), "strategy": config.strategy, "fraction": config.fraction,
                "seed": config.seed, "test_auc": 0.5 + 0.1 * config.seed, "finished_at": str(len(calls))}

    configs = [RunConfig(dataset="pneumoniamnist", arch="efficientnet_lite0", strategy="scratch", fraction=1.0,
                         seed=s, lr=0.01) for s in range(3)]
    folder = tmp_path / "sweep"
    assert len(run_sweep(configs, folder, run_fn=fake, progress=False)) == 3 and len(calls) == 3
    _cut_short(ResultsStore(folder).runs / f"{configs[1].key()}.row.json")
    with pytest.warns(ST.DamagedRecordWarning, match=configs[1].key()):
        table = run_sweep(configs, folder, run_fn=fake, progress=False)
    assert calls[3:] == [configs[1].key()]             # only the damaged run ran again
    assert len(table) == 3 and table["config_hash"].is_unique


CSV_WRITER = """
import sys
from helpers.store import ResultsTable
table = ResultsTable(sys.argv[1])
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    table.append({"config_hash": f"run{i:03d}", "i": i, "curve": [[1, i]]})
"""


def test_three_processes_appending_to_one_csv_lose_no_row(tmp_path):
    path = tmp_path / "sweep.csv"
    writers = [subprocess.Popen([sys.executable, "-c", CSV_WRITER, str(path), str(a), str(a + 10)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for a in (0, 10, 20)]
    for w in writers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0, out.decode()
    table = ResultsTable(path).load()
    assert sorted(table["i"]) == list(range(30)) and table["config_hash"].is_unique
    assert table.set_index("i").loc[17, "curve"] == [[1, 17]]


def test_a_damaged_csv_table_says_what_to_do(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_bytes(b'config_hash,test_auc\n"abc,0.5\n\xff\xfe"')
    with pytest.raises(ST.DamagedRecordError, match="sweep.csv.*results store"):
        ResultsTable(path).load()
