"""What the local D1 and R2 state (wrangler's persistence directory) hold for a CMK rooted in
an external KMS, and one write: an object's custom metadata, as an attacker (or an older
gateway) with write access to R2 would change it without going through the worker.

python3 external_state.py <persist dir> dump <CMK id> [<r2 key>...]
  -> {"versions": {"<v>": "<hex of external_blob>"},
      "bucketKeys": [{"version", "bucket", "blob": hex, "createdAt"}],
      "objects": {"<r2 key>": {custom metadata}}}
python3 external_state.py <persist dir> set-meta <r2 key> <custom metadata JSON> -> {"updated": 1}
"""
import glob
import json
import os
import sqlite3
import sys

persist, command = sys.argv[1], sys.argv[2]


def databases(kind):
    return [p for p in glob.glob(os.path.join(persist, "v3", kind, "*", "*.sqlite")) if os.path.basename(p) != "metadata.sqlite"]


def tables(db):
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


if command == "dump":
    key_id, r2_keys = sys.argv[3], sys.argv[4:]
    out = {"versions": {}, "bucketKeys": [], "objects": {}}
    for path in databases("d1"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            if "external_bucket_keys" not in tables(db):
                continue
            for version, blob in db.execute("SELECT version, external_blob FROM kms_key_versions WHERE key_id = ?", (key_id,)):
                out["versions"][str(version)] = blob.hex() if blob else None
            for version, bucket, blob, created in db.execute(
                "SELECT version, bucket, external_blob, created_at FROM external_bucket_keys WHERE key_id = ? ORDER BY created_at", (key_id,)
            ):
                out["bucketKeys"].append({"version": version, "bucket": bucket, "blob": blob.hex(), "createdAt": created})
    for path in databases("r2"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            if "_mf_objects" not in tables(db):
                continue
            for key in r2_keys:
                row = db.execute("SELECT custom_metadata FROM _mf_objects WHERE key = ?", (key,)).fetchone()
                if row:
                    out["objects"][key] = json.loads(row[0])
    print(json.dumps(out))
elif command == "set-meta":
    key, meta = sys.argv[3], sys.argv[4]
    json.loads(meta)
    updated = 0
    for path in databases("r2"):
        with sqlite3.connect(path, timeout=10) as db:
            if "_mf_objects" not in tables(db):
                continue
            updated += db.execute("UPDATE _mf_objects SET custom_metadata = ? WHERE key = ?", (meta, key)).rowcount
    print(json.dumps({"updated": updated}))
else:
    sys.exit(f"unknown command {command}")
