#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the spec corpus in tests/vectors (run before fuzzing)."""
import base64
import hashlib
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent
vectors = root.parent / "tests" / "vectors"
corpus = root / "corpus"


def put(target: str, data: bytes) -> None:
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def load(name: str) -> dict:
    return json.loads((vectors / name).read_text())


for t in load("envelope.json")["tests"]:
    put("envelope_decode", t["envelope"].encode())
    # The self-contained file's header around the same envelope (SPEC.md §17).
    if t["result"] == "valid":
        env = base64.urlsafe_b64decode(t["envelope"] + "=" * (-len(t["envelope"]) % 4))
        put("container_parse", b"ISEC\x01" + len(env).to_bytes(2, "big") + env + b"body")
for name in ("frames.json", "multipart.json"):
    for t in load(name)["tests"]:
        ct = bytes.fromhex(t["ciphertext"])
        put("stream_decrypt", bytes([3, 1, 7, 200]) + ct[:8192])
        if "segment_table" in t:
            put("segment_table", bytes.fromhex(t["segment_table"]))
for t in load("ranges.json")["tests"]:
    a, b = t["range"]
    put("ranged_decrypt", (a % 65536).to_bytes(2, "little") + a.to_bytes(8, "little")[:7] + b.to_bytes(8, "little"))
for t in load("copy_decisions.json")["tests"]:
    r = t["request"]
    lines = [str(r["source_size"])] + [f"{k}={v}" for k, v in r["source_metadata"]]
    put("copy_decision", "\n".join(lines).encode())
for ctl in (0, 1, 86, 255):
    put("differential", bytes([ctl, 0, 100, 0, 1]))
put("checkpoint_restore", b"ISCK\x02" + bytes(60))
for ctl in (0, 1, 2, 3):
    put("gcm_stream", bytes([ctl, 5, 16, 200, 1]) + bytes(range(100)))
put("legacy_sidecar", b"H4sIAAAAAAAA/6tWKsnPS8lMS1WyUkouyixILVGqBQB+1bBiEwAAAA==")
print("seeded", sorted(p.name for p in corpus.iterdir()))
put("s3_open", b"1000\n\ncolor=blue")
put("s3_open", b"1000\nbytes 0-999/104857600\nisec-kid=k")
put("s3_open", b"28\n\nisec=n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==\nplaintext-size=0")
put("s3_open", b"1000\nH4sIAAAAAAAA/6tWKsnPS8lMS1WyUkouyixILVGqBQB+1bBiEwAAAA==\n")
