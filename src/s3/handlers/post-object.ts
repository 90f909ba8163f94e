/**
 * POST Object: browser-based uploads with an HTML form or fetch(FormData).
 *
 * The HTTP request is anonymous (a browser form carries no Authorization header); the
 * form authenticates itself with a signed policy (src/auth/post-policy.ts). Order:
 * fields → signature → policy (expiry, conditions, no extra fields) → encryption choice,
 * SSE-KMS rules and the bucket policy (authType POST, condition keys from the form
 * fields) → stream the file through content-length-range and checksum checks into
 * encryption → respond (204 / 200 / 201 PostResponse / 303 redirect).
 */
import { checkPostPolicy, contentLengthRange, parsePostPolicy, parsePostSignature, verifyPostSignature, type PostPolicy, type PostSignature } from "../../auth/post-policy";
import { checksumForHeader, type ChecksumInfo, type Hasher } from "../../checksum";
import type { PlaintextSource } from "../../crypto/encrypt";
import { toHex, fromBase64, timingSafeEqual, toBase64 } from "../../util/bytes";
import { randomBytes } from "../../crypto/keys";
import { StreamTooLargeError, writeStreamed } from "../../objects/write-streamed";
import { writeMultipartLayout, writeMultipartLayoutStreamed } from "../../objects/write-streamed-multipart";
import { UploadStore } from "../../multipart/store";
import type { Bucket } from "../../store/buckets";
import { assertAllowed } from "../access";
import { assertOwnerOnlyCannedAcl } from "../acl";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { httpMetadataFrom, userMetadataFrom } from "../object-headers";
import { isFormPost, postFormReader, type FormField, type PostForm } from "../post-form";
import { chooseSse, parseDefaultEncryption, sseResponseHeaders } from "../sse";
import { assertMayWriteWith } from "../sse-rules";
import { buildXml } from "../xml";
import { assertKeyFits, MAX_PUT_BYTES, recordNewTags } from "./objects";
import { tagMap, tagsFromXml } from "../tagging";
import { guardedWriteCondition, translateWriteError } from "../write-guard";

export async function postObject(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  if (!isFormPost(ctx.request.headers)) {
    throw Errors.PreconditionFailed({ Condition: "Bucket POST must be of the enclosure-type multipart/form-data" });
  }
  const reader = postFormReader(ctx.request);
  try {
    return await upload(ctx, bucket, await reader.readFields());
  } catch (error) {
    // Let the client finish sending (bounded), or a browser may see a reset, not our error.
    await reader.drain();
    throw error;
  }
}

async function upload(ctx: S3Context, bucket: Bucket, form: PostForm): Promise<Response> {
  const values = new Map([...form.fields].map(([name, f]) => [name, f.value]));
  const signature = parsePostSignature(values, { region: ctx.services.config.region });
  const { principal, policy } = await authenticateForm(ctx, signature, values.get("policy"));

  const rawKey = values.get("key");
  if (rawKey === undefined) {
    throw Errors.InvalidArgument({ ArgumentName: "key", ArgumentValue: "" }, "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.");
  }
  if (!form.file) throw Errors.IncorrectNumberOfFilesInPostRequest({ ArgumentName: "file", ArgumentValue: "0" });
  if (policy) checkPostPolicy(policy, values, bucket.name);

  const key = rawKey.replaceAll("${filename}", baseName(form.file.filename ?? ""));
  if (key === "") throw Errors.InvalidArgument({ ArgumentName: "key", ArgumentValue: "" }, "User key must have a length greater than 0.");
  assertKeyFits(bucket, key);
  assertOwnerOnlyCannedAcl(values.get("acl"));

  const headers = fieldHeaders(form.fields);
  // The x-amz-server-side-encryption-customer-* form fields select SSE-C like the headers of a PUT.
  const sse = await chooseSse(headers, parseDefaultEncryption(bucket.encryption));
  // The form's principal acts for this upload; the HTTP request itself stays anonymous.
  const formCtx: S3Context = { ...ctx, principal };
  if (signature.version === "v2" && sse.mode === "aws:kms") {
    throw Errors.InvalidArgument(
      { ArgumentName: "x-amz-server-side-encryption", ArgumentValue: "aws:kms" },
      "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.",
    );
  }
  assertMayWriteWith(formCtx, bucket, sse);
  // The `tagging` field holds a <Tagging> document, as AWS defines it for POST Object.
  const taggingField = values.get("tagging");
  const tags = taggingField !== undefined ? tagsFromXml(taggingField) : [];
  assertAllowed(formCtx, bucket, "s3:PutObject", key, { extra: policyConditionKeys(ctx, form.fields, signature), tags: { request: tagMap(tags) } });
  if (tags.length > 0) assertAllowed(formCtx, bucket, "s3:PutObjectTagging", key, { tags: { request: tagMap(tags) } });
  // An unknown, disabled or foreign KMS key is refused before the file is read.
  if (sse.mode !== "SSE-C") await ctx.services.keys.forWrite(bucket.tenantId, bucket.name, sse.mode, sse.keyId);

  const condition = await guardedWriteCondition(formCtx, bucket, key);
  const range = contentLengthRange(policy);
  const checksum = checksumField(form.fields);
  // A form sent without Content-Length (chunked) escaped the up-front body limit
  // (s3/body-limit.ts); its file alone must still fit in it.
  const max = Math.min(range?.max ?? MAX_PUT_BYTES, MAX_PUT_BYTES, ctx.services.config.maxRequestBodyBytes);
  const guarded = guard(form.file.source, { min: range?.min ?? 0, max }, checksum);
  let written;
  try {
    const deps = ctx.services.objects;
    written = await writeStreamed(deps, {
      bucket,
      key,
      ...(principal ? { initiator: { id: principal.userId, name: principal.userName } } : {}),
      source: guarded.source,
      sse,
      http: httpMetadataFrom(headers),
      userMetadata: userMetadataFrom(headers),
      ...(condition ? { onlyIf: condition.onlyIf } : {}),
      // The MD5 when the file fit one buffer (as S3's ETag); else an opaque "<hex>-1" as PUT gives.
      // SSE-C: never an MD5 of the plaintext (see chooseEtag).
      facts: ({ md5 }) => ({ etag: md5 && sse.mode !== "SSE-C" ? toHex(md5) : `${toHex(randomBytes(16))}-1` }),
      // The form's checksum field (verified by the guard before the end), else CRC64NVME as S3.
      checksum: checksum
        ? { algorithm: checksum.info.algorithm, from: () => ({ algorithm: checksum.info.algorithm, value: toBase64(checksum.value), type: "FULL_OBJECT" }) }
        : { compute: "CRC64NVME" },
    }, {
      // Larger than one buffer: the multipart layout, parts of one buffer each — streamed
      // when the form's Content-Length predicts the file's length, else from buffers.
      large: (req, head, partBytes) => writeMultipartLayout({ ...deps, store: new UploadStore(ctx.services.env.DB) }, req, head, partBytes),
      hintedLarge: (req, hint, partBytes) => writeMultipartLayoutStreamed({ ...deps, store: new UploadStore(ctx.services.env.DB) }, req, hint, partBytes),
      lengthHint: form.file.lengthHint,
    });
  } catch (error) {
    if (error instanceof StreamTooLargeError) {
      throw Errors.EntityTooLarge({ ProposedSize: String(guarded.count()), MaxSizeAllowed: String(error.limit) }, `Your proposed upload exceeds the maximum allowed size for a form upload (${error.limit} bytes) on this endpoint`);
    }
    throw translateWriteError(error, condition);
  }
  await recordNewTags(formCtx, bucket, key, written, tags);
  return respond(ctx, bucket, key, form.fields, {
    etag: `"${written.etag}"`,
    headers: { ...sseResponseHeaders(written), ...(checksum ? { [checksum.info.headerName]: toBase64(checksum.value) } : {}) },
  });
}

/** Signature → principal; the policy is parsed only once its signature is verified. */
async function authenticateForm(ctx: S3Context, signature: PostSignature, policyText: string | undefined): Promise<{ principal: S3Context["principal"]; policy: PostPolicy | null }> {
  if (signature.version === "anonymous") return { principal: null, policy: null };
  const identity = await ctx.services.identities.lookup(signature.accessKeyId);
  if (!identity) throw Errors.InvalidAccessKeyId({ AWSAccessKeyId: signature.accessKeyId });
  await verifyPostSignature(signature, policyText!, identity.secret);
  return { principal: identity.principal, policy: parsePostPolicy(policyText!) };
}

/** Browsers send a bare name, old IE a full path; S3 keeps the last path segment. */
function baseName(filename: string): string {
  const cut = Math.max(filename.lastIndexOf("/"), filename.lastIndexOf("\\"));
  return cut >= 0 ? filename.slice(cut + 1) : filename;
}

/** Buckets here have ACLs disabled (S3's default "bucket owner enforced"): only the canned ACLs that change nothing. */
/** Form fields that S3 treats as the request headers of a PUT. */
const HEADER_FIELDS = new Set(["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"]);
const AUTH_FIELDS = new Set(["x-amz-signature", "x-amz-credential", "x-amz-algorithm", "x-amz-date", "x-amz-security-token"]);

function fieldHeaders(fields: ReadonlyMap<string, FormField>): Headers {
  const headers = new Headers();
  for (const [name, field] of fields) {
    if (!HEADER_FIELDS.has(name) && !(name.startsWith("x-amz-") && !AUTH_FIELDS.has(name))) continue;
    try {
      headers.set(name, field.value);
    } catch {
      // An SSE-C key field is never echoed, whatever it holds.
      const shown = /-customer-key$/.test(name) ? "<redacted>" : field.value;
      throw Errors.InvalidArgument({ ArgumentName: field.name, ArgumentValue: shown }, `The value of form field ${field.name} is not a valid header value.`);
    }
  }
  return headers;
}

/**
 * Condition keys for the bucket policy: the form's x-amz-* fields stand in for request
 * headers (s3:x-amz-server-side-encryption comes from the form, as on S3), and any
 * x-amz-* header on the HTTP request itself — unsigned on a POST — is dropped.
 */
function policyConditionKeys(ctx: S3Context, fields: ReadonlyMap<string, FormField>, signature: PostSignature): Record<string, string | undefined> {
  const keys: Record<string, string | undefined> = {};
  for (const [name] of ctx.request.headers) if (name.startsWith("x-amz-")) keys[`s3:${name}`] = undefined;
  for (const [name, field] of fields) if (name.startsWith("x-amz-") && !AUTH_FIELDS.has(name)) keys[`s3:${name}`] = field.value;
  keys["s3:authtype"] = "POST";
  keys["s3:signatureversion"] = signature.version === "v4" ? "AWS4-HMAC-SHA256" : signature.version === "v2" ? "AWS" : undefined;
  keys["s3:signatureage"] = signature.version === "v4" ? String(Math.max(0, Date.now() - signature.time)) : undefined;
  return keys;
}

interface ChecksumClaim {
  info: ChecksumInfo;
  value: Uint8Array;
}

/** An x-amz-checksum-<algorithm> field: the file is verified against it before anything is stored. */
function checksumField(fields: ReadonlyMap<string, FormField>): ChecksumClaim | null {
  let claim: ChecksumClaim | null = null;
  for (const [name, field] of fields) {
    const info = checksumForHeader(name);
    if (!info) continue;
    if (claim) throw Errors.InvalidRequest(undefined, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
    const value = fromBase64(field.value.trim());
    if (!value || value.byteLength !== info.digestLength) throw Errors.InvalidRequest(undefined, `Value for ${info.headerName} header is invalid.`);
    claim = { info, value };
  }
  return claim;
}

/**
 * The file as the writer sees it: stops with EntityTooLarge the moment the file passes
 * the policy's maximum (nothing stored, the rest is not read), and at its end checks the
 * minimum and the checksum before reporting the end — so nothing unverified is committed.
 */
function guard(source: PlaintextSource, range: { min: number; max: number }, checksum: ChecksumClaim | null): { source: PlaintextSource; count(): number } {
  let count = 0;
  const hasher: Hasher | null = checksum ? checksum.info.create() : null;
  return {
    count: () => count,
    source: {
      async read(max: number): Promise<Uint8Array> {
        const bytes = await source.read(max);
        count += bytes.byteLength;
        if (count > range.max) {
          const error = Errors.EntityTooLarge({ ProposedSize: String(count), MaxSizeAllowed: String(range.max) });
          await source.cancel(error);
          throw error;
        }
        if (bytes.byteLength > 0) {
          hasher?.update(bytes);
          return bytes;
        }
        if (count < range.min) throw Errors.EntityTooSmall({ ProposedSize: String(count), MinSizeAllowed: String(range.min) });
        if (checksum && !timingSafeEqual(await hasher!.digest(), checksum.value)) {
          throw Errors.BadDigest(undefined, `The ${checksum.info.algorithm} you specified did not match the calculated checksum.`);
        }
        return bytes;
      },
      cancel: (reason) => source.cancel(reason),
    },
  };
}

/** success_action_redirect (or redirect) → 303; else success_action_status 200, 201 (PostResponse) or 204. */
function respond(ctx: S3Context, bucket: Bucket, key: string, fields: ReadonlyMap<string, FormField>, result: { etag: string; headers: Record<string, string> }): Response {
  const headers = new Headers({ ETag: result.etag, ...result.headers });
  const location = objectUrl(ctx, bucket.name, key);
  const redirect = redirectTarget(fields.get("success_action_redirect")?.value ?? fields.get("redirect")?.value);
  if (redirect) {
    redirect.searchParams.append("bucket", bucket.name);
    redirect.searchParams.append("key", key);
    redirect.searchParams.append("etag", result.etag);
    headers.set("Location", redirect.toString());
    return new Response(null, { status: 303, headers });
  }
  headers.set("Location", location);
  const status = fields.get("success_action_status")?.value;
  if (status === "201") {
    headers.set("Content-Type", "application/xml");
    const body = buildXml("PostResponse", { Location: location, Bucket: bucket.name, Key: key, ETag: result.etag }, false);
    return new Response(body, { status: 201, headers });
  }
  return new Response(null, { status: status === "200" ? 200 : 204, headers });
}

/** S3 ignores a redirect it cannot parse as an absolute URL and answers with the status instead. */
function redirectTarget(value: string | undefined): URL | null {
  if (!value) return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

function objectUrl(ctx: S3Context, bucket: string, key: string): string {
  const path = key.split("/").map(encodeURIComponent).join("/");
  return ctx.address.style === "virtual" ? `${ctx.url.origin}/${path}` : `${ctx.url.origin}/${bucket}/${path}`;
}
