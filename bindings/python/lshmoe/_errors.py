# SPDX-License-Identifier: Apache-2.0
"""LshmoeError: a failed C call, with its status name and the library's text."""
from . import _lib


class LshmoeError(RuntimeError):
    """A C call returned an error status.

    Attributes: status (the negative int), name ("ERR_MISMATCH", ...),
    message (lshmoe_last_error() of the context, or of the thread).
    """

    def __init__(self, status, message, call):
        self.status = int(status)
        self.name = _lib.status_name(self.status).decode()
        self.message = message
        self.call = call
        super().__init__("%s failed: %s: %s" % (call, self.name, message or
                                                 _lib.status_string(self.status).decode()))


def check(status, call, ctx=None):
    """Raises LshmoeError for a negative status; ctx: the context handle
    whose last error holds the message (None: this thread's)."""
    if status < 0:
        raise LshmoeError(status, _lib.last_error(ctx).decode(errors="replace"), call)
    return status
