-- Keys rooted in an external KMS (README, "Keys rooted in your KMS"; issue 15).
--
-- A CMK whose origin is EXTERNAL_KEY_STORE keeps no key material in D1: each of its versions
-- holds the external KMS's ciphertext of the 32-byte material (external GenerateDataKey at
-- creation), and the gateway asks that KMS to decrypt it, at most once per
-- EXTERNAL_KEY_CACHE_SECONDS per isolate. Revoking the external key therefore stops every
-- read and write under the CMK within that time.
ALTER TABLE kms_keys ADD COLUMN origin TEXT NOT NULL DEFAULT 'AWS_KMS' CHECK (origin IN ('AWS_KMS', 'EXTERNAL_KEY_STORE'));
ALTER TABLE kms_key_versions ADD COLUMN external_blob BLOB;

-- Where the external key lives and how to sign for it. Credentials are either sealed under
-- the master secret (AES-256-GCM, HKDF info "s3-sse-gw/v1/external-credentials", AAD = the
-- CMK id; secret_sealed + master_version), or named Worker secrets
-- (<credentials_secret>_ACCESS_KEY_ID / <credentials_secret>_SECRET_ACCESS_KEY). Never clear.
CREATE TABLE kms_external_keys (
  key_id              TEXT PRIMARY KEY REFERENCES kms_keys(id),
  endpoint            TEXT NOT NULL,
  region              TEXT NOT NULL,
  external_key_id     TEXT NOT NULL,
  access_key_id       TEXT,
  secret_sealed       BLOB,
  master_version      INTEGER,
  credentials_secret  TEXT,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  CHECK ((secret_sealed IS NOT NULL AND access_key_id IS NOT NULL AND master_version IS NOT NULL) OR credentials_secret IS NOT NULL)
);
