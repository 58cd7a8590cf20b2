"""The safetensors format read and written with Python's standard library alone (no
safetensors package, no torch), for the tests' checks, the goldens and the benchmarks: one
copy of the layout (an 8-byte little-endian header length, a JSON header padded to 8 bytes,
then the tensors' bytes at their data_offsets)."""
import json
import struct


def read(path):
    """(header, payload): the JSON header, __metadata__ included, and the bytes after it."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def tensor_bytes(header, payload, name):
    s, e = header[name]["data_offsets"]
    return payload[s:e]


def names(header, optimizer=True):
    """The tensors' names in the header's order; without the optimizer's (optim.*) when asked."""
    return [k for k in header if k != "__metadata__" and (optimizer or not k.startswith("optim."))]


def floats(path, optimizer=True):
    """{name: tuple of floats} of an F32 file."""
    h, p = read(path)
    out = {}
    for k in names(h, optimizer):
        b = tensor_bytes(h, p, k)
        out[k] = struct.unpack("<%df" % (len(b) // 4), b)
    return out


def write(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes)} in the order to write them."""
    header, blobs, pos = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(data)]}
        blobs.append(data)
        pos += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
