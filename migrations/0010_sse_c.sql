-- SSE-C (README, "SSE-C").
-- The bucket's blocked encryption types (PutBucketEncryption BlockedEncryptionTypes, JSON
-- array; NULL: none). Buckets created before this migration keep none, as AWS left
-- existing buckets that used SSE-C alone; new buckets block SSE-C (src/store/buckets.ts).
ALTER TABLE buckets ADD COLUMN blocked_encryption_types TEXT;

-- An SSE-C multipart upload (JSON: KEK salt, key verifier, and the upload's MAC key sealed
-- under the master secret so Complete needs no customer key; never the key or its MD5).
-- NULL for uploads of the other modes.
ALTER TABLE multipart_uploads ADD COLUMN sse_c TEXT;
