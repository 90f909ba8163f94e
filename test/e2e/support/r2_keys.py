"""Keys the local R2 state (wrangler's persistence directory) holds under a prefix.

python3 r2_keys.py <persist dir> <prefix> -> {"keys": [...], "r2Tables": n}. Read-only, like
local_state.py: a test sees what R2 committed without going through the worker.
"""
import glob
import json
import os
import sqlite3
import sys

persist, prefix = sys.argv[1:3]
paths = [p for p in glob.glob(os.path.join(persist, "v3", "r2", "*", "*.sqlite")) if os.path.basename(p) != "metadata.sqlite"]
keys = []
for path in paths:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "_mf_objects" in tables:
            keys += [r[0] for r in db.execute("SELECT key FROM _mf_objects WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))]
print(json.dumps({"keys": sorted(keys), "r2Tables": len(paths)}))
