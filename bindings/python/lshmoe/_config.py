# SPDX-License-Identifier: Apache-2.0
"""lshmoe.Config: the fields of lshmoe_config_t, driven by one list.

Adding a C field means appending it to _lib.ConfigStruct and one line to
FIELDS; nothing else changes. A field left at None is unset, so the library
resolves it from its LSHMOE_* environment variable, then the default.
"""
from . import _lib

# (name, unset value, how a Python value becomes the C one, doc)
_CHOICES = {
    "reduce": {"pad": 1, "fold": 2},
    "compensation": {"none": 0, "residual": 1, "scaled": 2},
    # lshmoe_codec_mode_t, spelled as LSHMOE_CODEC spells them
    "codec": {"lsh": 0, "budget": 1, "native": 2, "fp8": 3, "int8": 4, "int4": 5,
              "int2": 6, "lsh-fp8": 7, "lsh-int8": 8, "lsh-int4": 9, "lsh-refine": 10,
              "lsh-refine-int8": 11, "lsh-refine-int4": 12, "int4e": 13,
              "lsh-refine-int4e": 14, "budget-rows": 15},
}


def _choice(field):
    table = _CHOICES[field]

    def conv(v):
        if isinstance(v, str):
            if v not in table:
                raise ValueError("Config.%s: %r is not one of %s" % (field, v, sorted(table)))
            return table[v]
        return _int(v)
    return conv


def _int(v):
    if isinstance(v, bool):
        return int(v)
    if not isinstance(v, int):
        raise TypeError("expected an int, got %s" % type(v).__name__)
    return v


def _float(v):
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise TypeError("expected a number, got %s" % type(v).__name__)
    return float(v)


def _str(v):
    if not isinstance(v, str):
        raise TypeError("expected a str, got %s" % type(v).__name__)
    return v.encode()


FIELDS = [
    ("compress", _lib.UNSET_INT, _int, "1 = compress float tokens, 0 = exact (LSHMOE_COMPRESS)"),
    ("seed", _lib.UNSET_U64, _int, "hash seed, equal on every rank (LSHMOE_SEED)"),
    ("num_hashes", _lib.UNSET_INT, _int, "cross-polytope functions L (LSHMOE_HASHES)"),
    ("cdim", _lib.UNSET_INT, _int, "cross-polytope dimension (LSHMOE_CDIM)"),
    ("reduce", _lib.UNSET_INT, _choice("reduce"), "'pad' or 'fold' (LSHMOE_REDUCE)"),
    ("reduce_dim", _lib.UNSET_INT, _int, "coordinates after folding (LSHMOE_REDUCE_DIM)"),
    ("rounds", _lib.UNSET_INT, _int, "rotation rounds (LSHMOE_ROUNDS)"),
    ("min_tokens", _lib.UNSET_INT, _int, "smaller segments travel raw (LSHMOE_MIN_TOKENS)"),
    ("min_ratio", _lib.UNSET_DOUBLE, _float, "worse ratios travel raw (LSHMOE_MIN_RATIO)"),
    ("compensation", _lib.UNSET_INT, _choice("compensation"),
     "'none', 'residual' (LSHMOE_COMPENSATION)"),
    ("residual_bits", _lib.UNSET_INT, _int, "0, 4 or 8 (LSHMOE_RESIDUAL_BITS)"),
    ("transport", None, _str, "transport name; None = from the communicator"),
    ("max_error", _lib.UNSET_DOUBLE, _float,
     "error budget, relative L2 over a segment (LSHMOE_MAX_ERROR)"),
    ("codec", _lib.UNSET_INT, _choice("codec"),
     "'budget', 'lsh', 'fp8', 'int4', ... (LSHMOE_CODEC)"),
]
_NAMES = [f[0] for f in FIELDS]


class Config:
    """Context configuration. Config(num_hashes=4, cdim=8, compress=True).

    Every keyword is a field of lshmoe_config_t (see FIELDS); unknown
    keywords and wrong types raise before any C call; range checks are the
    library's (at Context creation, LshmoeError naming the field).
    """

    __slots__ = ("_values",)

    def __init__(self, **fields):
        self._values = {}
        for k, v in fields.items():
            setattr(self, k, v)

    def __setattr__(self, name, value):
        if name == "_values":
            object.__setattr__(self, name, value)
            return
        if name not in _NAMES:
            raise AttributeError("Config has no field %r; fields: %s" % (name, ", ".join(_NAMES)))
        if value is not None:
            conv = FIELDS[_NAMES.index(name)][2]
            try:
                conv(value)
            except TypeError as e:
                raise TypeError("Config.%s: %s" % (name, e)) from None
        self._values[name] = value

    def __getattr__(self, name):
        if name in _NAMES:
            return self._values.get(name)
        raise AttributeError(name)

    def __repr__(self):
        return "Config(%s)" % ", ".join("%s=%r" % kv for kv in self._values.items()
                                        if kv[1] is not None)

    def to_c(self):
        """The lshmoe_config_t this configuration stands for."""
        s = _lib.new_struct(_lib.ConfigStruct)
        for name, unset, conv, _ in FIELDS:
            v = self._values.get(name)
            setattr(s, name, unset if v is None else conv(v))
        return s

    @classmethod
    def from_c(cls, s):
        """A Config with every field the C struct has set."""
        c = cls()
        for name, _, _, _ in FIELDS:
            v = getattr(s, name)
            c._values[name] = v.decode() if isinstance(v, bytes) else v
        return c
