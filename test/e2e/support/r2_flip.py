"""Flips one bit of an object's stored bytes in the local R2 state (wrangler's persistence
directory), as an attacker with write access to R2 would: the e2e tests' way to corrupt
what R2 holds without going through the worker.

python3 r2_flip.py <persist dir> <r2 key> <offset from the end> -> {"flipped": true}
"""
import glob
import json
import os
import sqlite3
import sys

persist, key, from_end = sys.argv[1], sys.argv[2], int(sys.argv[3])
for path in glob.glob(os.path.join(persist, "v3", "r2", "*", "*.sqlite")):
    if os.path.basename(path) == "metadata.sqlite":
        continue
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "_mf_objects" not in tables:
            continue
        row = db.execute("SELECT blob_id FROM _mf_objects WHERE key = ?", (key,)).fetchone()
    if not row or not row[0]:
        continue
    blobs = glob.glob(os.path.join(persist, "v3", "r2", "*", "blobs", row[0]))
    if not blobs:
        continue
    with open(blobs[0], "r+b") as f:
        f.seek(-from_end, os.SEEK_END)
        byte = f.read(1)[0]
        f.seek(-from_end, os.SEEK_END)
        f.write(bytes([byte ^ 0x10]))
    print(json.dumps({"flipped": True}))
    sys.exit(0)
print(json.dumps({"flipped": False}))
