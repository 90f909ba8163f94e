import { markDeadAfter } from "../../multipart/lifecycle";
import { UploadStore } from "../../multipart/store";
import { maxKeyBytes, objectR2Key } from "../../objects/location";
import { isAllowed } from "../access";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../errors";
import { childArray, childText, childToken, xmlResponse } from "../xml";
import { readBodyXml, requireIntegrityHeader } from "./body-text";

const MAX_KEYS = 1000;

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
