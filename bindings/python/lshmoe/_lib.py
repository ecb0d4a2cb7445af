# SPDX-License-Identifier: Apache-2.0
"""Loads liblshmoe and declares the C types and prototypes the binding uses.

The library is found, in order, at $LSHMOE_LIBRARY (a file), next to the
package in a build tree (build/bindings/python/lshmoe -> build/lshmoe/), in
the libdir recorded at install time (_libpath.py), then by the dynamic
loader's own search (liblshmoe.so.<major>). Structs mirror lshmoe.h field
for field; the C side accepts them at any older size, so a field appended
in C and not yet here simply stays unset.
"""
import ctypes
import os

from . import _libpath

c_int, c_int32, c_uint32, c_uint64 = ctypes.c_int, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64
c_size_t, c_double, c_char_p, c_void_p = ctypes.c_size_t, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p
P = ctypes.POINTER

MAGIC = 0x4C53484D
UNSET_INT = -(2 ** 31)
UNSET_U64 = 2 ** 64 - 1
UNSET_DOUBLE = -1.0

# lshmoe_dtype_t
DTYPE_FP32, DTYPE_FP16, DTYPE_BF16, DTYPE_BYTES = 0, 1, 2, 3
DTYPE_INT8, DTYPE_INT32, DTYPE_INT64, DTYPE_UINT8 = 4, 5, 6, 7
# lshmoe_comm_kind_t
COMM_AUTO, COMM_SELF, COMM_MPI, COMM_NCCL, COMM_USER = 0, 1, 2, 3, 4
ERR_PEER = -9
MOE_DROPPED = -1


def _candidates():
    env = os.environ.get("LSHMOE_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "..", "lshmoe", "liblshmoe.so")
    if _libpath.LIBDIR:
        yield os.path.join(_libpath.LIBDIR, "liblshmoe.so." + _libpath.SOVERSION)
    yield "liblshmoe.so." + _libpath.SOVERSION


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("lshmoe: cannot load the C library; tried " + "; ".join(tried) +
                      ". Set LSHMOE_LIBRARY to the path of liblshmoe.so.")


lib, library_path = _load()


class ConfigStruct(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("magic", c_uint32), ("version", c_uint32),
                ("compress", c_int32), ("seed", c_uint64), ("num_hashes", c_int32),
                ("cdim", c_int32), ("reduce", c_int32), ("reduce_dim", c_int32),
                ("rounds", c_int32), ("min_tokens", c_int32), ("min_ratio", c_double),
                ("compensation", c_int32), ("residual_bits", c_int32),
                ("transport", c_char_p), ("max_error", c_double), ("codec", c_int32)]


class CommDesc(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("magic", c_uint32), ("version", c_uint32),
                ("kind", c_int), ("native", c_void_p), ("rank", c_int), ("nranks", c_int)]


USER_ALLTOALLV_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, P(c_size_t), P(c_size_t),
                                     c_void_p, P(c_size_t), P(c_size_t), c_void_p,
                                     c_void_p, c_size_t)
USER_ALLGATHER_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, c_void_p,
                                     c_void_p, c_size_t)


class UserComm(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("magic", c_uint32), ("version", c_uint32),
                ("reserved", c_uint32), ("alltoallv", USER_ALLTOALLV_FN),
                ("allgather", USER_ALLGATHER_FN), ("user", c_void_p)]


class Stats(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("reserved", c_uint32), ("calls", c_uint64),
                ("bytes_in", c_uint64), ("bytes_wire", c_uint64), ("tokens", c_uint64),
                ("clusters", c_uint64), ("segments_compressed", c_uint64),
                ("segments_raw", c_uint64), ("tokens_nonfinite", c_uint64),
                ("time_hash_s", c_double), ("time_pack_s", c_double),
                ("time_exchange_s", c_double), ("time_unpack_s", c_double),
                ("time_total_s", c_double), ("calls_plain_policy", c_uint64),
                ("err_sq", c_double), ("err_ref", c_double), ("err_max", c_double),
                ("segments_unmeasured", c_uint64),
                ("segments_by_format", c_uint64 * 8), ("segments_grouped", c_uint64),
                ("segments_refined", c_uint64), ("calls_explored", c_uint64)]


class MoEConfig(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("magic", c_uint32), ("version", c_uint32),
                ("num_experts", c_int32), ("topk", c_int32), ("dtype", c_int),
                ("hidden", c_size_t), ("expert_rank", P(c_int32)),
                ("compensation", c_int32)]


class MoEBatch(ctypes.Structure):
    _fields_ = [("expert", c_int32), ("local", c_int32), ("rows", c_size_t),
                ("inp", c_void_p), ("out", c_void_p), ("cluster_size", P(c_uint32)),
                ("grad_out", c_void_p), ("grad_in", c_void_p)]


class MoEStats(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("reserved", c_uint32), ("tokens", c_uint64),
                ("slots", c_uint64), ("rows_sent", c_uint64), ("rows_received", c_uint64),
                ("slots_received", c_uint64), ("experts_compressed", c_uint64),
                ("experts_raw", c_uint64), ("bytes_remote_plain", c_uint64),
                ("bytes_remote_dispatch", c_uint64), ("centroid_rel_error", c_double),
                ("time_cluster_s", c_double), ("time_exchange_s", c_double),
                ("bytes_remote_combine_plain", c_uint64), ("bytes_remote_combine", c_uint64),
                ("combine_rel_error", c_double)]


def _proto(name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


get_version = _proto("lshmoe_get_version", c_int)
version_string = _proto("lshmoe_version_string", c_char_p)
status_name = _proto("lshmoe_status_name", c_char_p, c_int)
status_string = _proto("lshmoe_status_string", c_char_p, c_int)
last_error = _proto("lshmoe_last_error", c_char_p, c_void_p)
self_world_create = _proto("lshmoe_self_world_create", c_int, c_int, c_double, P(c_void_p))
self_world_destroy = _proto("lshmoe_self_world_destroy", None, c_void_p)
ctx_create_v = _proto("lshmoe_ctx_create_v", c_int, c_int, P(CommDesc), P(ConfigStruct),
                      P(c_void_p))
ctx_destroy = _proto("lshmoe_ctx_destroy", None, c_void_p)
ctx_get_config = _proto("lshmoe_ctx_get_config", c_int, c_void_p, P(ConfigStruct))
ctx_rank = _proto("lshmoe_ctx_rank", c_int, c_void_p)
ctx_nranks = _proto("lshmoe_ctx_nranks", c_int, c_void_p)
alltoallv = _proto("lshmoe_alltoallv", c_int, c_void_p, c_void_p, P(c_size_t), P(c_size_t),
                   c_void_p, P(c_size_t), P(c_size_t), c_int, c_size_t, c_void_p)
stats_get = _proto("lshmoe_stats_get", c_int, c_void_p, P(Stats))
stats_reset = _proto("lshmoe_stats_reset", None, c_void_p)
user_comm_init = _proto("lshmoe_user_comm_init", c_int, P(UserComm))

moe_create = _proto("lshmoe_moe_create", c_int, c_void_p, P(MoEConfig), P(c_void_p))
moe_destroy = _proto("lshmoe_moe_destroy", None, c_void_p)
moe_local_experts = _proto("lshmoe_moe_local_experts", c_int, c_void_p, P(c_int),
                           P(P(c_int32)))
moe_layout = _proto("lshmoe_moe_layout", c_int, c_void_p, c_size_t, c_void_p, c_void_p,
                    P(c_void_p))
moe_handle_destroy = _proto("lshmoe_moe_handle_destroy", None, c_void_p)
moe_dispatch = _proto("lshmoe_moe_dispatch", c_int, c_void_p, c_void_p, c_void_p, c_void_p)
moe_batches = _proto("lshmoe_moe_batches", c_int, c_void_p, P(P(MoEBatch)), P(c_int))
moe_combine = _proto("lshmoe_moe_combine", c_int, c_void_p, c_void_p, c_void_p, c_void_p)
moe_combine_backward = _proto("lshmoe_moe_combine_backward", c_int, c_void_p, c_void_p,
                              c_void_p, c_void_p, c_void_p)
moe_dispatch_backward = _proto("lshmoe_moe_dispatch_backward", c_int, c_void_p, c_void_p,
                               c_void_p, c_void_p)
moe_stats_get = _proto("lshmoe_moe_stats_get", c_int, c_void_p, P(MoEStats))


def new_struct(cls, **values):
    """A struct with size/magic/version filled as the C initializers do."""
    s = cls()
    s.size = ctypes.sizeof(cls)
    if any(f[0] == "magic" for f in cls._fields_):
        s.magic = MAGIC
        s.version = get_version()
    for k, v in values.items():
        setattr(s, k, v)
    return s
