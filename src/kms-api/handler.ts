import { checkSigV4, parseAuth, sha256Hex, verifySigV4 } from "../auth/sigv4";
import type { Services } from "../services";
import { S3Error } from "../errors";
import type { Principal } from "../store/identities";
import { concatBytes } from "../util/bytes";
import { accessDenied, makeContext } from "./context";
import { KmsApiError, KmsErrors, errorBody, fromAuthError } from "./errors";
import { parseInput } from "./input";
import { OPERATIONS, UNSUPPORTED } from "./operations";

/**
 * The AWS KMS JSON API (protocol "json" 1.1, target prefix "TrentService") on the same
 * worker as S3, so `aws kms --endpoint-url <worker>` and the SDKs' KMS clients work
 * unmodified: POST / with X-Amz-Target: TrentService.<Operation>, SigV4 with service "kms".
 */
const TARGET_PREFIX = "TrentService.";
const CONTENT_TYPE = "application/x-amz-json-1.1";
/** Largest request body read (CreateKey's Policy may be 128 KiB of JSON-escaped text). */
export const MAX_KMS_BODY = 512 * 1024;

/** Routing test: S3 never uses X-Amz-Target, and a browser form cannot send it. */
export function isKmsRequest(request: Request): boolean {
  return request.method === "POST" && (request.headers.get("x-amz-target") ?? "").startsWith(TARGET_PREFIX);
}

export async function handleKms(request: Request, services: Services): Promise<Response> {
  const requestId = crypto.randomUUID();
  try {
    const operation = (request.headers.get("x-amz-target") ?? "").slice(TARGET_PREFIX.length);
    if (new URL(request.url).pathname !== "/") throw KmsErrors.UnknownOperation("");
    const body = await readBounded(request, MAX_KMS_BODY);
    const principal = await authenticateKms(request, services, body);
    const run = OPERATIONS[operation];
    if (!run) {
      if (UNSUPPORTED.has(operation)) throw KmsErrors.UnsupportedOperation(`${operation} is not supported by this endpoint.`);
      throw KmsErrors.UnknownOperation("");
    }
    const ctx = makeContext(services, principal, operation);
    // SSE-KMS interfaces are for tenant administrators only (OBS rule); members see nothing.
    if (principal.role !== "tenant_admin") throw accessDenied(ctx);
    const input = parseInput(new TextDecoder().decode(body));
    const output = await run(ctx, input);
    return respond(200, output === null ? "" : JSON.stringify(output), requestId);
  } catch (error) {
    const failure = toKmsError(error, requestId);
    return respond(failure.status, errorBody(failure), requestId);
  }
}

function respond(status: number, body: string, requestId: string): Response {
  return new Response(body, { status, headers: { "Content-Type": CONTENT_TYPE, "x-amzn-RequestId": requestId } });
}

function toKmsError(error: unknown, requestId: string): KmsApiError {
  if (error instanceof KmsApiError) return error;
  // Key-state errors raised by shared S3-side code keep their KMS names ("KMS.X" → "X").
  if (error instanceof S3Error && error.code.startsWith("KMS.")) return new KmsApiError(error.code.slice(4), error.message);
  // An external KMS behind a CMK refused (fail closed) or did not answer in time.
  if (error instanceof S3Error && error.code === "AccessDenied") return KmsErrors.AccessDenied(error.message);
  if (error instanceof S3Error && error.status === 503) return KmsErrors.DependencyTimeout("The system timed out while trying to fulfill the request. You can retry the request.");
  const name = error instanceof Error ? error.name : typeof error;
  const message = error instanceof Error ? error.message : String(error);
  console.error(JSON.stringify({ event: "kms-internal-error", requestId, name, message }));
  return KmsErrors.Internal("The request was rejected because an internal exception occurred. The request can be retried.");
}

/**
 * Verifies the SigV4 header signature over the exact bytes received: KMS clients do not
 * send x-amz-content-sha256, so the body is read (bounded) and hashed here. Presigned
 * URLs and SigV2 are not KMS authentication methods.
 */
async function authenticateKms(request: Request, services: Services, body: Uint8Array): Promise<Principal> {
  try {
    return await verifyKmsSignature(request, services, body);
  } catch (error) {
    // The verifier speaks S3; translate its failures to the names KMS clients expect.
    throw error instanceof S3Error ? fromAuthError(error) : error;
  }
}

async function verifyKmsSignature(request: Request, services: Services, body: Uint8Array): Promise<Principal> {
  const auth = parseAuth(request);
  if (auth.kind === "anonymous") throw KmsErrors.MissingAuthenticationToken("Missing Authentication Token");
  if (auth.kind !== "header") throw KmsErrors.IncompleteSignature("KMS requests must be signed with AWS Signature Version 4 in the Authorization header.");
  const expected = { region: services.config.region, service: "kms", payloadHash: await sha256Hex(body) };
  checkSigV4(request, auth, expected);
  const identity = await services.identities.lookup(auth.accessKeyId);
  if (!identity) throw KmsErrors.UnrecognizedClient("The security token included in the request is invalid.");
  await verifySigV4(request, auth, identity.secret, expected);
  return identity.principal;
}

/** Reads at most `limit` bytes of the body; more is a ValidationException, never a buffer blow-up. */
async function readBounded(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  const tooLarge = () => KmsErrors.Validation(`The request body exceeds the maximum size of ${limit} bytes.`);
  if (declared > limit) throw tooLarge();
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const pieces: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      pieces.push(value);
    }
  } finally {
    // Unlocked, so the runtime (or wrangler's dev middleware) can still drain or discard it.
    reader.releaseLock();
  }
  return concatBytes(pieces);
}
