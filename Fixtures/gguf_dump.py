"""The one GGUF dump the fixtures and the cross-checks share: a file as gguf-py's GGUFReader reads it.

Used by generate_quant.py (and through it generate_families.py, generate_gguf_extra.py) to record the converter's
files, and by crosscheck.py to compare ckpt's files with those records. Imports only gguf (no torch), so importing it
changes no global settings.
"""
import hashlib
import json
import math
from pathlib import Path

import gguf


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _json_value(v):
    """JSON-safe: inf/nan as strings (JSON has no literal for them)."""
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
    return v


def _array_bytes(data, field) -> bytes:
    """Bytes of an ARRAY field's elements as stored (after its u32 element type and u64 count)."""
    head = sum(int(p.nbytes) for p in field.parts[:5])  # key len, key, value type, element type, count
    total = sum(int(p.nbytes) for p in field.parts)
    return bytes(data[field.offset + head: field.offset + total])


def describe_gguf(path) -> dict:
    """Every KV (arrays of more than 64 items as length, SHA-256 and first five) and every tensor (name, shape, type,
    offset, byte count, data SHA-256), with the file's size and SHA-256 — as JSON would store it."""
    path = Path(path)
    r = gguf.GGUFReader(str(path))
    raw = path.read_bytes()
    meta = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        t = field.types[0]
        entry = {"key": key, "type": t.name}
        if t == gguf.GGUFValueType.ARRAY:
            entry["array_type"] = field.types[-1].name if len(field.types) > 1 else None
            n = int(field.parts[4][0])
            if n > 64:
                entry["value"] = {
                    "len": n,
                    "sha256": _sha256(_array_bytes(r.data, field)),
                    "first": [_json_value(x) for x in field.contents(slice(0, 5))],
                }
            else:
                entry["value"] = [_json_value(x) for x in field.contents()]
        else:
            entry["value"] = _json_value(field.contents())
        meta.append(entry)
    tensors = []
    for t in r.tensors:
        rel = int(t.field.parts[5][0])
        assert t.data_offset == r.data_offset + rel
        tensors.append({
            "name": t.name,
            "shape": [int(x) for x in t.shape.tolist()],
            "type": t.tensor_type.name,
            "offset": rel,
            "n_bytes": int(t.n_bytes),
            "sha256": _sha256(raw[t.data_offset: t.data_offset + t.n_bytes]),
        })
    d = {
        "file": {"size": len(raw), "sha256": _sha256(raw)},
        "version": int(r.fields["GGUF.version"].contents()),
        "tensor_count": len(r.tensors),
        "kv_count": len(meta),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": meta,
        "tensors": tensors,
    }
    return json.loads(json.dumps(d))
