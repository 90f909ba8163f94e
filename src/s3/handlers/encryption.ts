import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import type { SseMode } from "../../crypto/envelope";
import type { Bucket } from "../../store/buckets";
import { parseDefaultEncryption, type DefaultEncryption } from "../sse";
import { assertMayChangeDefault } from "../sse-rules";
import { childArray, childText, childTexts, childToken, xmlResponse } from "../xml";
import { readBodyXml } from "./body-text";

/**
 * Bucket default encryption. As on AWS since 2023, a bucket without a configuration
 * encrypts with SSE-S3, and GetBucketEncryption says so.
 */
export async function getBucketEncryption(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const config = parseDefaultEncryption(bucket.encryption) ?? { algorithm: "AES256", bucketKeyEnabled: false };
  return xmlResponse("ServerSideEncryptionConfiguration", {
    Rule: {
      ApplyServerSideEncryptionByDefault: {
        SSEAlgorithm: config.algorithm,
        ...(config.keyId ? { KMSMasterKeyID: config.keyId } : {}),
      },
      BucketKeyEnabled: config.bucketKeyEnabled,
      // AWS's shape: the SSE-C switch lives in the rule (README, "SSE-C").
      ...(bucket.blockedEncryptionTypes.length > 0 ? { BlockedEncryptionTypes: { EncryptionType: bucket.blockedEncryptionTypes } } : {}),
    },
  });
}

/**
 * BlockedEncryptionTypes of a PutBucketEncryption rule: ["SSE-C"], [] (NONE), or
 * undefined when the rule leaves the switch as it is.
 */
function blockedTypes(rule: unknown): string[] | undefined {
  const node = (rule as Record<string, unknown>)["BlockedEncryptionTypes"];
  if (node === undefined) return undefined;
  const types = childTexts(node, "EncryptionType").map((t) => t.trim());
  if (types.some((t) => t !== "NONE" && t !== "SSE-C") || (types.includes("NONE") && types.length > 1)) throw Errors.MalformedXML();
  return types.includes("SSE-C") ? ["SSE-C"] : [];
}

export async function putBucketEncryption(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const doc = await readBodyXml(ctx, "ServerSideEncryptionConfiguration");
  // The XML helper always parses <Rule> as a list (it repeats in other documents); this
  // configuration takes exactly one.
  const rules = childArray(doc, "Rule");
  const rule = rules[0];
  if (rules.length !== 1 || rule === null || typeof rule !== "object") throw Errors.MalformedXML();
  const apply = (rule as Record<string, unknown>)["ApplyServerSideEncryptionByDefault"];
  if (apply === undefined || typeof apply !== "object" || apply === null) throw Errors.MalformedXML();
  const algorithm = childToken(apply, "SSEAlgorithm");
  const keyId = childText(apply, "KMSMasterKeyID"); // a key id or alias the user chose: as sent
  const bucketKey = childToken(rule, "BucketKeyEnabled");
  if (algorithm !== "AES256" && algorithm !== "aws:kms") {
    throw Errors.MalformedXML({}, "The XML you provided was not well-formed or did not validate against our published schema");
  }
  if (keyId !== undefined && algorithm !== "aws:kms") {
    throw Errors.InvalidArgument({ ArgumentName: "ApplyServerSideEncryptionByDefault", ArgumentValue: "null" }, "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms");
  }
  if (bucketKey !== undefined && bucketKey !== "true" && bucketKey !== "false") throw Errors.MalformedXML();
  const blocked = blockedTypes(rule);
  const config: DefaultEncryption = {
    algorithm,
    ...(keyId ? { keyId } : {}),
    bucketKeyEnabled: bucketKey === "true",
  };
  // Setting or replacing an SSE-KMS default is itself an SSE-KMS interface (tenant_admin
  // only), and the key must be one of the owner's usable keys.
  assertMayChangeDefault(ctx, bucket, currentDefault(bucket), algorithm);
  if (algorithm === "aws:kms" && keyId) await ctx.services.keys.resolve(bucket.tenantId, keyId);
  await ctx.services.buckets.setSetting(bucket.name, "encryption", JSON.stringify(config));
  if (blocked !== undefined) await ctx.services.buckets.setSetting(bucket.name, "blocked_encryption_types", blocked.length > 0 ? JSON.stringify(blocked) : null);
  return new Response(null, { status: 200 });
}

export async function deleteBucketEncryption(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  assertMayChangeDefault(ctx, bucket, currentDefault(bucket), null);
  await ctx.services.buckets.setSetting(bucket.name, "encryption", null);
  return new Response(null, { status: 204 });
}

function currentDefault(bucket: Bucket): SseMode | null {
  return parseDefaultEncryption(bucket.encryption)?.algorithm ?? null;
}
