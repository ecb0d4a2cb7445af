# SPDX-License-Identifier: Apache-2.0
"""lshmoe.Context: one lshmoe_ctx_t over a communicator."""
import ctypes

from . import _lib
from ._buffers import describe
from ._config import Config
from ._errors import check

_ULONGS = ctypes.c_size_t


def _sizes(name, values, n):
    if values is None:
        raise ValueError("%s is required" % name)
    vals = [int(v) for v in values]
    if len(vals) != n:
        raise ValueError("%s has %d entries, the group has %d ranks" % (name, len(vals), n))
    if any(v < 0 for v in vals):
        raise ValueError("%s has a negative entry" % name)
    return (_ULONGS * n)(*vals)


def _packed(counts):
    out, off = [], 0
    for c in counts:
        out.append(off)
        off += c
    return out


def _comm_kind(comm):
    """'self', 'mpi', 'torch' or 'user' for what the caller handed in."""
    from ._usercomm import UserComm
    if comm is None:
        return "self"
    if isinstance(comm, UserComm):
        return "user"
    mod = type(comm).__module__ or ""
    if mod.startswith("mpi4py"):
        return "mpi"
    if mod.startswith("torch"):
        return "torch"
    if isinstance(comm, str) and comm == "torch":
        return "torch"
    raise TypeError("comm must be None (one process), an mpi4py communicator, a "
                    "torch.distributed process group or an lshmoe.UserComm, not %s"
                    % type(comm).__name__)


class Context:
    """An lshmoe context (collective to create: every rank of the group).

    Context()                     one rank, this process alone
    Context(mpi4py_comm)          the ranks of an MPI communicator
    Context(torch_group)          a torch.distributed group (or "torch" for
                                  the default group), through the
                                  bring-your-own-communicator kind
    Context(lshmoe.UserComm(...)) your own collectives as Python functions
    Context(comm, Config(...))    with a configuration

    Raises LshmoeError (status name + the library's message) when the C
    call fails; TypeError/ValueError for bad arguments, before any C call.
    """

    def __init__(self, comm=None, config=None):
        if config is not None and not isinstance(config, Config):
            raise TypeError("config must be an lshmoe.Config, not %s" % type(config).__name__)
        self._handle = None
        self._keep = []  # objects the C side points into
        kind = _comm_kind(comm)
        desc = _lib.new_struct(_lib.CommDesc)
        if kind == "self":
            desc.kind, desc.native, desc.rank, desc.nranks = _lib.COMM_SELF, None, 0, 1
        elif kind == "mpi":
            from mpi4py import MPI
            if comm == MPI.COMM_NULL:
                raise ValueError("comm is MPI.COMM_NULL")
            # native points to the MPI_Comm handle inside the mpi4py object,
            # which must outlive this constructor (and the comm the context).
            desc.kind = _lib.COMM_MPI
            desc.native = MPI._addressof(comm)
            desc.rank, desc.nranks = comm.Get_rank(), comm.Get_size()
            self._keep.append(comm)
        else:
            from ._usercomm import TorchComm
            uc = comm if kind == "user" else TorchComm(None if isinstance(comm, str) else comm)
            desc.kind = _lib.COMM_USER
            desc.native = ctypes.cast(ctypes.pointer(uc.struct), ctypes.c_void_p)
            desc.rank, desc.nranks = uc.rank, uc.nranks
            self._keep.append(uc)
        self.kind = kind
        cfg = (config or Config()).to_c()
        h = ctypes.c_void_p()
        check(_lib.ctx_create_v(_lib.get_version(), ctypes.byref(desc), ctypes.byref(cfg),
                                ctypes.byref(h)), "lshmoe_ctx_create")
        self._handle = h

    @property
    def handle(self):
        if self._handle is None:
            raise ValueError("the context is closed")
        return self._handle

    @property
    def rank(self):
        return _lib.ctx_rank(self.handle)

    @property
    def nranks(self):
        return _lib.ctx_nranks(self.handle)

    @property
    def config(self):
        """The resolved configuration (every field set)."""
        s = _lib.new_struct(_lib.ConfigStruct)
        check(_lib.ctx_get_config(self.handle, ctypes.byref(s)), "lshmoe_ctx_get_config",
              self.handle)
        return Config.from_c(s)

    def stats(self, reset=False):
        """Cumulative statistics as a dict (lshmoe_stats_t)."""
        s = _lib.new_struct(_lib.Stats)
        check(_lib.stats_get(self.handle, ctypes.byref(s)), "lshmoe_stats_get", self.handle)
        if reset:
            _lib.stats_reset(self.handle)
        return {f[0]: (list(getattr(s, f[0])) if isinstance(getattr(s, f[0]), ctypes.Array)
                       else getattr(s, f[0]))
                for f in _lib.Stats._fields_ if f[0] not in ("size", "reserved")}

    def alltoallv(self, send, send_counts, recv, recv_counts, send_displs=None,
                  recv_displs=None):
        """lshmoe_alltoallv: MPI_Alltoallv semantics, counts in rows (dim 0).

        send, recv: C-contiguous numpy arrays or CPU torch tensors of one
        dtype and row shape. Float rows (fp32/fp16/bf16) are compressed by
        the context's configuration; every other dtype travels byte-exact.
        Displacements default to packed. Collective; blocking.
        """
        n = self.nranks
        s = describe(send, "send")
        r = describe(recv, "recv", writable=True)
        if s.dtype != r.dtype or s.row_elems != r.row_elems:
            raise ValueError("send and recv differ in dtype or row size")
        sc = _sizes("send_counts", send_counts, n)
        rc = _sizes("recv_counts", recv_counts, n)
        sd = _sizes("send_displs", _packed(sc) if send_displs is None else send_displs, n)
        rd = _sizes("recv_displs", _packed(rc) if recv_displs is None else recv_displs, n)
        for counts, displs, b, name in ((sc, sd, s, "send"), (rc, rd, r, "recv")):
            if any(displs[i] + counts[i] > b.rows for i in range(n)):
                raise ValueError("%s counts/displacements reach past its %d rows" % (name, b.rows))
        check(_lib.alltoallv(self.handle, s.addr or None, sc, sd, r.addr or None, rc, rd,
                             s.dtype, s.row_elems, None), "lshmoe_alltoallv", self.handle)

    def close(self):
        """Frees the context (not collective). Idempotent."""
        if self._handle is not None:
            _lib.ctx_destroy(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
