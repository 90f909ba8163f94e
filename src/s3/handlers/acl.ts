import { objectR2Key } from "../../objects/location";
import { assertOwnerOnlyAclHeaders } from "../acl";
import { requireBucket, type S3Context } from "../context";
import { Errors, S3Error } from "../../errors";
import { childArray, childText, parseXmlDocument, xmlResponse } from "../xml";
import { readBodyText } from "./body-text";

/**
 * Get/PutBucketAcl and Get/PutObjectAcl with ACLs disabled (src/s3/acl.ts): reads answer
 * the owner's FULL_CONTROL, as AWS does for a BucketOwnerEnforced bucket; writes succeed
 * only when they grant exactly that.
 */
export async function getAcl(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const owner = { ID: bucket.tenantId, DisplayName: bucket.tenantId };
  return xmlResponse("AccessControlPolicy", {
    Owner: owner,
    AccessControlList: {
      Grant: {
        Grantee: { "@_xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance", "@_xsi:type": "CanonicalUser", ...owner },
        Permission: "FULL_CONTROL",
      },
    },
  });
}

export async function putAcl(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const key = ctx.address.key;
  const headers = ctx.request.headers;
  assertOwnerOnlyAclHeaders(headers, bucket.tenantId);
  const text = await readBodyText(ctx, 64 * 1024);
  const hasHeaderAcl = headers.has("x-amz-acl") || [...headers.keys()].some((name) => name.startsWith("x-amz-grant-"));
  if (text.trim() !== "") assertOwnerOnlyDocument(text, bucket.tenantId);
  else if (!hasHeaderAcl) throw Errors.MalformedACLError();
  if (key !== null && !(await ctx.services.objects.r2.head(objectR2Key(bucket.name, key)))) throw Errors.NoSuchKey({ Key: key });
  return new Response(null, { status: 200 });
}

/** An AccessControlPolicy whose every grant is FULL_CONTROL to the owner's canonical id. */
function assertOwnerOnlyDocument(text: string, ownerId: string): void {
  let doc: Record<string, unknown>;
  try {
    doc = parseXmlDocument(text, "AccessControlPolicy");
  } catch (error) {
    if (error instanceof S3Error && error.code === "MalformedXML") throw Errors.MalformedACLError();
    throw error;
  }
  const grants = childArray(doc["AccessControlList"], "Grant");
  for (const grant of grants) {
    const grantee = (grant as Record<string, unknown> | null)?.["Grantee"];
    // IDs and permissions are tokens: whitespace around them is not part of the value.
    if (childText(grantee, "ID")?.trim() !== ownerId || childText(grant, "Permission")?.trim() !== "FULL_CONTROL") {
      throw Errors.AccessControlListNotSupported();
    }
  }
}
