import { decodeEnvelope, splitCustomMetadata, type Envelope } from "../crypto/envelope";
import { unsealFacts } from "../crypto/facts";
import { parseKeyReference } from "../kms/arn";
import type { KmsKey } from "../kms/registry";
import { bucketR2Prefix } from "../objects/location";
import { authenticate, readObject } from "../objects/read";
import type { ObjectDeps } from "../objects/write";
import { classify } from "../rotation/rewrap";
import type { Bucket } from "../store/buckets";
import { fromBase64, fromUtf8, toBase64, utf8 } from "../util/bytes";
import { mapPool } from "../util/pool";

/**
 * The encryption audit of one bucket, a page at a time (bounded work per call, so a bucket
 * of any size is audited in Workers limits; the CLI follows the cursor and sums pages).
 * Every object's envelope is verified exactly as a read verifies it — key derivation,
 * AES-KW unwrap, metadata MAC, stored size, sealed facts — without requiring its key to be
 * Enabled and without decrypting the body. `deep` also decrypts every body (every chunk's
 * GCM tag checked), within a byte budget per page.
 */
export type ProblemReason =
  | "no-envelope"
  | "tampered"
  | "ciphertext-tampered"
  | "key-destroyed"
  | "key-missing"
  | "key-disabled"
  | "key-pending-deletion"
  | "master-version-missing"
  | "unsupported"
  /** The CMK is rooted in an external KMS that refused or did not answer (README, "Keys rooted in your KMS"). */
  | "external-key";

export interface Problem {
  key: string;
  reason: ProblemReason;
  detail: string;
  keyArn?: string;
  masterVersion?: number;
}

export interface KeyUse {
  objects: number;
  kind: KmsKey["kind"] | "unknown";
  state: KmsKey["state"] | "Missing";
  deletionDate?: string;
}

export interface AuditPage {
  bucket: string;
  tenantId: string;
  scanned: number;
  /** Objects whose metadata verified and whose key is usable now: readable. */
  readable: number;
  /** Objects whose metadata MAC verified (readable or not: a disabled key's objects verify too). */
  macVerified: number;
  /** Bodies decrypted and verified (deep mode only). */
  deepVerified: number;
  byMode: Record<string, number>;
  byKey: Record<string, KeyUse>;
  byMasterVersion: Record<string, number>;
  problems: Problem[];
  truncated: boolean;
  cursor?: string;
}

export interface AuditOptions {
  cursor?: string;
  limit: number;
  deep: boolean;
  /** Deep mode: stop the page after reading this many stored bytes. */
  maxBytes: number;
}

const CONCURRENCY = 16;

export async function auditPage(deps: ObjectDeps, bucket: Bucket, options: AuditOptions): Promise<AuditPage> {
  const root = bucketR2Prefix(bucket.name);
  const after = options.cursor !== undefined ? decodeCursor(options.cursor) : undefined;
  const listed = await deps.r2.list({ prefix: root, limit: options.limit, include: ["customMetadata"], ...(after !== undefined ? { startAfter: root + after } : {}) });
  const page: AuditPage = {
    bucket: bucket.name,
    tenantId: bucket.tenantId,
    scanned: 0,
    readable: 0,
    macVerified: 0,
    deepVerified: 0,
    byMode: {},
    byKey: {},
    byMasterVersion: {},
    problems: [],
    truncated: listed.truncated,
  };
  const keyRows = new Map<string, Promise<KmsKey | null>>();
  const keyRow = (arn: string): Promise<KmsKey | null> => {
    const ref = parseKeyReference(arn);
    if (ref.kind !== "id") return Promise.resolve(null);
    let hit = keyRows.get(ref.id);
    if (!hit) keyRows.set(ref.id, (hit = deps.keys.registry.get(ref.id)));
    return hit;
  };

  // Deep mode reads bodies: cut the page where the byte budget runs out.
  let objects = listed.objects;
  if (options.deep) {
    let bytes = 0;
    const cut = objects.findIndex((o) => (bytes += o.size) > options.maxBytes);
    if (cut >= 0) {
      objects = objects.slice(0, Math.max(1, cut));
      page.truncated = true;
    }
  }

  const results = await mapPool(objects, CONCURRENCY, (o) => auditObject(deps, bucket, o, o.key.slice(root.length), options.deep, keyRow));
  for (const r of results) {
    page.scanned++;
    page.byMode[r.mode] = (page.byMode[r.mode] ?? 0) + 1;
    if (r.envelope) {
      const mv = String(r.envelope.masterVersion);
      page.byMasterVersion[mv] = (page.byMasterVersion[mv] ?? 0) + 1;
    }
    // SSE-C objects use no CMK: counted under their mode only.
    if (r.envelope && r.envelope.mode !== "SSE-C") {
      const arn = r.envelope.keyArn;
      const key = await keyRow(arn);
      const use = (page.byKey[arn] ??= {
        objects: 0,
        kind: key?.kind ?? "unknown",
        state: key?.state ?? "Missing",
        ...(key?.state === "PendingDeletion" && key.deletionAt !== null ? { deletionDate: new Date(key.deletionAt).toISOString() } : {}),
      });
      use.objects++;
    }
    if (r.macVerified) page.macVerified++;
    if (r.deepVerified) page.deepVerified++;
    if (r.problem) page.problems.push(r.problem);
    else page.readable++;
  }
  const last = objects[objects.length - 1];
  if (page.truncated && last) page.cursor = encodeCursor(last.key.slice(root.length));
  return page;
}

interface ObjectAudit {
  mode: string;
  envelope: Envelope | null;
  macVerified: boolean;
  deepVerified: boolean;
  problem?: Problem;
}

async function auditObject(
  deps: ObjectDeps,
  bucket: Bucket,
  object: R2Object,
  key: string,
  deep: boolean,
  keyRow: (arn: string) => Promise<KmsKey | null>,
): Promise<ObjectAudit> {
  let envelope: Envelope | null = null;
  const text = splitCustomMetadata(object.customMetadata).envelope;
  if (text === undefined) {
    return { mode: "none", envelope: null, macVerified: false, deepVerified: false, problem: { key, reason: "no-envelope", detail: "object has no encryption envelope: it was not written through this endpoint" } };
  }
  try {
    envelope = decodeEnvelope(text);
  } catch (error) {
    return { mode: "unknown", envelope: null, macVerified: false, deepVerified: false, problem: { key, reason: "tampered", detail: (error as Error).message } };
  }
  const about = { keyArn: envelope.keyArn, masterVersion: envelope.masterVersion };
  const result: ObjectAudit = { mode: envelope.mode, envelope, macVerified: false, deepVerified: false };
  if (envelope.mode === "SSE-C") {
    // The MAC key derives from a data key only the customer's key unwraps: the audit cannot
    // check the MAC or the body. It checks what the seal key reaches (the sealed facts,
    // bound to bucket and key) and counts the object, unverified, under its mode.
    try {
      await unsealFacts(await deps.keys.sealKey(bucket.tenantId, envelope.masterVersion), bucket.name, key, envelope.sealed);
    } catch (error) {
      const outcome = classify(error, envelope.masterVersion);
      if (outcome.kind !== "failed") throw error;
      result.problem = { key, reason: outcome.reason === "orphaned" || outcome.reason === "sse-c" ? "tampered" : outcome.reason, detail: outcome.detail, ...about };
    }
    return result;
  }
  try {
    await authenticate(deps, bucket, key, object, false, () => {});
  } catch (error) {
    const outcome = classify(error, envelope.masterVersion);
    if (outcome.kind !== "failed") throw error;
    result.problem = { key, reason: outcome.reason === "orphaned" || outcome.reason === "sse-c" ? "tampered" : outcome.reason, detail: outcome.detail, ...about };
    return result;
  }
  result.macVerified = true;
  const cmk = await keyRow(envelope.keyArn);
  if (cmk?.state === "Disabled") result.problem = { key, reason: "key-disabled", detail: `${cmk.arn} is disabled: the object is intact but unreadable until the key is enabled`, ...about };
  else if (cmk?.state === "PendingDeletion") {
    const when = cmk.deletionAt !== null ? new Date(cmk.deletionAt).toISOString() : "soon";
    result.problem = { key, reason: "key-pending-deletion", detail: `${cmk.arn} is pending deletion (destroyed at ${when}); cancel the deletion to keep the object`, ...about };
  } else if (deep) {
    try {
      // A small object's body comes back already decrypted and checked (read.ts).
      const read = await readObject(deps, bucket, key, null);
      if (!(read.body instanceof Uint8Array)) {
        const reader = read.body.getReader();
        for (;;) if ((await reader.read()).done) break;
      }
      result.deepVerified = true;
    } catch (error) {
      result.problem = { key, reason: "ciphertext-tampered", detail: error instanceof Error ? error.message : String(error), ...about };
    }
  }
  return result;
}

function encodeCursor(key: string): string {
  return toBase64(utf8(key)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor(cursor: string): string | undefined {
  const bytes = fromBase64(cursor.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (cursor.length % 4)) % 4));
  return bytes ? fromUtf8(bytes) : undefined;
}
