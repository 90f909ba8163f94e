/**
 * Browser-based uploads (POST Object): the policy document and its signature.
 *
 * The form carries `policy` = base64 of a JSON document {expiration, conditions} and a
 * signature over that base64 text: SigV4 (`x-amz-signature` = hex HMAC-SHA256 with the
 * signing key of `x-amz-credential`'s scope, as @aws-sdk/s3-presigned-post makes it) or
 * legacy SigV2 (`AWSAccessKeyId` + `signature` = base64 HMAC-SHA1). The signature vouches
 * for the policy only; the policy's conditions then vouch for every other field.
 *
 * Condition semantics follow S3's documentation: exact-match objects {"field": "value"},
 * ["eq", "$field", "value"], ["starts-with", "$field", "prefix"] (for Content-Type, each
 * comma-separated value must start with the prefix), ["content-length-range", min, max].
 * Field names are case-insensitive; a field a condition names but the form lacks counts
 * as empty. Every form field must be named by some condition, except the ones S3 exempts.
 * Pure apart from WebCrypto: no HTTP, no storage.
 */
import { Errors } from "../errors";
import { fromBase64, timingSafeEqualStrings } from "../util/bytes";
import { parseAmzDate, parseCredential } from "./presign";
import { ALGORITHM, hmacHex, signingKey, signV2 } from "./sigv4";

export type MatchCondition = {
  kind: "eq" | "starts-with";
  /** Lowercase field name without the "$". */
  field: string;
  value: string;
  /** As S3 prints it in "Policy Condition failed: [...]". */
  display: string;
};
export type RangeCondition = { kind: "content-length-range"; min: number; max: number };
export type PostCondition = MatchCondition | RangeCondition;

export interface PostPolicy {
  /** Epoch ms. */
  expiration: number;
  conditions: PostCondition[];
}

/** Largest policy document accepted (the base64 text); S3 caps the fields before the file at 20 KB anyway. */
const MAX_POLICY_BASE64 = 20 * 1024;
const EXPIRATION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

const invalid = (detail: string) => Errors.InvalidPolicyDocument({}, `Invalid Policy: ${detail}`);

/** Decodes and validates the policy document; InvalidPolicyDocument on any flaw. */
export function parsePostPolicy(base64: string): PostPolicy {
  if (base64.length > MAX_POLICY_BASE64) throw invalid("Policy document is too large.");
  const bytes = fromBase64(base64.trim());
  if (!bytes) throw invalid("Invalid JSON.");
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalid("Invalid JSON.");
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw invalid("Invalid JSON.");
  const { expiration, conditions } = doc as { expiration?: unknown; conditions?: unknown };
  if (expiration === undefined) throw invalid("Policy missing expiration.");
  if (typeof expiration !== "string" || !EXPIRATION.test(expiration) || Number.isNaN(Date.parse(expiration))) {
    throw invalid(`Invalid 'expiration' value: '${String(expiration)}'`);
  }
  if (conditions === undefined) throw invalid("Policy missing conditions.");
  if (!Array.isArray(conditions)) throw invalid("Invalid 'conditions' value: must be a list.");
  return { expiration: Date.parse(expiration), conditions: conditions.flatMap(parseCondition) };
}

function parseCondition(raw: unknown): PostCondition[] {
  if (Array.isArray(raw)) return [parseListCondition(raw)];
  if (raw !== null && typeof raw === "object") {
    const entries = Object.entries(raw);
    if (entries.length === 0) throw invalid("Invalid Simple-Condition: empty condition.");
    return entries.map(([name, value]) => {
      if (typeof value !== "string") throw invalid("Invalid Simple-Condition: value must be a string.");
      return match("eq", name, value);
    });
  }
  throw invalid("Invalid Condition: a condition must be an object or a list.");
}

function parseListCondition(list: unknown[]): PostCondition {
  const op = typeof list[0] === "string" ? list[0].toLowerCase() : undefined;
  if (op === "content-length-range") {
    if (list.length !== 3) throw invalid("Invalid content-length-range: expecting [\"content-length-range\", min, max].");
    const min = lengthBound(list[1]);
    const max = lengthBound(list[2]);
    if (min > max) throw invalid("Invalid content-length-range: the minimum is larger than the maximum.");
    return { kind: "content-length-range", min, max };
  }
  if (op === "eq" || op === "starts-with") {
    const [, name, value] = list;
    if (list.length !== 3 || typeof name !== "string" || typeof value !== "string") {
      throw invalid(`Invalid Condition: [\"${op}\", \"$field\", \"value\"] expected.`);
    }
    if (!name.startsWith("$") || name.length < 2) throw invalid(`Invalid Condition: field name '${name}' must start with '$'.`);
    return match(op, name.slice(1), value);
  }
  throw invalid(`Invalid Condition: unknown operation '${String(list[0])}'.`);
}

function lengthBound(value: unknown): number {
  const n = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw invalid("Invalid content-length-range: bounds must be non-negative integers.");
  return n;
}

function match(kind: "eq" | "starts-with", name: string, value: string): MatchCondition {
  // A failed condition is quoted in the error; an SSE-C key in it is never echoed.
  const shown = /^x-amz-(copy-source-)?server-side-encryption-customer-key$/i.test(name) ? "<redacted>" : value;
  return { kind, field: name.toLowerCase(), value, display: `[${JSON.stringify(kind)}, ${JSON.stringify("$" + name)}, ${JSON.stringify(shown)}]` };
}

/** Fields S3 never requires a condition for. */
export function isExemptField(lowerName: string): boolean {
  return (
    lowerName === "x-amz-signature" ||
    lowerName === "file" ||
    lowerName === "policy" ||
    lowerName === "awsaccesskeyid" ||
    lowerName === "signature" ||
    lowerName.startsWith("x-ignore-")
  );
}

const denied = (detail: string) => Errors.AccessDenied({}, `Invalid according to Policy: ${detail}`);

/**
 * Checks expiry, every eq / starts-with condition, and that no field escapes the policy.
 * `fields` maps lowercase names to values; `bucket` is the addressed bucket (what $bucket
 * is checked against, whatever a "bucket" field says). content-length-range is checked
 * while the file streams (see contentLengthRange).
 */
export function checkPostPolicy(policy: PostPolicy, fields: ReadonlyMap<string, string>, bucket: string, now = Date.now()): void {
  if (now > policy.expiration) throw denied("Policy expired.");
  const value = (field: string) => (field === "bucket" ? bucket : (fields.get(field) ?? ""));
  for (const c of policy.conditions) {
    if (c.kind === "content-length-range") continue;
    if (!conditionHolds(c, value(c.field))) throw denied(`Policy Condition failed: ${c.display}`);
  }
  const covered = new Set(policy.conditions.flatMap((c) => (c.kind === "content-length-range" ? [] : [c.field])));
  const extra = [...fields.keys()].filter((name) => !isExemptField(name) && !covered.has(name));
  if (extra.length > 0) throw denied(`Extra input fields: ${extra.join(", ")}`);
}

function conditionHolds(c: MatchCondition, actual: string): boolean {
  if (c.kind === "eq") return actual === c.value;
  // S3: a Content-Type starts-with condition holds when every listed type starts with the prefix.
  if (c.field === "content-type" && actual.includes(",")) return actual.split(",").every((v) => v.trim().startsWith(c.value));
  return actual.startsWith(c.value);
}

/** The tightest content-length-range of the policy (S3 applies every one), or null. */
export function contentLengthRange(policy: PostPolicy | null): { min: number; max: number } | null {
  let range: { min: number; max: number } | null = null;
  for (const c of policy?.conditions ?? []) {
    if (c.kind !== "content-length-range") continue;
    range = range ? { min: Math.max(range.min, c.min), max: Math.min(range.max, c.max) } : { min: c.min, max: c.max };
  }
  return range;
}

// ---- signatures ------------------------------------------------------------------------

export type PostSignature =
  | { version: "v4"; accessKeyId: string; signature: string; dateStamp: string; region: string; service: string; time: number }
  | { version: "v2"; accessKeyId: string; signature: string }
  | { version: "anonymous" };

const missingField = (name: string) =>
  Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: "" }, `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`);

/**
 * Which signature the form carries, with its syntax checked (not yet verified). A form
 * with neither signature nor policy is an anonymous upload, authorized by bucket policy.
 */
export function parsePostSignature(fields: ReadonlyMap<string, string>, expected: { region: string }): PostSignature {
  const get = (name: string) => fields.get(name);
  const v4 = ["x-amz-signature", "x-amz-credential", "x-amz-algorithm", "x-amz-date"].some((n) => fields.has(n));
  const v2 = fields.has("awsaccesskeyid") || fields.has("signature");
  if (v4 && v2) {
    throw Errors.InvalidArgument({ ArgumentName: "x-amz-algorithm", ArgumentValue: get("x-amz-algorithm") ?? "" }, "Only one auth mechanism allowed; only the x-amz-algorithm form field or the AWSAccessKeyId form field should be specified");
  }
  if (!v4 && !v2) {
    if (fields.has("policy")) throw missingField("AWSAccessKeyId");
    return { version: "anonymous" };
  }
  if (!fields.has("policy")) throw missingField("policy");
  if (v2) {
    const accessKeyId = get("awsaccesskeyid");
    const signature = get("signature");
    if (!accessKeyId) throw missingField("AWSAccessKeyId");
    if (!signature) throw missingField("signature");
    return { version: "v2", accessKeyId, signature };
  }
  const algorithm = get("x-amz-algorithm");
  const credential = get("x-amz-credential");
  const date = get("x-amz-date");
  const signature = get("x-amz-signature");
  if (!algorithm) throw missingField("x-amz-algorithm");
  if (!credential) throw missingField("x-amz-credential");
  if (!date) throw missingField("x-amz-date");
  if (!signature) throw missingField("x-amz-signature");
  const badArg = (name: string, value: string, message: string) => Errors.InvalidArgument({ ArgumentName: name, ArgumentValue: value }, message);
  if (algorithm !== ALGORITHM) throw badArg("x-amz-algorithm", algorithm, `X-Amz-Algorithm only supports "${ALGORITHM}"`);
  const time = parseAmzDate(date);
  if (time === null) throw badArg("x-amz-date", date, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  const scope = parseCredential(credential);
  if (!scope) throw badArg("x-amz-credential", credential, 'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  const credentialError = (detail: string) => badArg("x-amz-credential", credential, `Error parsing the X-Amz-Credential parameter; ${detail}`);
  if (scope.dateStamp !== date.slice(0, 8)) throw credentialError(`Invalid credential date "${scope.dateStamp}". This date is not the same as X-Amz-Date: "${date.slice(0, 8)}".`);
  if (scope.region !== expected.region) throw credentialError(`the region '${scope.region}' is wrong; expecting '${expected.region}'`);
  if (scope.service !== "s3") throw credentialError(`incorrect service "${scope.service}". This endpoint belongs to "s3".`);
  if (scope.terminal !== "aws4_request") throw credentialError(`incorrect terminal "${scope.terminal}". This endpoint uses "aws4_request".`);
  return { version: "v4", accessKeyId: scope.accessKeyId, signature, dateStamp: scope.dateStamp, region: scope.region, service: scope.service, time };
}

/** Verifies the signature over the base64 policy text with the access key's secret. */
export async function verifyPostSignature(sig: Exclude<PostSignature, { version: "anonymous" }>, policyBase64: string, secret: string): Promise<void> {
  const computed = sig.version === "v4" ? await hmacHex(await signingKey(secret, sig.dateStamp, sig.region, sig.service), policyBase64) : await signV2(policyBase64, secret);
  const provided = sig.version === "v4" ? sig.signature.toLowerCase() : sig.signature;
  if (!timingSafeEqualStrings(computed, provided)) {
    throw Errors.SignatureDoesNotMatch({ AWSAccessKeyId: sig.accessKeyId, StringToSign: policyBase64, SignatureProvided: sig.signature });
  }
}

/** What a signer computes (the upload page and tests produce forms with it). */
export async function signPostPolicyV4(policyBase64: string, secret: string, dateStamp: string, region: string): Promise<string> {
  return hmacHex(await signingKey(secret, dateStamp, region, "s3"), policyBase64);
}
