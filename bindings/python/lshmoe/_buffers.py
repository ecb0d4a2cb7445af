# SPDX-License-Identifier: Apache-2.0
"""What the C calls need to know about an array: address, lshmoe dtype,
rows and elements per row. numpy arrays and torch tensors are accepted,
both optional imports; anything else is a TypeError before any C call."""
import sys

from . import _lib

_NUMPY_DTYPES = {"float32": _lib.DTYPE_FP32, "float16": _lib.DTYPE_FP16,
                 "int8": _lib.DTYPE_INT8, "int32": _lib.DTYPE_INT32,
                 "int64": _lib.DTYPE_INT64, "uint8": _lib.DTYPE_UINT8}
_TORCH_DTYPES = {"torch.float32": _lib.DTYPE_FP32, "torch.float16": _lib.DTYPE_FP16,
                 "torch.bfloat16": _lib.DTYPE_BF16, "torch.int8": _lib.DTYPE_INT8,
                 "torch.int32": _lib.DTYPE_INT32, "torch.int64": _lib.DTYPE_INT64,
                 "torch.uint8": _lib.DTYPE_UINT8}
FLOAT_DTYPES = (_lib.DTYPE_FP32, _lib.DTYPE_FP16, _lib.DTYPE_BF16)


class Buffer:
    """addr, dtype (lshmoe), rows, row_elems (elements of dtype per row),
    nbytes; `exact` says the dtype has no lshmoe codec (sent as bytes)."""
    __slots__ = ("addr", "dtype", "rows", "row_elems", "nbytes", "exact", "obj")


def _is_torch(x):
    t = sys.modules.get("torch")
    return t is not None and isinstance(x, t.Tensor)


def _is_numpy(x):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def describe(x, what, writable=False):
    """A Buffer for x (1-D: rows of one element; N-D: dim 0 is rows)."""
    b = Buffer()
    b.obj = x
    if _is_torch(x):
        if x.device.type != "cpu":
            raise ValueError("%s is on device %s: this version of lshmoe moves host "
                             "memory only (the CUDA codec is not built yet); it does not "
                             "copy to the host behind your back" % (what, x.device))
        if not x.is_contiguous():
            raise ValueError("%s must be contiguous (call .contiguous())" % what)
        if x.dim() == 0:
            raise ValueError("%s must have at least one dimension" % what)
        if writable and x.requires_grad and x.is_leaf:
            raise ValueError("%s is a leaf that requires grad; it cannot be written" % what)
        b.addr = x.data_ptr()
        elem = x.element_size()
        dtype = _TORCH_DTYPES.get(str(x.dtype))
        shape = tuple(x.shape)
    elif _is_numpy(x):
        if not x.flags["C_CONTIGUOUS"]:
            raise ValueError("%s must be C-contiguous" % what)
        if writable and not x.flags["WRITEABLE"]:
            raise ValueError("%s is read-only" % what)
        if x.ndim == 0:
            raise ValueError("%s must have at least one dimension" % what)
        b.addr = x.ctypes.data
        elem = x.itemsize
        dtype = _NUMPY_DTYPES.get(str(x.dtype))
        shape = x.shape
    else:
        raise TypeError("%s must be a numpy array or a torch tensor, not %s"
                        % (what, type(x).__name__))
    b.rows = shape[0]
    per_row = 1
    for d in shape[1:]:
        per_row *= d
    b.exact = dtype is None
    if dtype is None:
        # No lshmoe dtype (float64, bool, int16, complex...): bytes, exact.
        dtype, per_row = _lib.DTYPE_BYTES, per_row * elem
    b.dtype = dtype
    b.row_elems = per_row
    b.nbytes = b.rows * per_row * (1 if dtype == _lib.DTYPE_BYTES else elem)
    return b
