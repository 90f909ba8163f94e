import { LengthMismatchError } from "../crypto/errors";
import { currentObject } from "../objects/current";
import { objectR2Key } from "../objects/location";
import { statObjectMetadata } from "../objects/read";
import { WritePreconditionFailed } from "../objects/write";
import type { Bucket } from "../store/buckets";
import { evaluateConditions } from "./conditions";
import type { S3Context } from "./context";
import { Errors } from "../errors";
import { assertMayRead, assertMayReplace, inOwningTenant } from "./sse-rules";

/**
 * A write made conditional on what R2 holds at the key: R2's condition, and the client
 * header it answers to when it fails (412) — null when the condition is this gateway's
 * own tenant guard, whose failure means the object changed under us (409, retry).
 */
export interface WriteCondition {
  onlyIf: R2Conditional;
  header: "If-None-Match" | "If-Match" | null;
}

/**
 * The condition for a write to `key` (PutObject, POST, CopyObject, Complete): the client's
 * If-None-Match / If-Match, else — for a principal outside the owning tenant — the tenant
 * guard. Either one alone is enough to keep another tenant off an SSE-KMS object: `*`
 * only writes where nothing is, and If-Match was checked by reading the object, which the
 * read rules refuse them for SSE-KMS.
 */
export async function guardedWriteCondition(ctx: S3Context, bucket: Bucket, key: string): Promise<WriteCondition | undefined> {
  return (await clientWriteCondition(ctx, bucket, key)) ?? (await foreignWriteGuard(ctx, bucket, key));
}

/**
 * Conditional writes (If-None-Match: *, If-Match: etag). The check against our ETag needs
 * the current object; R2's own conditional put then makes the replace atomic with it.
 */
async function clientWriteCondition(ctx: S3Context, bucket: Bucket, key: string): Promise<WriteCondition | undefined> {
  const ifNoneMatch = ctx.request.headers.get("if-none-match");
  const ifMatch = ctx.request.headers.get("if-match");
  if (ifNoneMatch === null && ifMatch === null) return undefined;
  if (ifNoneMatch !== null && ifNoneMatch.trim() !== "*") {
    throw Errors.NotImplemented({}, "A header you provided implies functionality that is not implemented: If-None-Match on writes only supports *");
  }
  if (ifMatch === null) return { onlyIf: { etagDoesNotMatch: "*" } as R2Conditional, header: "If-None-Match" };
  const head = await ctx.services.objects.r2.head(objectR2Key(bucket.name, key));
  if (!head) throw Errors.NoSuchKey({ Key: key });
  // Only the ETag is compared: an SSE-C object's comes from its sealed facts, without its key (as on S3).
  const info = await statObjectMetadata(ctx.services.objects, bucket, key, (mode) => assertMayRead(ctx, bucket, mode));
  // Only If-Match is set, so this can only end in 412 (Condition: If-Match), never 304.
  evaluateConditions({ ifMatch, ifNoneMatch: null, ifModifiedSince: null, ifUnmodifiedSince: null }, info);
  return { onlyIf: { etagMatches: head.etag }, header: "If-Match" };
}

/**
 * Another tenant (or anonymous, with a policy that lets them write) may replace only what
 * is not SSE-KMS. The write is conditional on the version checked here, so an SSE-KMS
 * object written meanwhile cannot be overwritten (R2 refuses; the client gets 409 and may
 * retry, to be refused then). The owning tenant needs no check: it may overwrite anything.
 */
async function foreignWriteGuard(ctx: S3Context, bucket: Bucket, key: string): Promise<WriteCondition | undefined> {
  if (inOwningTenant(ctx, bucket)) return undefined;
  const current = await currentObject(ctx.services.objects.r2, bucket.name, key);
  if (!current) return { onlyIf: { etagDoesNotMatch: "*" } as R2Conditional, header: null };
  assertMayReplace(ctx, bucket, current.mode);
  return { onlyIf: { etagMatches: current.r2Etag }, header: null };
}

/**
 * DeleteObject by another tenant: refused for an SSE-KMS object. R2 has no conditional
 * delete, so this check and the delete are not atomic: an SSE-KMS object written into the
 * same key in the milliseconds between them could be deleted (README, limits).
 */
export async function assertMayDeleteKey(ctx: S3Context, bucket: Bucket, key: string): Promise<void> {
  if (inOwningTenant(ctx, bucket)) return;
  const current = await currentObject(ctx.services.objects.r2, bucket.name, key);
  if (current) assertMayReplace(ctx, bucket, current.mode);
}

export function translateWriteError(error: unknown, condition?: WriteCondition): unknown {
  if (error instanceof LengthMismatchError) return Errors.IncompleteBody();
  if (error instanceof WritePreconditionFailed) return preconditionError(condition);
  return error;
}

/** A failed R2 condition, as the client sees it: 412 for its own header, 409 for the tenant guard. */
export function preconditionError(condition: WriteCondition | undefined): unknown {
  return condition?.header === null ? Errors.OperationAborted() : Errors.PreconditionFailed({ Condition: condition?.header ?? "If-None-Match" });
}
