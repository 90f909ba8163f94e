import { IntegrityError } from "../crypto/errors";
import { MasterKeyMissingError } from "../kms/keyring";
import { Errors, S3Error } from "../errors";
import { buildXml } from "./xml";

/** AWS-style request ids: 16 uppercase hex characters, and an opaque host id. */
export function newRequestId(): string {
  return crypto.getRandomValues(new Uint8Array(8)).toHex().toUpperCase();
}

export function hostId(requestId: string): string {
  return btoa(`s3-sse-gateway/${requestId}`);
}

/**
 * Maps any failure to an S3 XML error. S3Errors keep their code and status; integrity
 * failures and configuration faults are 500s with an explicit message; anything else is a
 * generic InternalError whose details stay in the log (never a stack in a response).
 */
export function toS3Error(error: unknown, requestId: string): S3Error {
  if (error instanceof S3Error) return error;
  if (error instanceof IntegrityError) {
    console.error(JSON.stringify({ event: "integrity-failure", requestId, reason: error.message }));
    return Errors.InternalError({}, "The object failed its integrity check (stored ciphertext or metadata was modified) and will not be served.");
  }
  if (error instanceof MasterKeyMissingError) {
    console.error(JSON.stringify({ event: "master-key-missing", requestId, version: error.version }));
    return Errors.InternalError({}, `The master key version this object needs (v${error.version}) is not configured.`);
  }
  const name = error instanceof Error ? error.name : typeof error;
  const message = error instanceof Error ? error.message : String(error);
  console.error(JSON.stringify({ event: "internal-error", requestId, name, message }));
  return Errors.InternalError();
}

export function errorResponse(error: S3Error, request: Request, requestId: string): Response {
  const headers = new Headers({ "x-amz-request-id": requestId, "x-amz-id-2": hostId(requestId), ...error.headers });
  if (error.status === 304 || request.method === "HEAD") return new Response(null, { status: error.status, headers });
  headers.set("Content-Type", "application/xml");
  const resource = new URL(request.url).pathname;
  const body = buildXml(
    "Error",
    { Code: error.code, Message: error.message, ...error.details, Resource: resource, RequestId: requestId, HostId: hostId(requestId) },
    false,
  );
  if (error.status === 405 && !error.headers["Allow"]) headers.set("Allow", "GET, PUT, POST, DELETE, HEAD");
  return new Response(body, { status: error.status, headers });
}
