"""Kernels on IPC sockets (helpers/kernels.py): what lets ``make test`` run notebooks on two workers at once."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import kernels

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(kernels.TRANSPORT != "ipc", reason="no Unix-domain sockets for ZeroMQ here")

PROBE = {"cells": [{"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {}, "outputs": [],
                    "source": "import json, os\nfrom ipykernel.connect import get_connection_info\n"
                              "info = json.loads(get_connection_info())\nprint(info['transport'], info['ip'])"}],
         "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
         "nbformat": 4, "nbformat_minor": 5}


def test_nbval_starts_its_kernels_on_ipc_sockets_of_their_own():
    import nbval.kernel
    assert nbval.kernel.KernelManager is kernels.IpcKernelManager, "the project's conftest.py configures nbval"
    started = [nbval.kernel.start_new_kernel(kernel_name="python3") for _ in range(2)]
    try:
        infos = [km.get_connection_info() for km, _ in started]
        assert all(i["transport"] == "ipc" for i in infos)
        assert infos[0]["ip"] != infos[1]["ip"], "two kernels started together never share socket files"
        for km, kc in started:
            msg_id = kc.execute("x = 6 * 7", silent=False)
            assert kc.get_shell_msg(timeout=30)["parent_header"]["msg_id"] == msg_id
    finally:
        for km, kc in started:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert not any(Path(f"{i['ip']}-{i['shell_port']}").exists() for i in infos), "socket files removed"


def test_papermill_through_the_helper_runs_on_ipc(tmp_path):
    source = tmp_path / "probe.ipynb"
    source.write_text(json.dumps(PROBE))
    nb = kernels.execute_notebook(source, tmp_path / "out.ipynb", cwd=tmp_path, timeout=60)
    transport, prefix = nb["cells"][0]["outputs"][0]["text"].split()
    assert transport == "ipc" and Path(prefix).name.startswith("ftlab-kernel-")
    assert Path(prefix).parent == Path(tempfile.gettempdir()), "not kernel-ipc-N in the working directory"


OUTPUT_WIDGET = ("import ipywidgets as W\n"
                 "out = W.Output()\n"
                 "display(out)\n"
                 "for i in range(40):   # the explorers' pattern: clear, then draw into the Output widget\n"
                 "    out.clear_output(wait=True)\n"
                 "    with out:\n"
                 "        print(f'drawn {i}')\n")


def test_papermill_through_the_helper_never_plays_the_output_widget(tmp_path):
    """nbclient answers what an Output widget captures with a message on the shell socket, sent while it waits on
    that socket for the cell's reply; that send can swallow the reply's wake-up and leave the cell waiting until its
    timeout (helpers/kernels.py). Through the helper the client plays no front end: what the widget shows stays in
    the cell's own outputs, so nothing is sent while a cell runs."""
    source = tmp_path / "widget.ipynb"
    source.write_text(json.dumps({**PROBE, "cells": [{**PROBE["cells"][0], "source": OUTPUT_WIDGET}]}))
    nb = kernels.execute_notebook(source, tmp_path / "out.ipynb", cwd=tmp_path, timeout=120)
    text = "".join(o.get("text", "") for o in nb["cells"][0]["outputs"] if o["output_type"] == "stream")
    assert "drawn 39" in text, "the captured prints are the cell's own output: no Output widget was played"
    import nbclient
    import nbformat
    played = nbclient.NotebookClient(nbformat.reads(source.read_text(), 4), kernel_name="python3",
                                     kernel_manager_class=kernels.AsyncIpcKernelManager, timeout=120)
    played.execute(cwd=str(tmp_path))
    cell = played.nb["cells"][0]
    assert "drawn" not in "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream"), \
        "nbclient's own client does capture them (the check above can fail)"


CHAIN = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                    "source": src} for i, src in enumerate(["x = 1", "x += 1", "x += 1", "assert x == 3, x"])],
         "metadata": PROBE["metadata"], "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.slow   # a pytest session on two workers
def test_two_workers_run_a_notebook_in_order_on_one_worker(tmp_path):
    """make test's scheduling (tests/conftest.py): every cell of a notebook on one worker, in order, beside another
    group; pytest-xdist's own --dist loadgroup silently split notebooks cell by cell under pytest 9."""
    notebook = tmp_path / "chain.ipynb"
    notebook.write_text(json.dumps(CHAIN))
    beside = "tests/test_kernels.py::test_nbval_starts_its_kernels_on_ipc_sockets_of_their_own"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", beside, str(notebook), "--nbval-lax",
                           "--nbval-current-env", "-p",
                           "no:cacheprovider", "-n", "2", "--dist", "loadscope"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "5 passed" in done.stdout, done.stdout[-3000:]
