-- A retried CompleteMultipartUpload (docs/multipart.md, "Complete and its retries"): SDKs
-- repeat Complete when its response is lost, and must then get the same 200 answer, not
-- NoSuchUpload. So a completed upload leaves a record of its result for
-- MULTIPART_COMPLETION_RETENTION_HOURS (default 24); the cron job deletes it after that.

-- The result being written, sealed, while a complete holds the upload ('completing'): a
-- complete that dies after its manifest landed is finished from it by whoever settles it.
ALTER TABLE multipart_uploads ADD COLUMN completion BLOB;

-- One row per completed upload. result: {ETag, checksum, SHA-256 of the part list} sealed
-- like an object's facts under (tenant_id, master_version) — ETags derive from plaintext.
-- The SSE columns answer the retry's headers and its authorization (as the upload's did).
CREATE TABLE multipart_completions (
  upload_id       TEXT PRIMARY KEY,
  bucket          TEXT NOT NULL,
  object_key      TEXT NOT NULL,
  tenant_id       TEXT NOT NULL,
  mode            TEXT NOT NULL CHECK (mode IN ('aws:kms', 'AES256')),
  key_arn         TEXT NOT NULL,
  context         TEXT,
  bucket_key      INTEGER NOT NULL DEFAULT 0,
  master_version  INTEGER NOT NULL,
  checksum_type   TEXT CHECK (checksum_type IN ('COMPOSITE', 'FULL_OBJECT')),
  result          BLOB NOT NULL,
  completed_at    INTEGER NOT NULL
);
CREATE INDEX multipart_completions_by_age ON multipart_completions(completed_at);
CREATE INDEX multipart_completions_by_bucket ON multipart_completions(bucket);
