-- Control plane: identities, buckets and the KMS key registry.
-- Object bodies and their crypto envelopes live in R2; nothing here is usable without
-- the master secret (a Worker secret that never touches D1).

CREATE TABLE tenants (
  id          TEXT PRIMARY KEY CHECK (length(id) = 32),   -- OBS-style 32-character domain id
  name        TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
);

CREATE TABLE users (
  id          TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL REFERENCES tenants(id),
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('tenant_admin', 'member')),
  created_at  INTEGER NOT NULL,
  UNIQUE (tenant_id, name)
);

-- Secret access keys are sealed with AES-GCM under a key derived from the master
-- secret of version master_version (AAD = access key id).
CREATE TABLE access_keys (
  access_key_id   TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users(id),
  secret_sealed   TEXT NOT NULL,
  master_version  INTEGER NOT NULL,
  status          TEXT NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Inactive')),
  created_at      INTEGER NOT NULL
);
CREATE INDEX access_keys_by_user ON access_keys(user_id);

-- S3 buckets are logical: owned by a tenant, their objects stored under "<name>/" in the
-- one R2 bucket binding. Configuration documents are stored as given (JSON).
CREATE TABLE buckets (
  name        TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL REFERENCES tenants(id),
  region      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  encryption  TEXT,
  policy      TEXT,
  cors        TEXT
);
CREATE INDEX buckets_by_tenant ON buckets(tenant_id);

-- Customer master keys. kind: 'customer' (created through the KMS API), 'default' (the
-- tenant's default SSE-KMS key for a region, created on first use), 'service' (the
-- service-owned per-tenant key behind SSE-S3, never shown to clients).
CREATE TABLE kms_keys (
  id                    TEXT PRIMARY KEY,
  tenant_id             TEXT NOT NULL REFERENCES tenants(id),
  region                TEXT NOT NULL,
  kind                  TEXT NOT NULL CHECK (kind IN ('customer', 'default', 'service')),
  state                 TEXT NOT NULL CHECK (state IN ('Enabled', 'Disabled', 'PendingDeletion', 'Destroyed')),
  description           TEXT NOT NULL DEFAULT '',
  current_version       INTEGER NOT NULL DEFAULT 1,
  rotation_enabled      INTEGER NOT NULL DEFAULT 0,
  rotation_period_days  INTEGER,
  next_rotation_at      INTEGER,
  deletion_at           INTEGER,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL
);
-- At most one default and one service key per tenant and region: concurrent first
-- uploads race on this index and all end up with the same key.
CREATE UNIQUE INDEX kms_keys_one_per_kind ON kms_keys(tenant_id, region, kind)
  WHERE kind IN ('default', 'service');
CREATE INDEX kms_keys_by_tenant ON kms_keys(tenant_id, region);

-- Per key version: 32 random bytes that are HKDF salt next to the master secret when
-- deriving the key-encryption key. Neither half alone derives anything; deleting the
-- material destroys the key version (crypto-shredding).
CREATE TABLE kms_key_versions (
  key_id      TEXT NOT NULL REFERENCES kms_keys(id),
  version     INTEGER NOT NULL,
  material    BLOB,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (key_id, version)
);

-- KMS aliases ("alias/<name>"), usable wherever a key id is accepted.
CREATE TABLE kms_aliases (
  tenant_id   TEXT NOT NULL REFERENCES tenants(id),
  region      TEXT NOT NULL,
  name        TEXT NOT NULL,
  key_id      TEXT NOT NULL REFERENCES kms_keys(id),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, region, name)
);
