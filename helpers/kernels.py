"""Jupyter kernels on local (IPC) sockets, for running several notebooks at once on one machine.

A Jupyter kernel talks to its client over five sockets. By default they are TCP ports on 127.0.0.1, chosen by
the *client* (bind to port 0, note the number, close) and bound by the kernel a second or two later. Two
processes starting kernels at the same moment can be handed the same free port in that window; ``make test``
runs notebooks on two pytest workers at once, so it starts its kernels here on Unix-domain sockets instead: each
kernel's sockets are files with a name of their own (``<tmp>/ftlab-kernel-<id>-<n>``), and no port is ever
chosen. Nothing about the notebooks changes (the kernel, its code and its outputs are the same).

- :class:`IpcKernelManager` / :class:`AsyncIpcKernelManager`: ``jupyter_client``'s managers with that default.
- :func:`execute_notebook`: papermill with the asynchronous one (``python -m helpers.kernels IN OUT --cwd DIR``), and
  without nbclient's Output-widget mimicry, whose sends on the shell socket can leave a cell waiting forever for a
  reply that already arrived (see :func:`without_output_widget_mimicry`). ``make reproduce`` and the notebook-time
  benchmark run their notebooks through it too.
- The project's ``conftest.py`` gives nbval the synchronous one; ``tests/test_browser.py`` starts JupyterLab
  with ``--KernelManager.transport=ipc`` (its kernels' connection files already have names of their own).

Linux and macOS only (Windows has no Unix-domain sockets for ZeroMQ): elsewhere the managers keep TCP.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from jupyter_client.localinterfaces import localhost
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import CaselessStrEnum

TRANSPORT = "tcp" if sys.platform.startswith("win") else "ipc"


def socket_prefix() -> str:
    """A path no other kernel uses: the kernel's sockets are this path with ``-1`` .. ``-5`` appended."""
    return os.path.join(tempfile.gettempdir(), f"ftlab-kernel-{uuid.uuid4().hex[:16]}")


def _ip_default(self) -> str:
    # jupyter_client's own default for IPC is "kernel-ipc" in the working directory when the manager has no
    # connection file yet (papermill, nbval): two kernels started there at once would pick the same files
    return socket_prefix() if self.transport == "ipc" else localhost()


class IpcKernelManager(KernelManager):
    """``jupyter_client.KernelManager`` on Unix-domain sockets with a unique name (see the module's docstring)."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value=TRANSPORT, config=True)
    _ip_default = _ip_default


class AsyncIpcKernelManager(AsyncKernelManager):
    """``jupyter_client.AsyncKernelManager`` on Unix-domain sockets with a unique name (papermill, nbclient)."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value=TRANSPORT, config=True)
    _ip_default = _ip_default


def execute_notebook(source: str | Path, output: str | Path, cwd: str | Path | None = None,
                     timeout: float | None = None, kernel_name: str = "python3", progress_bar: bool = False):
    """Execute ``source`` into ``output`` with papermill, its kernel on IPC sockets, without nbclient's mimicry of a
    front end's Output widget (:func:`without_output_widget_mimicry`); returns the executed notebook."""
    import papermill   # deferred: only the notebook runners need it
    with without_output_widget_mimicry():
        return papermill.execute_notebook(str(source), str(output), cwd=None if cwd is None else str(cwd),
                                          kernel_name=kernel_name, execution_timeout=timeout, progress_bar=progress_bar,
                                          kernel_manager_class=AsyncIpcKernelManager)


@contextlib.contextmanager
def without_output_widget_mimicry() -> Iterator[None]:
    """Every nbclient client made while the block runs (papermill's, jupyter-cache's) plays no ``ipywidgets.Output``.

    nbclient plays a front end for ``ipywidgets.Output``: each output captured or cleared inside one is answered by a
    ``comm_msg`` the client *sends on the shell socket*, from the coroutine that reads IOPub, while another coroutine
    waits on that same socket for the cell's ``execute_reply``. ZeroMQ signals a socket's readiness edge-triggered, so
    a send can swallow the notification of a reply that arrived meanwhile: the client then waits for a reply that is
    already there until the cell timeout, beside an idle kernel (seen in ``make test``: notebook 04's results explorer
    under full-toy, 30 minutes; nbclient issue 312). Without the mimicry the client never sends during a cell; what an
    Output widget shows is kept as the cell's own output, which is what a static copy of the notebook wants anyway.
    ``book/conf.py`` enters it for the whole book build.
    """
    import nbclient.client as client   # deferred: only the notebook runners need nbclient

    init = client.NotebookClient.__init__

    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.widget_registry = {}

    client.NotebookClient.__init__ = __init__
    try:
        yield
    finally:
        client.NotebookClient.__init__ = init


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.kernels",
                                     description="Execute a notebook with papermill, its kernel on IPC sockets.")
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--cwd", default=None, help="the kernel's working directory")
    parser.add_argument("--timeout", type=float, default=None, help="seconds a cell may take (default: no limit)")
    parser.add_argument("--progress-bar", action="store_true", help="papermill's bar over the notebook's cells")
    args = parser.parse_args(argv)
    execute_notebook(args.source, args.output, args.cwd, args.timeout, progress_bar=args.progress_bar)


if __name__ == "__main__":
    main()
