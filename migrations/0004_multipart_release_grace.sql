-- Part data of a completed multipart object is released only after a grace period
-- (MULTIPART_RELEASE_GRACE_MINUTES, docs/multipart.md "Clean-up"), so a GET already
-- streaming a replaced or deleted version can finish. dead_since: when its manifest was
-- first seen not to be the object at its key (ms since the epoch); NULL while live.
ALTER TABLE multipart_objects ADD COLUMN dead_since INTEGER;
