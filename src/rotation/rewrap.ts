import { decodeEnvelope, joinCustomMetadata, signEnvelope, splitCustomMetadata, type Envelope } from "../crypto/envelope";
import { IntegrityError } from "../crypto/errors";
import { sealFacts, type ObjectFacts } from "../crypto/facts";
import { deriveMacKey, rewrapDataKey } from "../crypto/keys";
import { MasterKeyMissingError } from "../kms/keyring";
import { ExternalKeyError } from "../kms/external";
import type { KeyService } from "../kms/service";
import { authenticate } from "../objects/read";
import { S3Error } from "../errors";
import type { Bucket, BucketStore } from "../store/buckets";

export interface RewrapDeps {
  r2: R2Bucket;
  keys: KeyService;
  buckets: BucketStore;
}

/** Why an object could not be moved to the target master version. */
export type FailureReason = "tampered" | "key-destroyed" | "key-missing" | "master-version-missing" | "orphaned" | "unsupported" | "external-key" | "sse-c";

export type RewrapOutcome =
  | { kind: "current"; masterVersion: number }
  | { kind: "rewrapped"; from: number }
  /** The object was overwritten or deleted while being moved: the newer write wins, untouched. */
  | { kind: "conflict" }
  /**
   * Not movable. `blocking` means the object is still readable today under its old master
   * version, so removing that secret would lose it (an operator must look); a non-blocking
   * failure is an object no secret can read any more (tampered, key destroyed).
   */
  | { kind: "failed"; reason: FailureReason; detail: string; blocking: boolean; masterVersion: number | null };

/** "<bucket>/<key>" → its parts; internal objects ("_…") and malformed names are not S3 objects. */
export function splitR2Key(r2Key: string): { bucket: string; key: string } | null {
  if (r2Key.startsWith("_")) return null;
  const slash = r2Key.indexOf("/");
  return slash > 0 ? { bucket: r2Key.slice(0, slash), key: r2Key.slice(slash + 1) } : null;
}

/** The master version an R2 object's envelope claims, or null when it has no readable envelope. */
export function claimedMasterVersion(object: R2Object): number | null {
  try {
    return decodeEnvelope(splitCustomMetadata(object.customMetadata).envelope).masterVersion;
  } catch {
    return null;
  }
}

/** The SSE mode an R2 object's envelope claims, or null when it has no readable envelope. */
function claimedSseMode(object: R2Object): string | null {
  try {
    return decodeEnvelope(splitCustomMetadata(object.customMetadata).envelope).mode;
  } catch {
    return null;
  }
}

/**
 * Moves one object to master version `target` without touching its body. Everything is
 * verified first (the same `authenticate` a GET runs, minus the Enabled-key requirement:
 * a disabled key's objects must move too, and nothing is decrypted); then the data key is
 * re-wrapped under the KEK of (same CMK version, target master version), the facts are
 * re-sealed under the target version's seal key, the MAC recomputed, and the object re-put
 * with its ciphertext streamed through unchanged — R2's Workers binding has no
 * metadata-only update. The put is conditional on the ETag that was read, so a client
 * overwrite racing the job is never clobbered; the losing rewrap is simply a conflict.
 */
export async function rewrapObject(deps: RewrapDeps, r2Key: string, listed: R2Object, target: number): Promise<RewrapOutcome> {
  const claimed = claimedMasterVersion(listed);
  if (claimed === target) return { kind: "current", masterVersion: target };
  const name = splitR2Key(r2Key);
  if (!name) return { kind: "failed", reason: "unsupported", detail: "not an S3 object name", blocking: false, masterVersion: claimed };
  const bucket = await deps.buckets.get(name.bucket);
  if (!bucket) return { kind: "failed", reason: "orphaned", detail: `bucket '${name.bucket}' does not exist`, blocking: true, masterVersion: claimed };

  const object = await deps.r2.get(r2Key);
  if (!object) return { kind: "conflict" };
  return rewrapLoaded(deps, bucket, name.key, object, target);
}

/**
 * The second half of rewrapObject, on an object already read. The re-put is conditional
 * on the object still being the very upload that was read (sameUpload).
 */
export async function rewrapLoaded(deps: RewrapDeps, bucket: Bucket, key: string, object: R2ObjectBody, target: number): Promise<RewrapOutcome> {
  const r2Key = object.key;
  const name = { key };
  let put: R2Object | null;
  const claimedMode = claimedSseMode(object);
  if (claimedMode === "SSE-C") {
    // Its data key is wrapped under the customer's key and its MAC key derives from it: the
    // job can neither verify nor re-sign it, so it never re-puts it. Its sealed facts stay
    // under the old master version, which must therefore stay configured until the object
    // is rewritten with its key (CopyObject onto itself) or deleted: blocking (README).
    await object.body.cancel().catch(() => {});
    return {
      kind: "failed",
      reason: "sse-c",
      detail: "SSE-C object: only its customer key can re-sign it; rewrite it (CopyObject onto itself with the key) or delete it before retiring this master version",
      blocking: true,
      masterVersion: claimedMasterVersion(object),
    };
  }
  try {
    let envelope: Envelope;
    let facts: ObjectFacts;
    let dataKey: CryptoKey;
    try {
      const auth = await authenticate({ r2: deps.r2, keys: deps.keys }, bucket, name.key, object, false, () => {});
      envelope = auth.envelope;
      dataKey = auth.dataKey;
      facts = auth.facts;
    } catch (error) {
      await object.body.cancel().catch(() => {});
      return classify(error, claimedMasterVersion(object));
    }
    if (envelope.masterVersion === target) {
      await object.body.cancel().catch(() => {});
      return { kind: "current", masterVersion: target };
    }
    const tenantId = bucket.tenantId;
    const from = envelope.masterVersion;
    // Same root (version material or the bucket's bucket key), another master version.
    const root = envelope.externalBucketKey ? bucket.name : null;
    const oldKek = await deps.keys.forRead(tenantId, envelope.keyArn, envelope.keyVersion, from, false, root);
    const newKek = await deps.keys.forRead(tenantId, envelope.keyArn, envelope.keyVersion, target, false, root);
    const { mac: _mac, ...unsigned } = envelope;
    const moved = await signEnvelope(
      await deriveMacKey(dataKey),
      {
        ...unsigned,
        masterVersion: target,
        wrappedKey: await rewrapDataKey(oldKek, newKek, envelope.wrappedKey),
        // The MAC verified above, so the envelope's length is authentic: sealed from now on.
        sealed: await sealFacts(await deps.keys.sealKey(tenantId, target), bucket.name, name.key, { ...facts, length: envelope.length }),
        lastModified: envelope.lastModified ?? object.uploaded.getTime(),
      },
      { bucket: bucket.name, key: name.key, userMetadata: splitCustomMetadata(object.customMetadata).userMetadata },
    );
    const fixed = new FixedLengthStream(object.size);
    const piping = object.body.pipeTo(fixed.writable);
    piping.catch(() => {});
    put = await deps.r2.put(r2Key, fixed.readable, {
      customMetadata: joinCustomMetadata(moved, splitCustomMetadata(object.customMetadata).userMetadata),
      ...(object.httpMetadata && Object.keys(object.httpMetadata).length > 0 ? { httpMetadata: object.httpMetadata } : {}),
      storageClass: object.storageClass,
      onlyIf: sameUpload(object),
    });
    if (put === null) {
      await fixed.readable.cancel().catch(() => {});
      return { kind: "conflict" };
    }
    await piping;
    return { kind: "rewrapped", from };
  } catch (error) {
    await object.body.cancel().catch(() => {});
    throw error;
  }
}

/**
 * R2 condition "this exact upload is still there": uploaded after t−1 ms and before t+1 ms.
 * An ETag condition is not enough — a CopyObject onto the same key keeps the ciphertext and
 * so R2's ETag, and must not be undone — and R2, like HTTP, ignores the time conditions
 * whenever an ETag condition is given. The lower bound also fails when the object was
 * deleted meanwhile, so a rewrap never resurrects it.
 */
export function sameUpload(object: R2Object): R2Conditional {
  const t = object.uploaded.getTime();
  return { uploadedAfter: new Date(t - 1), uploadedBefore: new Date(t + 1) };
}

/** Maps a verification failure to a reason; anything unexpected (D1/R2 outage) propagates. */
export function classify(error: unknown, masterVersion: number | null): RewrapOutcome {
  const failed = (reason: FailureReason, detail: string, blocking: boolean): RewrapOutcome => ({ kind: "failed", reason, detail, blocking, masterVersion });
  if (error instanceof IntegrityError) return failed("tampered", error.message, false);
  if (error instanceof MasterKeyMissingError) return failed("master-version-missing", error.message, false);
  // A CMK rooted in an external KMS that refused (disabled, deleted, credentials) or did not
  // answer: the object is intact but cannot be checked or moved now. Blocking: its master
  // version stays in use until the external KMS lets the job move it.
  if (error instanceof ExternalKeyError) return failed("external-key", `${error.message} (external KMS: ${error.externalType})`, true);
  if (error instanceof S3Error) {
    if (error.code === "KMS.NotFoundException") {
      return /destroyed/.test(error.message) ? failed("key-destroyed", error.message, false) : failed("key-missing", error.message, true);
    }
    // The envelope names a key of another tenant: it cannot have been written here.
    if (error.code === "AccessDenied") return failed("tampered", "envelope names a key of another tenant", false);
    if (error.code === "NotImplemented") return failed("unsupported", error.message, true);
  }
  throw error;
}
