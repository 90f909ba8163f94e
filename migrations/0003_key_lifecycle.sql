-- Key lifecycle (docs/key-lifecycle.md): CMK rotation history, deletion and rotation
-- schedules, and the master-secret rewrap job's resumable progress.

-- How each CMK version came to exist (NULL for a key's first version), for ListKeyRotations.
ALTER TABLE kms_key_versions ADD COLUMN rotation_type TEXT CHECK (rotation_type IN ('AUTOMATIC', 'ON_DEMAND'));

-- The scheduled lifecycle job looks for keys whose deletion window or rotation period ended.
CREATE INDEX kms_keys_deletion_due ON kms_keys(deletion_at) WHERE state = 'PendingDeletion';
CREATE INDEX kms_keys_rotation_due ON kms_keys(next_rotation_at) WHERE rotation_enabled = 1;
CREATE INDEX kms_aliases_by_key ON kms_aliases(key_id);

-- One pass of the master-secret rewrap job over every object in R2. A pass moves objects to
-- target_version and, as it goes, counts the version every visited object ends on (census,
-- JSON {"<version>": n}), which is the evidence that an old secret is no longer used.
-- after_key is the resume point: the last R2 key the pass has finished with. A runner owns
-- the pass while lease_until is in the future, so the cron and an operator never overlap.
CREATE TABLE rewrap_passes (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  target_version  INTEGER NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled')),
  after_key       TEXT,
  scanned         INTEGER NOT NULL DEFAULT 0,
  rewrapped       INTEGER NOT NULL DEFAULT 0,
  current         INTEGER NOT NULL DEFAULT 0,
  conflicts       INTEGER NOT NULL DEFAULT 0,
  failed          INTEGER NOT NULL DEFAULT 0,
  census          TEXT NOT NULL DEFAULT '{}',
  lease_owner     TEXT,
  lease_until     INTEGER,
  started_by      TEXT NOT NULL,
  started_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  finished_at     INTEGER
);
-- At most one running pass.
CREATE UNIQUE INDEX rewrap_passes_one_running ON rewrap_passes(status) WHERE status = 'running';

-- Objects a pass could not move, and why (tampered metadata, destroyed key, missing bucket).
CREATE TABLE rewrap_failures (
  pass_id         INTEGER NOT NULL REFERENCES rewrap_passes(id),
  r2_key          TEXT NOT NULL,
  master_version  INTEGER,
  reason          TEXT NOT NULL,
  detail          TEXT NOT NULL,
  blocking        INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  PRIMARY KEY (pass_id, r2_key)
);
