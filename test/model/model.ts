/**
 * The reference model of the S3 surface that test/model/s3-model.test.ts checks the worker
 * against: plain data (a Map per bucket) and one small function per operation that says
 * what the worker must answer and which rule says so. This file IS the spec the model run
 * enforces — it uses nothing from src/ and no I/O.
 *
 * Rules, in the order every write/read is decided (docs/testing.md "Model-based test"):
 *  - policy:  the bucket-owning tenant passes unless a bucket policy Deny matches; anyone
 *             else needs a policy Allow; bucket configuration is owner-tenant only.
 *  - then the tenant/role rules of the rule table (README "Who may do what"), which can
 *    only refuse: KMS write, KMS read, KMS copy source, KMS overwrite, KMS delete, KMS
 *    upload, KMS default.
 *  - SSE-C (customer keys): open to every role; a bucket may block SSE-C writes (new
 *    buckets do); reading an SSE-C object needs its key (400 without, 403 with another),
 *    and a key sent for any other object is 400.
 */
import { Crc64Nvme } from "@aws-sdk/crc64-nvme";

export type Tenant = "A" | "B";
export type PrincipalName = "adminA" | "memberA" | "adminB" | "memberB" | "anonymous";
export const PRINCIPAL_NAMES: readonly PrincipalName[] = ["adminA", "memberA", "adminB", "memberB", "anonymous"];
const TENANT_OF: Record<PrincipalName, Tenant | null> = { adminA: "A", memberA: "A", adminB: "B", memberB: "B", anonymous: null };
const IS_ADMIN: Record<PrincipalName, boolean> = { adminA: true, memberA: false, adminB: true, memberB: false, anonymous: false };

/** A bucket default or upload mode. */
export type Mode = "AES256" | "aws:kms";
/** How an object is stored: a Mode, or SSE-C (the model's customer key). */
export type StoredMode = Mode | "SSE-C";
/** What a write asks for: an SSE header (or form field) value, SSE-C headers, or nothing (the bucket default applies). */
export type SseAsk = StoredMode | null;
/** The SSE-C key a read sends: none, the object's, or another. */
export type KeyAsk = "none" | "right" | "wrong";

export type PolicyTemplate = "none" | "allowAll" | "obsDenyUnencrypted" | "denyDelete" | "readOnly";
export const POLICY_TEMPLATES: readonly PolicyTemplate[] = ["none", "allowAll", "obsDenyUnencrypted", "denyDelete", "readOnly"];

export interface StoredObject {
  bytes: Uint8Array;
  mode: StoredMode;
  /** As the write answered it (learned, then every read must echo it). */
  etag: string;
}

export interface BucketModel {
  name: string;
  owner: Tenant;
  defaultEncryption: Mode | null;
  /** BlockedEncryptionTypes SSE-C (new buckets: true). */
  sseCBlocked: boolean;
  policy: PolicyTemplate;
  objects: Map<string, StoredObject>;
}

export interface UploadModel {
  id: string;
  bucket: number;
  key: string;
  mode: Mode;
  parts: Map<number, { bytes: Uint8Array; etag: string }>;
  state: "active" | "completed" | "aborted";
  /** Once completed: the part list it was completed with and the ETag it answered. */
  completed?: { parts: number[]; etag: string };
}

export interface Model {
  buckets: BucketModel[];
  uploads: UploadModel[];
}

/** A predicted answer: HTTP status, S3 error code (null on success or a HEAD), and the rule that decides it. */
export interface Prediction {
  status: number;
  code: string | null;
  rule: string;
}

const ok = (status: number, rule: string): Prediction => ({ status, code: null, rule });
const err = (status: number, code: string, rule: string): Prediction => ({ status, code, rule });
const denied = (rule: string): Prediction => err(403, "AccessDenied", rule);

// ---- who is asking ---------------------------------------------------------------------

/** OA / OM: admin / member of the bucket-owning tenant; X: another tenant; N: anonymous. */
export type Role = "OA" | "OM" | "X" | "N";

export function roleOf(p: PrincipalName, b: BucketModel): Role {
  const t = TENANT_OF[p];
  if (t === null) return "N";
  if (t !== b.owner) return "X";
  return IS_ADMIN[p] ? "OA" : "OM";
}

const inOwningTenant = (r: Role) => r === "OA" || r === "OM";

// ---- bucket policy: the four templates, evaluated by hand ---------------------------------

export type Action = "s3:GetObject" | "s3:PutObject" | "s3:DeleteObject" | "s3:ListBucket" | "s3:AbortMultipartUpload" | "s3:ListMultipartUploadParts" | "s3:PutBucketPolicy";

/**
 * Effect of a template on (action, s3:x-amz-server-side-encryption condition key). Every
 * template's Principal is "*" (anonymous included) and its Resource the bucket and bucket/*.
 */
function policyEffect(t: PolicyTemplate, action: Action, sseKey: SseAsk): "Allow" | "Deny" | null {
  switch (t) {
    case "none":
      return null;
    case "allowAll":
      return "Allow";
    case "readOnly":
      return action === "s3:GetObject" || action === "s3:ListBucket" ? "Allow" : null;
    case "denyDelete":
      return action === "s3:DeleteObject" ? "Deny" : null;
    case "obsDenyUnencrypted":
      // StringNotEquals on an absent key is true: no header at all is denied too (AWS).
      return action === "s3:PutObject" && sseKey !== "aws:kms" ? "Deny" : null;
  }
}

/** Rule "policy": owner tenant passes unless denied; others need an Allow. */
export function policyAllows(b: BucketModel, p: PrincipalName, action: Action, sseKey: SseAsk = null): boolean {
  const effect = policyEffect(b.policy, action, sseKey);
  if (effect === "Deny") return false;
  return inOwningTenant(roleOf(p, b)) || effect === "Allow";
}

/** The mode a write stores: its header, else the bucket default, else SSE-S3. */
export const writeMode = (b: BucketModel, ask: SseAsk): StoredMode => ask ?? b.defaultEncryption ?? "AES256";

// ---- the rule table ------------------------------------------------------------------------

/** KMS write (PUT, POST, Copy target, CreateMultipartUpload): OA only. */
const kmsWriteRefused = (r: Role, mode: StoredMode) => mode === "aws:kms" && r !== "OA";
/** GET/HEAD of a KMS object, KMS copy source: OA only. */
const kmsReadRefused = (r: Role, obj: StoredObject | undefined) => obj?.mode === "aws:kms" && r !== "OA";
/** Overwrite or delete of a KMS object: owning tenant only. */
const kmsReplaceRefused = (r: Role, obj: StoredObject | undefined) => obj?.mode === "aws:kms" && !inOwningTenant(r);

// ---- object operations -----------------------------------------------------------------------

/** PutObject (and POST Object: same rules, form field instead of header, 204 instead of 200). */
export function predictPut(b: BucketModel, p: PrincipalName, key: string, ask: SseAsk, success = 200): Prediction {
  const r = roleOf(p, b);
  if (!policyAllows(b, p, "s3:PutObject", ask)) return denied("policy: s3:PutObject");
  if (ask === "SSE-C" && b.sseCBlocked) return denied("rule: the bucket blocks SSE-C writes");
  if (kmsWriteRefused(r, writeMode(b, ask))) return denied("rule: KMS write needs OA");
  if (kmsReplaceRefused(r, b.objects.get(key))) return denied("rule: overwrite of a KMS object needs the owning tenant");
  return ok(success, "write stored");
}

/** GetObject / HeadObject; a range outside the object is 416 InvalidRange. */
export function predictGet(b: BucketModel, p: PrincipalName, key: string, range: { first: number; last: number } | null, customerKey: KeyAsk = "none"): Prediction {
  const r = roleOf(p, b);
  if (!policyAllows(b, p, "s3:GetObject")) return denied("policy: s3:GetObject");
  const obj = b.objects.get(key);
  if (!obj) {
    // S3: a missing key is 404 only to whoever may list the bucket.
    return policyAllows(b, p, "s3:ListBucket") ? err(404, "NoSuchKey", "missing key, ListBucket allowed") : denied("missing key, ListBucket not allowed");
  }
  if (kmsReadRefused(r, obj)) return denied("rule: KMS read needs OA");
  if (obj.mode === "SSE-C") {
    if (customerKey === "none") return err(400, "InvalidRequest", "SSE-C: reading needs the key");
    if (customerKey === "wrong") return denied("SSE-C: another key does not verify");
  } else if (customerKey !== "none") {
    return err(400, "InvalidRequest", "SSE-C: a key for an object that is not SSE-C");
  }
  if (range && range.first >= obj.bytes.byteLength) return err(416, "InvalidRange", "range starts past the end");
  return ok(range ? 206 : 200, range ? "range read" : "read");
}

/**
 * The checksum headers of a successful GET/HEAD: none unless x-amz-checksum-mode: ENABLED
 * on a whole-object request; then the object's checksum. The model's clients never send a
 * checksum, so every object has the one S3 gives such objects — single PUT, POST, copy or
 * multipart upload created without an algorithm alike: CRC64NVME of its bytes, FULL_OBJECT.
 */
export async function expectedChecksumHeaders(obj: StoredObject, checksumMode: boolean, whole: boolean): Promise<Record<string, string | null>> {
  if (!checksumMode || !whole) return { "x-amz-checksum-crc64nvme": null, "x-amz-checksum-type": null };
  const crc = new Crc64Nvme();
  crc.update(obj.bytes);
  return { "x-amz-checksum-crc64nvme": btoa(String.fromCharCode(...(await crc.digest()))), "x-amz-checksum-type": "FULL_OBJECT" };
}

/** The bytes a successful (range) GET returns. */
export function readBytes(obj: StoredObject, range: { first: number; last: number } | null): Uint8Array {
  return range ? obj.bytes.slice(range.first, Math.min(range.last, obj.bytes.byteLength - 1) + 1) : obj.bytes;
}

export function predictDelete(b: BucketModel, p: PrincipalName, key: string): Prediction {
  if (!policyAllows(b, p, "s3:DeleteObject")) return denied("policy: s3:DeleteObject");
  if (kmsReplaceRefused(roleOf(p, b), b.objects.get(key))) return denied("rule: delete of a KMS object needs the owning tenant");
  return ok(204, b.objects.has(key) ? "deleted" : "delete of a missing key");
}

/** DeleteObjects: 200, and per key either Deleted or Error AccessDenied (the object stays). */
export function predictDeleteObjects(b: BucketModel, p: PrincipalName, keys: readonly string[]): { deleted: string[]; refused: Array<{ key: string; rule: string }> } {
  const deleted: string[] = [];
  const refused: Array<{ key: string; rule: string }> = [];
  for (const key of keys) {
    if (!policyAllows(b, p, "s3:DeleteObject")) refused.push({ key, rule: "policy: s3:DeleteObject" });
    else if (kmsReplaceRefused(roleOf(p, b), b.objects.get(key))) refused.push({ key, rule: "rule: KMS key in another tenant's batch" });
    else deleted.push(key);
  }
  return { deleted, refused };
}

/** ListObjectsV2 with a prefix: the keys in UTF-8 byte order. */
export function predictList(b: BucketModel, p: PrincipalName, prefix: string): { prediction: Prediction; keys: string[] } {
  if (!policyAllows(b, p, "s3:ListBucket")) return { prediction: denied("policy: s3:ListBucket"), keys: [] };
  const keys = [...b.objects.keys()].filter((k) => k.startsWith(prefix)).sort(byUtf8);
  return { prediction: ok(200, "listed"), keys };
}

/** Rule "listing ETags": another tenant or anonymous never sees a KMS object's stored ETag. */
export function listEtagIsOpaque(b: BucketModel, p: PrincipalName, obj: StoredObject): boolean {
  return obj.mode === "aws:kms" && !inOwningTenant(roleOf(p, b));
}

export interface CopyRequest {
  source: BucketModel;
  sourceKey: string;
  target: BucketModel;
  key: string;
  directive: "COPY" | "REPLACE";
  ask: SseAsk;
  /** The request sends the model's key in x-amz-copy-source-server-side-encryption-customer-*. */
  sourceCustomerKey?: boolean;
}

export function predictCopy(p: PrincipalName, c: CopyRequest): Prediction {
  const r = roleOf(p, c.target);
  if (!policyAllows(c.target, p, "s3:PutObject", c.ask)) return denied("policy: s3:PutObject on the target");
  if (!policyAllows(c.source, p, "s3:GetObject")) return denied("policy: s3:GetObject on the source");
  if (c.ask === "SSE-C" && c.target.sseCBlocked) return denied("rule: the target bucket blocks SSE-C writes");
  if (kmsWriteRefused(r, writeMode(c.target, c.ask))) return denied("rule: KMS write (copy target) needs OA");
  if (c.source === c.target && c.sourceKey === c.key && c.directive === "COPY" && c.ask === null) {
    return err(400, "InvalidRequest", "S3: copy onto itself changing nothing");
  }
  if (kmsReplaceRefused(r, c.target.objects.get(c.key))) return denied("rule: overwrite of a KMS object (copy target) needs the owning tenant");
  const src = c.source.objects.get(c.sourceKey);
  if (!src) return err(404, "NoSuchKey", "copy source missing");
  if (kmsReadRefused(roleOf(p, c.source), src)) return denied("rule: KMS copy source needs OA");
  if (src.mode === "SSE-C" && !c.sourceCustomerKey) return err(400, "InvalidRequest", "SSE-C: a copy source needs its key");
  if (src.mode !== "SSE-C" && c.sourceCustomerKey) return err(400, "InvalidRequest", "SSE-C: a copy-source key for a source that is not SSE-C");
  return ok(200, "copied");
}

// ---- multipart ---------------------------------------------------------------------------------

export const MIN_PART_BYTES = 5 * 1024 * 1024;

export function predictCreateUpload(b: BucketModel, p: PrincipalName, ask: SseAsk): Prediction {
  if (!policyAllows(b, p, "s3:PutObject", ask)) return denied("policy: s3:PutObject");
  if (kmsWriteRefused(roleOf(p, b), writeMode(b, ask))) return denied("rule: KMS upload creation needs OA");
  return ok(200, "upload created");
}

/**
 * UploadPart and Complete are s3:PutObject; the policy sees the upload's own encryption as
 * the SSE condition key (they carry no SSE header), and nothing for an upload that is gone.
 */
function uploadPolicyKey(u: UploadModel, known: boolean): SseAsk {
  return known ? u.mode : null;
}

export function predictUploadPart(b: BucketModel, p: PrincipalName, u: UploadModel): Prediction {
  const active = u.state === "active";
  if (!policyAllows(b, p, "s3:PutObject", uploadPolicyKey(u, active))) return denied("policy: s3:PutObject (UploadPart)");
  if (!active) return err(404, "NoSuchUpload", `upload ${u.state}`);
  if (u.mode === "aws:kms" && roleOf(p, b) !== "OA") return denied("rule: UploadPart to a KMS upload needs OA");
  return ok(200, "part stored");
}

/**
 * CompleteMultipartUpload. A retried Complete of a completed upload with the same part
 * list answers the same 200 (and the same ETag) and changes nothing (AWS).
 */
export function predictComplete(b: BucketModel, p: PrincipalName, u: UploadModel, parts: readonly number[]): Prediction {
  const known = u.state === "active" || u.state === "completed";
  if (!policyAllows(b, p, "s3:PutObject", uploadPolicyKey(u, known))) return denied("policy: s3:PutObject (Complete)");
  if (u.state === "aborted") return err(404, "NoSuchUpload", "upload aborted");
  if (u.mode === "aws:kms" && roleOf(p, b) !== "OA") return denied("rule: Complete of a KMS upload needs OA");
  if (u.state === "completed") return ok(200, "retried Complete of a completed upload");
  if (kmsReplaceRefused(roleOf(p, b), b.objects.get(u.key))) return denied("rule: overwrite of a KMS object (Complete) needs the owning tenant");
  for (const [i, n] of parts.entries()) {
    const part = u.parts.get(n);
    if (!part) return err(400, "InvalidPart", `part ${n} was never uploaded`);
    if (i < parts.length - 1 && part.bytes.byteLength < MIN_PART_BYTES) return err(400, "EntityTooSmall", `part ${n} is not the last and < 5 MiB`);
  }
  return ok(200, "completed");
}

/** ListParts: the upload's parts (numbers and ETags); a KMS upload's only to OA. */
export function predictListParts(b: BucketModel, p: PrincipalName, u: UploadModel): Prediction {
  if (!policyAllows(b, p, "s3:ListMultipartUploadParts")) return denied("policy: s3:ListMultipartUploadParts");
  if (u.state !== "active") return err(404, "NoSuchUpload", `upload ${u.state}`);
  if (u.mode === "aws:kms" && roleOf(p, b) !== "OA") return denied("rule: ListParts of a KMS upload needs OA");
  return ok(200, "parts listed");
}

export function predictAbort(b: BucketModel, p: PrincipalName, u: UploadModel): Prediction {
  if (!policyAllows(b, p, "s3:AbortMultipartUpload")) return denied("policy: s3:AbortMultipartUpload");
  if (u.state !== "active") return err(404, "NoSuchUpload", `upload ${u.state}`);
  if (u.mode === "aws:kms" && !inOwningTenant(roleOf(p, b))) return denied("rule: Abort of a KMS upload needs the owning tenant");
  return ok(204, "aborted");
}

// ---- bucket configuration ------------------------------------------------------------------------

/** Put (next = a mode) or Delete (next = null) BucketEncryption. */
export function predictSetEncryption(b: BucketModel, p: PrincipalName, next: Mode | null): Prediction {
  const r = roleOf(p, b);
  if (!inOwningTenant(r)) return denied("policy: bucket configuration is owner-tenant only");
  if ((b.defaultEncryption === "aws:kms" || next === "aws:kms") && r !== "OA") return denied("rule: setting or removing a KMS default needs OA");
  return ok(next === null ? 204 : 200, "default encryption changed");
}

/** Put (a template) or Delete (none) BucketPolicy: the owner tenant; 204 both. */
export function predictSetPolicy(b: BucketModel, p: PrincipalName): Prediction {
  if (!inOwningTenant(roleOf(p, b))) return denied("policy: bucket configuration is owner-tenant only");
  return ok(204, "policy changed");
}

// ---- helpers ----------------------------------------------------------------------------------------

const utf8 = new TextEncoder();

/** S3 lists keys in UTF-8 byte order. */
export function byUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
