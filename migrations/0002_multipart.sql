-- Multipart uploads (docs/multipart.md). Part bodies are encrypted R2 objects under
-- "_mpu/<upload id>/"; these tables say which of them exist, which belong to an upload in
-- progress and which a completed object's manifest references.

-- One row per upload in progress. The data key is wrapped exactly as in an object's
-- envelope; nothing here is usable without the master secret and the CMK material.
-- state: 'active' accepts parts; 'completing' is held by one CompleteMultipartUpload
-- (completing_at, manifest_hash) so parts cannot change under it and a crashed complete
-- can be recognised afterwards. parts_version counts recorded parts (optimistic check).
CREATE TABLE multipart_uploads (
  upload_id           TEXT PRIMARY KEY,
  bucket              TEXT NOT NULL,
  object_key          TEXT NOT NULL,
  tenant_id           TEXT NOT NULL,
  initiator_id        TEXT NOT NULL,
  initiator_name      TEXT NOT NULL,
  state               TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'completing')),
  parts_version       INTEGER NOT NULL DEFAULT 0,
  mode                TEXT NOT NULL CHECK (mode IN ('aws:kms', 'AES256')),
  key_arn             TEXT NOT NULL,
  key_version         INTEGER NOT NULL,
  master_version      INTEGER NOT NULL,
  wrapped_key         BLOB NOT NULL,
  context             TEXT,
  bucket_key          INTEGER NOT NULL DEFAULT 0,
  http                TEXT NOT NULL,
  user_metadata       TEXT NOT NULL,
  checksum_algorithm  TEXT,
  checksum_type       TEXT CHECK (checksum_type IN ('COMPOSITE', 'FULL_OBJECT')),
  created_at          INTEGER NOT NULL,
  completing_at       INTEGER,
  manifest_hash       BLOB
);
CREATE INDEX multipart_uploads_by_key ON multipart_uploads(bucket, object_key, upload_id);
CREATE INDEX multipart_uploads_by_age ON multipart_uploads(created_at);

-- The current attempt of each part: R2 key "_mpu/<upload>/<part, 5 digits>/<attempt>".
-- facts: the part's ETag and checksum, sealed like an object's facts (they derive from
-- plaintext). salt: the part stream's salt (also in its stored header).
CREATE TABLE multipart_parts (
  upload_id    TEXT NOT NULL,
  part_number  INTEGER NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  attempt      TEXT NOT NULL,
  size         INTEGER NOT NULL,
  salt         BLOB NOT NULL,
  facts        BLOB NOT NULL,
  uploaded_at  INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part_number)
);

-- Completed objects whose manifest references part data under "_mpu/<upload_id>/".
-- The data is released once the object at (bucket, object_key) no longer carries this
-- manifest hash in its envelope (deleted, overwritten): see docs/multipart.md, "Clean-up".
CREATE TABLE multipart_objects (
  upload_id      TEXT PRIMARY KEY,
  bucket         TEXT NOT NULL,
  object_key     TEXT NOT NULL,
  manifest_hash  BLOB NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE INDEX multipart_objects_by_key ON multipart_objects(bucket, object_key);

-- Resume point of the scheduled sweep over "_mpu/" in R2 (one row per sweep name).
CREATE TABLE multipart_sweeps (
  name        TEXT PRIMARY KEY,
  cursor      TEXT,
  updated_at  INTEGER NOT NULL
);
