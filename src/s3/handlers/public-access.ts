import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { PUBLIC_ACCESS_BLOCK_FIELDS, publicAccessBlockOf, type PublicAccessBlock } from "../public-access";
import { childText, xmlResponse } from "../xml";
import { readBodyXml } from "./body-text";

/**
 * Put/Get/DeletePublicAccessBlock on a bucket. What the settings do is enforced where
 * the policy is stored (BlockPublicPolicy, policy.ts) and evaluated (RestrictPublicBuckets,
 * access.ts); ACLs are disabled altogether (acl.ts), which is stricter than either ACL setting.
 */
export async function putPublicAccessBlock(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const doc = await readBodyXml(ctx, "PublicAccessBlockConfiguration");
  const config = {} as PublicAccessBlock;
  for (const field of PUBLIC_ACCESS_BLOCK_FIELDS) {
    // An xs:boolean: surrounding whitespace is not part of the value; an omitted element is false.
    const value = childText(doc, field)?.trim();
    if (value !== undefined && value !== "true" && value !== "false") throw Errors.MalformedXML();
    config[field] = value === "true";
  }
  await ctx.services.buckets.setSetting(bucket.name, "public_access_block", JSON.stringify(config));
  return new Response(null, { status: 200 });
}

export async function getPublicAccessBlock(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const config = publicAccessBlockOf(bucket);
  if (!config) throw Errors.NoSuchPublicAccessBlockConfiguration({ BucketName: bucket.name });
  return xmlResponse("PublicAccessBlockConfiguration", { ...config });
}

export async function deletePublicAccessBlock(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  await ctx.services.buckets.setSetting(bucket.name, "public_access_block", null);
  return new Response(null, { status: 204 });
}
