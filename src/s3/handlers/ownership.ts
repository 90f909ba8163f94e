import { assertObjectOwnership } from "../acl";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { childArray, childText, xmlResponse } from "../xml";
import { readBodyXml } from "./body-text";

/**
 * Get/Put/DeleteBucketOwnershipControls. Every bucket is BucketOwnerEnforced (ACLs
 * disabled, src/s3/acl.ts) and stays so: Put accepts only that value, and Delete is
 * accepted but changes nothing — ACLs cannot be turned on here, so Get keeps answering
 * what is enforced rather than AWS's OwnershipControlsNotFoundError.
 */
export async function getOwnershipControls(ctx: S3Context): Promise<Response> {
  requireBucket(ctx);
  return xmlResponse("OwnershipControls", { Rule: { ObjectOwnership: "BucketOwnerEnforced" } });
}

export async function putOwnershipControls(ctx: S3Context): Promise<Response> {
  requireBucket(ctx);
  const doc = await readBodyXml(ctx, "OwnershipControls");
  const rules = childArray(doc, "Rule");
  if (rules.length !== 1) throw Errors.MalformedXML();
  // An enumeration value: surrounding whitespace is not part of it.
  const value = childText(rules[0], "ObjectOwnership")?.trim();
  if (value === undefined) throw Errors.MalformedXML();
  assertObjectOwnership(value, () => Errors.MalformedXML());
  return new Response(null, { status: 200 });
}

export async function deleteOwnershipControls(ctx: S3Context): Promise<Response> {
  requireBucket(ctx);
  return new Response(null, { status: 204 });
}
