"""Reads PyTorch `.pth`/`.pt` state dicts without PyTorch and without running code from the file.

A `.pth` file is a pickle, and `torch.load` (without `weights_only=True`)
calls whatever the pickle names: `os.system` as readily as a tensor
constructor. This reader unpickles with a restricted `find_class` that knows
only what a state dict holds (`collections.OrderedDict`, the tensor
rebuilders `torch._utils._rebuild_tensor_v2`/`_rebuild_tensor`/
`_rebuild_parameter` and the typed storage classes such as
`torch.FloatStorage`), each replaced by a NumPy implementation. A pickle
that names anything else is refused before anything is called.

Both layouts of `torch.save` are read:

- the zip format (PyTorch >= 1.6): `ARCHIVE/data.pkl` with persistent ids
  `('storage', StorageType, key, location, numel)` whose bytes are the entry
  `ARCHIVE/data/<key>` (byte order in `ARCHIVE/byteorder`, little-endian
  when absent);
- the legacy format (`_use_new_zipfile_serialization=False`, and every file
  written before PyTorch 1.6 such as the 2017 SphereFace port's
  checkpoints): five pickles in a row (magic number, protocol version 1001,
  system info, the object with persistent ids `('storage', StorageType,
  key, location, numel, view_metadata)`, the sorted storage keys), then for
  each key an int64 element count and the raw little-endian bytes.

The format of PyTorch before 0.1.10 (a tar archive) is refused with a clear
error. Layouts follow pytorch/pytorch `torch/serialization.py`
(`_save`, `_legacy_save`, `_load`, `_legacy_load`).
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "BFloat16Storage": "bfloat16",
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        dtype = STORAGE_DTYPES[name]
        self.dtype = None if dtype == "bfloat16" else np.dtype(dtype)
        self.itemsize = 2 if dtype == "bfloat16" else self.dtype.itemsize


class _Storage:
    """A storage whose bytes are read once the whole pickle is parsed."""

    def __init__(self, storage_type, key, numel):
        self.type = storage_type
        self.key = str(key)
        self.numel = numel
        self.data = None  # a 1-D NumPy array once read

    def set_bytes(self, raw, byteorder, where):
        expected = self.numel * self.type.itemsize if self.numel is not None else len(raw)
        if len(raw) < expected:
            raise ValueError(
                f"{where}: storage {self.key} holds {len(raw)} bytes, but {expected} are needed: "
                "the file is truncated or corrupt."
            )
        raw = raw[:expected]
        if self.type.dtype is None:  # bfloat16: the upper half of a float32
            halves = np.frombuffer(raw, dtype=np.dtype("uint16").newbyteorder(byteorder))
            self.data = (halves.astype(np.uint32) << 16).view(np.float32)
        else:
            self.data = np.frombuffer(raw, dtype=self.type.dtype.newbyteorder(byteorder)).astype(self.type.dtype)


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def materialize(self, where):
        data = self.storage.data
        if data is None:
            raise ValueError(f"{where}: the tensor data of storage {self.storage.key} is missing.")
        if not self.size:
            if self.offset >= data.size:
                raise ValueError(f"{where}: storage {self.storage.key} is shorter than its tensors: corrupt file.")
            return np.array(data[self.offset])
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if all(self.size) else -1
        if last >= data.size or self.offset < 0 or any(s < 0 for s in self.stride):
            raise ValueError(f"{where}: storage {self.storage.key} is shorter than its tensors: corrupt file.")
        if not all(self.size):
            return np.zeros(self.size, dtype=data.dtype)
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=[s * data.itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor was rebuilt from something that is not a storage")
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Knows only containers, tensors and storages; everything else is refused."""

    SAFE = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, where, legacy):
        super().__init__(file, encoding="latin1")
        self.where = where
        self.legacy = legacy
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in self.SAFE:
            return self.SAFE[(module, name)]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise RefusedGlobal(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type, key, int(numel) if numel is not None else None)
        return self.storages[key]


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module, name):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


def _unpickle(file, where, legacy=False):
    unpickler = _RestrictedUnpickler(file, where, legacy)
    try:
        obj = unpickler.load()
    except RefusedGlobal as error:
        hint = ""
        if error.module not in ("builtins", "os", "posix", "nt", "subprocess", "__builtin__", "sys"):
            hint = (
                " If it is a whole model saved with torch.save(model), save its "
                "model.state_dict() instead."
            )
        raise ValueError(
            f"{where}: refusing to load: the pickle names {error.module}.{error.name}, which is not a tensor "
            "or a container. Unpickling runs what a pickle names, so kerasface reads only state dicts "
            f"(tensors in dicts and lists).{hint}"
        ) from None
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, IndexError, KeyError) as error:
        raise ValueError(f"{where}: not a readable PyTorch pickle (truncated or corrupt): {error}") from None
    return obj, unpickler.storages


def _materialize(obj, where):
    if isinstance(obj, _LazyTensor):
        return obj.materialize(where)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialize(v, where)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, where) for v in obj)
    return obj


def _read_zip(path):
    where = str(path)
    try:
        archive = zipfile.ZipFile(path)
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{where}: not a readable PyTorch zip checkpoint (truncated or corrupt): {error}") from None
    with archive:
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{where}: a zip file without one data.pkl is not a PyTorch checkpoint.")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "<"
        if f"{prefix}byteorder" in names:
            byteorder = "<" if archive.read(f"{prefix}byteorder").strip() == b"little" else ">"
        try:
            raw_pickle = archive.read(pickles[0])
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ValueError(f"{where}: the checkpoint is truncated or corrupt: {error}") from None
        obj, storages = _unpickle(io.BytesIO(raw_pickle), where)
        for key, storage in storages.items():
            entry = f"{prefix}data/{key}"
            if entry not in names:
                raise ValueError(f"{where}: the data of storage {key} is missing from the archive.")
            try:
                storage.set_bytes(archive.read(entry), byteorder, where)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise ValueError(f"{where}: the checkpoint is truncated or corrupt: {error}") from None
    return _materialize(obj, where)


def _read_legacy(path):
    where = str(path)
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)
    header = []
    for _ in range(3):
        value, storages = _unpickle(stream, where)
        header.append(value)
    if header[0] != LEGACY_MAGIC:
        raise ValueError(f"{where}: a pickle, but not a PyTorch checkpoint (no torch.save magic number).")
    if header[1] != LEGACY_PROTOCOL:
        raise ValueError(f"{where}: unsupported PyTorch legacy protocol {header[1]!r} (expected {LEGACY_PROTOCOL}).")
    little = not isinstance(header[2], dict) or header[2].get("little_endian", True)
    obj, storages = _unpickle(stream, where, legacy=True)
    keys, _ = _unpickle(stream, where)
    if not isinstance(keys, list):
        raise ValueError(f"{where}: corrupt legacy checkpoint (no list of storage keys).")
    order = "<" if little else ">"
    for key in keys:
        key = str(key)
        if key not in storages:
            raise ValueError(f"{where}: corrupt legacy checkpoint (unknown storage {key}).")
        storage = storages[key]
        head = stream.read(8)
        if len(head) < 8:
            raise ValueError(f"{where}: the checkpoint is truncated (storage {key} is missing).")
        (numel,) = struct.unpack(order + "q", head)
        if storage.numel is not None and numel != storage.numel:
            raise ValueError(f"{where}: corrupt legacy checkpoint (storage {key} has {numel} elements, "
                             f"{storage.numel} expected).")
        storage.numel = numel
        nbytes = numel * storage.type.itemsize
        storage.set_bytes(stream.read(nbytes), order, where)
    return _materialize(obj, where)


def read_state_dict(path):
    """The tensors of a `.pth`/`.pt` file as an ordered `{name: np.ndarray}`.

    Accepts a bare state dict or a checkpoint dict holding one under
    `"state_dict"`, `"model"` or `"model_state_dict"`; a `module.` prefix
    (`nn.DataParallel`) is removed.

    Raises:
        ValueError: for a file that is not a PyTorch checkpoint, is
            truncated, names anything but tensors and containers, or holds
            no state dict.
    """
    where = str(path)
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04"):
        obj = _read_zip(path)
    elif len(head) >= 262 and head[257:262] == b"ustar":
        raise ValueError(
            f"{where}: a tar-format PyTorch checkpoint (PyTorch < 0.1.10) is not supported; load it with that "
            "PyTorch and save its state_dict() again."
        )
    elif head[:1] == b"\x80":
        obj = _read_legacy(path)
    else:
        raise ValueError(f"{where}: not a PyTorch checkpoint (neither the zip nor the legacy pickle format).")
    return _state_dict_of(obj, where)


def _state_dict_of(obj, where):
    if isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict", "net", "backbone"):
            if isinstance(obj.get(key), dict):
                return _state_dict_of(obj[key], where)
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{where}: holds no state dict (a dict of tensor names to tensors). Received: {type(obj).__name__}")
    state = collections.OrderedDict()
    for key, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{where}: the state dict entry {key!r} is not a tensor. Received: {type(value).__name__}")
        name = str(key)
        state[name[len("module.") :] if name.startswith("module.") else name] = value
    return state
