import type { Pass, RewrapJob } from "./job";

/**
 * Which master versions are still in use, and which configured ones can be deleted. Object
 * counts come from rewrap passes (R2 cannot be counted without listing it, and a pass
 * lists everything anyway); access-key and multipart-upload counts are live D1 queries.
 */
export interface VersionUse {
  version: number;
  configured: boolean;
  write: boolean;
  /** Objects on this version at the end of the last completed pass to the write version (null: no such pass yet). */
  objects: number | null;
  /** Of those, objects no secret can read any more (tampered, key destroyed): they do not block removal. */
  unreadableObjects: number | null;
  accessKeys: number;
  /** Credentials of external KMSs (README, "Keys rooted in your KMS") sealed under this version. */
  externalKmsCredentials: number;
  /** In-progress multipart uploads whose data key is wrapped under this version (null when that table does not exist). */
  multipartUploads: number | null;
  removable: boolean;
  reason: string;
}

export interface MasterStatus {
  writeVersion: number;
  configuredVersions: number[];
  versions: VersionUse[];
  /** The completed pass the object counts come from. */
  evidence: Pass | null;
  running: Pass | null;
}

export async function masterStatus(job: RewrapJob): Promise<MasterStatus> {
  const keyring = job.services.keys.keyring;
  const db = job.services.env.DB;
  const writeVersion = keyring.writeVersion;
  const running = await job.running();
  const lastCompleted = await job.latest("completed");
  const evidence = lastCompleted && lastCompleted.targetVersion === writeVersion ? lastCompleted : null;

  const { results: keyRows } = await db.prepare("SELECT master_version AS v, count(*) AS n FROM access_keys GROUP BY master_version").all<{ v: number; n: number }>();
  const accessKeys = new Map(keyRows.map((r) => [r.v, r.n]));
  const { results: externalRows } = await db
    .prepare("SELECT master_version AS v, count(*) AS n FROM kms_external_keys WHERE secret_sealed IS NOT NULL GROUP BY master_version")
    .all<{ v: number; n: number }>();
  const externalCredentials = new Map(externalRows.map((r) => [r.v, r.n]));
  const uploads = await multipartUploadsByVersion(db);

  const versions = new Set<number>([...keyring.versions(), ...accessKeys.keys(), ...externalCredentials.keys(), ...(uploads?.keys() ?? [])]);
  for (const v of Object.keys(evidence?.census ?? {})) if (/^\d+$/.test(v)) versions.add(Number(v));

  const uses: VersionUse[] = [...versions].sort((a, b) => a - b).map((version) => {
    const census = evidence?.census[String(version)];
    const objects = evidence ? (census?.objects ?? 0) : null;
    const unreadableObjects = evidence ? (census?.unreadable ?? 0) : null;
    const keys = accessKeys.get(version) ?? 0;
    const external = externalCredentials.get(version) ?? 0;
    const mpu = uploads ? (uploads.get(version) ?? 0) : null;
    let reason: string;
    if (version === writeVersion) reason = "new writes use this version";
    else if (!keyring.has(version)) reason = "not configured (already removed)";
    else if (!evidence) reason = `no completed rewrap pass to v${writeVersion} yet`;
    else if (objects! - unreadableObjects! > 0) reason = `${objects! - unreadableObjects!} readable object(s) still on this version`;
    else if (keys > 0) reason = `${keys} access key secret(s) still sealed under this version`;
    else if (external > 0) reason = `${external} external KMS credential(s) still sealed under this version`;
    else if (mpu === null) reason = "removable once in-progress multipart uploads have completed or expired (not countable here)";
    else if (mpu > 0) reason = `${mpu} in-progress multipart upload(s) still use this version`;
    else reason = "nothing uses this version: its secret can be deleted";
    const removable = keyring.has(version) && version !== writeVersion && evidence !== null && objects! - unreadableObjects! === 0 && keys === 0 && external === 0 && mpu === 0;
    return {
      version,
      configured: keyring.has(version),
      write: version === writeVersion,
      objects,
      unreadableObjects,
      accessKeys: keys,
      externalKmsCredentials: external,
      multipartUploads: mpu,
      removable,
      reason,
    };
  });
  return { writeVersion, configuredVersions: keyring.versions(), versions: uses, evidence, running };
}

/**
 * In-progress multipart uploads keep their data key wrapped in D1 (issue 4's table, owned
 * by the multipart module). No table means no uploads; a table without a master_version
 * column means the count is unknown, and removal is not declared safe.
 */
async function multipartUploadsByVersion(db: D1Database): Promise<Map<number, number> | null> {
  const table = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'multipart_uploads'").first<{ name: string }>();
  if (!table) return new Map();
  try {
    const { results } = await db.prepare("SELECT master_version AS v, count(*) AS n FROM multipart_uploads GROUP BY master_version").all<{ v: number; n: number }>();
    return new Map(results.map((r) => [r.v, r.n]));
  } catch {
    return null;
  }
}
