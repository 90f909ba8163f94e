-- Bucket keys for CMKs rooted in an external KMS (README, "Keys rooted in your KMS";
-- FORMAT.md §10; issue 15 item 3).
--
-- Objects under an external CMK wrap their data keys under a KEK derived from the master
-- secret and a 32-byte bucket key per (CMK, key version, bucket). The bucket key comes from
-- one external GenerateDataKey whose encryption context names the tenant, the bucket, the
-- CMK ARN and the version; only the external KMS's ciphertext of it is kept here, so a
-- bucket's objects need one external Decrypt per cache period and isolate, and D1 plus the
-- master secret cannot derive the KEK. The first row for a triple wins (INSERT OR IGNORE):
-- concurrent first writes end up with one bucket key.
--
-- The bucket is named, as everywhere in this schema (buckets.name is the key). A CMK
-- belongs to one tenant and is usable only in that tenant's buckets, so a bucket deleted and
-- re-created by another tenant can never use (or inherit) these rows; rows are removed
-- with the CMK's other material when it is destroyed (kms/lifecycle.ts).
CREATE TABLE external_bucket_keys (
  key_id         TEXT NOT NULL REFERENCES kms_keys(id),
  version        INTEGER NOT NULL,
  bucket         TEXT NOT NULL,
  external_blob  BLOB NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (key_id, version, bucket)
);

-- An upload created under an external CMK wraps its data key under the bucket key too:
-- its parts and its Complete must use that KEK (1), not the version's (0: every other
-- upload, and external-CMK uploads created before bucket keys).
ALTER TABLE multipart_uploads ADD COLUMN external_bucket_key INTEGER NOT NULL DEFAULT 0;
