"""Loaded by every pytest run in this project (tests, notebooks and student copies under nbval, the data-set
matrix's own pytest processes): nbval starts its kernels on IPC sockets with names of their own, so two pytest
workers can start kernels at the same moment without being handed the same TCP port (helpers/kernels.py)."""
from __future__ import annotations

try:
    import nbval.kernel
except ImportError:   # nbval not installed, or disabled: nothing to configure
    pass
else:
    from helpers.kernels import IpcKernelManager

    nbval.kernel.KernelManager = IpcKernelManager
