-- Object tags (README, Design: "Object tags live in D1"). One row per key: the tag set of
-- the object version whose R2 etag is r2_etag (the etag of its stored ciphertext or
-- manifest, unchanged by a master-key rewrap). A row naming another etag is stale — the
-- object was replaced or deleted — and reads as no tags. uploaded (R2's upload time of
-- that version, ms) orders writes: a tag write for an older version never replaces the
-- row of a newer one.
CREATE TABLE object_tags (
  bucket     TEXT NOT NULL,
  object_key TEXT NOT NULL,
  r2_etag    TEXT NOT NULL,
  uploaded   INTEGER NOT NULL,
  tags       TEXT NOT NULL,
  PRIMARY KEY (bucket, object_key)
);

-- Set once any object in the bucket has had tags: until then GET/HEAD skip the tag lookup
-- (0 D1 queries for objects in buckets that never used tagging).
ALTER TABLE buckets ADD COLUMN has_object_tags INTEGER NOT NULL DEFAULT 0;

-- x-amz-tagging given at CreateMultipartUpload (JSON [{key, value}]), applied at Complete.
ALTER TABLE multipart_uploads ADD COLUMN tagging TEXT;
