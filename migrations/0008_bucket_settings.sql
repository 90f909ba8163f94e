-- Bucket settings (README, "Bucket settings"): lifecycle rules, Block Public Access and
-- bucket tags, each stored as JSON in the bucket row like encryption, policy and CORS.
ALTER TABLE buckets ADD COLUMN lifecycle TEXT;
-- NULL: no Block Public Access configuration (GetPublicAccessBlock answers 404). Buckets
-- created before this migration keep none, as AWS left existing buckets alone in 2023;
-- new buckets get their tenant's default (below), all four settings on unless it says otherwise.
ALTER TABLE buckets ADD COLUMN public_access_block TEXT;
ALTER TABLE buckets ADD COLUMN tagging TEXT;

-- The tenant's Block Public Access default for new buckets (JSON of the four settings);
-- NULL: all four on, AWS's default since April 2023.
ALTER TABLE tenants ADD COLUMN public_access_block TEXT;

-- Resumable progress of the scheduled lifecycle job, one row per bucket with rules: the
-- current pass over the bucket's objects resumes after `after_key` (the last R2 key it
-- finished with; NULL: from the start);
-- pass_started_at is when that pass began (NULL: none running), last_pass_at when the last
-- one finished (a new pass starts once a pass interval has gone by).
CREATE TABLE lifecycle_progress (
  bucket           TEXT PRIMARY KEY,
  after_key        TEXT,
  pass_started_at  INTEGER,
  last_pass_at     INTEGER,
  updated_at       INTEGER NOT NULL
);
