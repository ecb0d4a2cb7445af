# SPDX-License-Identifier: Apache-2.0
"""lshmoe from Python: ctypes over liblshmoe (numpy and torch optional).

    import lshmoe
    ctx = lshmoe.Context(comm, lshmoe.Config(num_hashes=6))
    ctx.alltoallv(send, send_counts, recv, recv_counts)

PyTorch users: lshmoe.torch.all_to_all_single (drop-in for
torch.distributed.all_to_all_single) and lshmoe.torch.MoELayer.
See docs/python.md.
"""
from . import _lib
from ._config import Config, FIELDS as CONFIG_FIELDS
from ._context import Context
from ._errors import LshmoeError
from ._usercomm import UserComm

__all__ = ["Config", "Context", "LshmoeError", "UserComm", "CONFIG_FIELDS", "version",
           "library_path"]

library_path = _lib.library_path


def version():
    """Version string of the loaded C library, e.g. "0.1.0"."""
    return _lib.version_string().decode()
