# SPDX-License-Identifier: Apache-2.0
"""Bring-your-own communicator from Python: lshmoe_user_comm_t whose two
collectives are Python functions. TorchComm runs them over a
torch.distributed process group, so a torch.distributed job needs no
second communicator (no MPI) for lshmoe."""
import ctypes

from . import _lib


def _write_error(errbuf, errlen, text):
    if not errbuf or errlen == 0:
        return
    data = text.encode(errors="replace")[:errlen - 1] + b"\0"
    ctypes.memmove(errbuf, data, len(data))


class UserComm:
    """Wraps two Python callables as the C lshmoe_user_comm_t; pass it to
    lshmoe.Context to run lshmoe over any collectives you have.

    alltoallv(send_addr, send_bytes, recv_addr, recv_bytes): byte
    all-to-all-v over packed buffers (addresses are ints, sizes lists of
    nranks ints). allgather(send_addr, nbytes, recv_addr). Both collective
    over the group; an exception becomes LSHMOE_ERR_CALLBACK carrying its
    text.
    """

    def __init__(self, rank, nranks, alltoallv, allgather):
        self.rank = rank
        self.nranks = nranks
        self._py_a2av = alltoallv
        self._py_ag = allgather
        # The CFUNCTYPE objects must live as long as the context.
        self._c_a2av = _lib.USER_ALLTOALLV_FN(self._alltoallv)
        self._c_ag = _lib.USER_ALLGATHER_FN(self._allgather)
        self.struct = _lib.new_struct(_lib.UserComm)
        self.struct.reserved = 0
        self.struct.alltoallv = self._c_a2av
        self.struct.allgather = self._c_ag
        self.struct.user = None

    def _alltoallv(self, user, send, sb, sd, recv, rb, rd, stream, errbuf, errlen):
        try:
            n = self.nranks
            sbytes = [sb[i] for i in range(n)]
            rbytes = [rb[i] for i in range(n)]
            # The C transport always hands packed buffers; check, do not assume.
            for sizes, displs, name in ((sbytes, sd, "send"), (rbytes, rd, "recv")):
                off = 0
                for i in range(n):
                    if sizes[i] and displs[i] != off:
                        raise ValueError("%s displacements are not packed" % name)
                    off += sizes[i]
            self._py_a2av(send or 0, sbytes, recv or 0, rbytes)
            return 0
        except BaseException as e:  # noqa: B902 - must never unwind into C
            _write_error(errbuf, errlen, "%s: %s" % (type(e).__name__, e))
            return 1

    def _allgather(self, user, send, nbytes, recv, errbuf, errlen):
        try:
            self._py_ag(send or 0, nbytes, recv or 0)
            return 0
        except BaseException as e:  # noqa: B902
            _write_error(errbuf, errlen, "%s: %s" % (type(e).__name__, e))
            return 1


def _byte_tensor(torch, addr, n):
    if n == 0:
        return torch.empty(0, dtype=torch.uint8)
    return torch.frombuffer((ctypes.c_uint8 * n).from_address(addr), dtype=torch.uint8)


class TorchComm(UserComm):
    """A torch.distributed process group (CPU backend such as gloo) as the
    collectives of an lshmoe context. The group must outlive the context."""

    def __init__(self, group=None):
        import torch
        import torch.distributed as dist
        if not dist.is_available() or not dist.is_initialized():
            raise ValueError("torch.distributed is not initialised: call "
                             "torch.distributed.init_process_group() first")
        self.group = group
        self._torch, self._dist = torch, dist
        super().__init__(dist.get_rank(group), dist.get_world_size(group),
                         self._t_alltoallv, self._t_allgather)

    def _t_alltoallv(self, send, sbytes, recv, rbytes):
        t = self._torch
        out = _byte_tensor(t, recv, sum(rbytes))
        inp = _byte_tensor(t, send, sum(sbytes))
        self._dist.all_to_all_single(out, inp, rbytes, sbytes, group=self.group)

    def _t_allgather(self, send, nbytes, recv):
        t = self._torch
        whole = _byte_tensor(t, recv, nbytes * self.nranks)
        parts = list(whole.split(nbytes)) if nbytes else [whole] * self.nranks
        self._dist.all_gather(parts, _byte_tensor(t, send, nbytes), group=self.group)
