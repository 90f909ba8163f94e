-- ListMultipartUploads reads one tenant's uploads of a bucket in (key, upload id) order,
-- from a marker, within a prefix's key range. With the tenant in the index that is a pure
-- range scan: every row read is returned (the LIMIT bounds the work), and leftovers of an
-- earlier same-named bucket of another tenant are never read.
CREATE INDEX multipart_uploads_by_tenant_key ON multipart_uploads(bucket, tenant_id, object_key, upload_id);
