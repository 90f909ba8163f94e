"""What the local D1 and R2 state (wrangler's persistence directory) hold for an upload id.

python3 local_state.py <persist dir> <upload id> -> {"uploads", "parts", "objects", "r2"}.
Read-only: opens the SQLite files the local runtime writes, so a test can see rows and
stored part objects directly rather than through the worker.
"""
import glob
import json
import os
import sqlite3
import sys

persist, upload_id = sys.argv[1:3]


def connect(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def databases(kind):
    return [p for p in glob.glob(os.path.join(persist, "v3", kind, "*", "*.sqlite")) if os.path.basename(p) != "metadata.sqlite"]


out = {"uploads": 0, "parts": 0, "objects": 0, "r2": 0}
for path in databases("d1"):
    with connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "multipart_uploads" not in tables:
            continue
        for table, field in (("multipart_uploads", "uploads"), ("multipart_parts", "parts"), ("multipart_objects", "objects")):
            out[field] += db.execute(f"SELECT COUNT(*) FROM {table} WHERE upload_id = ?", (upload_id,)).fetchone()[0]
for path in databases("r2"):
    with connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "_mf_objects" in tables:
            out["r2"] += db.execute("SELECT COUNT(*) FROM _mf_objects WHERE key LIKE ?", (f"_mpu/{upload_id}/%",)).fetchone()[0]
out["r2Tables"] = len(databases("r2"))
print(json.dumps(out))
