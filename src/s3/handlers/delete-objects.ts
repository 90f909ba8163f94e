import { markDeadAfter } from "../../multipart/lifecycle";
import { UploadStore } from "../../multipart/store";
import { maxKeyBytes, objectR2Key } from "../../objects/location";
import { currentObject } from "../../objects/current";
import type { Bucket } from "../../store/buckets";
import { mapPool } from "../../util/pool";
import { isAllowed } from "../access";
import { inOwningTenant, isPolicyOnlyMode } from "../sse-rules";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { childArray, childText, childToken, xmlResponse } from "../xml";
import { readBodyXml, requireIntegrityHeader } from "./body-text";

const MAX_KEYS = 1000;
/** R2 heads in flight at once when another tenant's batch is checked key by key. */
const HEAD_CONCURRENCY = 16;

/** DeleteObjects: up to 1000 keys in one R2 batch delete; each key is authorized on its own. */
export async function deleteObjects(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  requireIntegrityHeader(ctx.request.headers);
  const doc = await readBodyXml(ctx, "Delete");
  const quiet = (childToken(doc, "Quiet") ?? "false").toLowerCase() === "true";
  const entries = childArray(doc, "Object");
  if (entries.length === 0 || entries.length > MAX_KEYS) throw Errors.MalformedXML();

  const deleted: Array<{ Key: string; VersionId?: string }> = [];
  const errors: Array<{ Key: string; Code: string; Message: string }> = [];
  const toDelete: string[] = [];
  for (const entry of entries) {
    const key = childText(entry, "Key");
    if (key === undefined || key === "") throw Errors.MalformedXML();
    const versionId = childText(entry, "VersionId");
    if (versionId !== undefined && versionId !== "null") {
      errors.push({ Key: key, Code: "NoSuchVersion", Message: "The specified version does not exist." });
      continue;
    }
    if (!isAllowed(ctx, bucket, "s3:DeleteObject", key)) {
      errors.push({ Key: key, Code: "AccessDenied", Message: "Access Denied" });
      continue;
    }
    // No object can have a longer key; R2 would fail the whole batch on it.
    if (new TextEncoder().encode(key).byteLength > maxKeyBytes(bucket.name)) {
      errors.push({ Key: key, Code: "KeyTooLongError", Message: "Your key is too long" });
      continue;
    }
    toDelete.push(key);
    deleted.push(versionId !== undefined ? { Key: key, VersionId: versionId } : { Key: key });
  }
  await refuseForeignKms(ctx, bucket, toDelete, deleted, errors);
  if (toDelete.length > 0) {
    // Multipart objects' part data goes with them, after a grace for reads still streaming them (docs/multipart.md, "Clean-up").
    const r2 = ctx.services.objects.r2;
    await markDeadAfter({ r2, store: new UploadStore(ctx.services.env.DB) }, bucket.name, toDelete, r2.delete(toDelete.map((key) => objectR2Key(bucket.name, key))));
  }
  return xmlResponse("DeleteResult", {
    ...(quiet ? {} : { Deleted: deleted }),
    Error: errors,
  });
}

/**
 * Another tenant's batch (a policy let them delete here): keys holding SSE-KMS objects are
 * reported AccessDenied and stay, as a DeleteObject of them would be refused. Like
 * DeleteObject, the check is not atomic with R2's (unconditional) batch delete.
 */
async function refuseForeignKms(
  ctx: S3Context,
  bucket: Bucket,
  toDelete: string[],
  deleted: Array<{ Key: string; VersionId?: string }>,
  errors: Array<{ Key: string; Code: string; Message: string }>,
): Promise<void> {
  if (inOwningTenant(ctx, bucket) || toDelete.length === 0) return;
  const r2 = ctx.services.objects.r2;
  const modes = await mapPool(toDelete, HEAD_CONCURRENCY, async (key) => (await currentObject(r2, bucket.name, key))?.mode ?? null);
  const refused = new Set(toDelete.filter((_, i) => modes[i] !== null && !isPolicyOnlyMode(modes[i]!)));
  if (refused.size === 0) return;
  const keep = (key: string) => !refused.has(key);
  for (const key of toDelete) if (!keep(key)) errors.push({ Key: key, Code: "AccessDenied", Message: "Access Denied" });
  const kept = toDelete.filter(keep);
  toDelete.splice(0, toDelete.length, ...kept);
  const stillDeleted = deleted.filter((d) => keep(d.Key));
  deleted.splice(0, deleted.length, ...stillDeleted);
}
