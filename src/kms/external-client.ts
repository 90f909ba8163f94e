import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";

/**
 * A minimal client of an external KMS that speaks the AWS KMS JSON protocol (AWS KMS,
 * LocalStack, moto, another instance of this gateway): POST / with
 * X-Amz-Target: TrentService.<Operation>, signed with SigV4 (service "kms") by the AWS
 * SDK's own signer — no signer of ours. Every call is bounded by a timeout; the caller
 * fails closed on anything but a 200.
 */
export interface ExternalTarget {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** Why an external call failed: the external KMS's error type, or Timeout / Unreachable / BadResponse. */
export class ExternalKmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = "ExternalKmsError";
  }

  /** The external KMS could not be asked (or answered 5xx): the caller should retry later. */
  get transient(): boolean {
    return this.status === null || this.status >= 500 || this.type === "ThrottlingException" || this.type === "DependencyTimeoutException";
  }
}

/** Calls made by this isolate, by operation (the admin API shows them; tests and the bench count them). */
export const externalCallCounts: Record<string, number> = {};

export async function callExternalKms(target: ExternalTarget, operation: string, input: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
  externalCallCounts[operation] = (externalCallCounts[operation] ?? 0) + 1;
  const url = new URL(target.endpoint);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({ service: "kms", region: target.region, credentials: target.credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname || "/",
    headers: { host: url.host, "content-type": "application/x-amz-json-1.1", "x-amz-target": `TrentService.${operation}` },
    body,
  });
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name !== "host"));
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let status: number;
  let text: string;
  try {
    const response = await fetch(url.toString(), { method: "POST", headers, body, signal: abort.signal });
    status = response.status;
    // The body read is under the same deadline: a KMS that stalls mid-answer is a timeout too.
    text = await response.text();
  } catch (error) {
    if (abort.signal.aborted) throw new ExternalKmsError("Timeout", `no answer within ${timeoutMs} ms`, null);
    throw new ExternalKmsError("Unreachable", error instanceof Error ? error.message : String(error), null);
  } finally {
    clearTimeout(timer);
  }
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text.trim() === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    throw new ExternalKmsError("BadResponse", `HTTP ${status} with a body that is not JSON`, status >= 500 ? status : 502);
  }
  if (status !== 200) {
    // "__type" is "DisabledException" or "com.amazonaws.kms#DisabledException" depending on the server.
    const type = String(parsed["__type"] ?? "UnknownError").split("#").pop()!;
    const message = String(parsed["message"] ?? parsed["Message"] ?? "");
    throw new ExternalKmsError(type, message, status);
  }
  return parsed;
}
