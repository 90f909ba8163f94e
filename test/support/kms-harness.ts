/**
 * Test helpers for the key-lifecycle suites inside workerd: KMS JSON API calls signed with
 * the AWS SDK's SigV4 signer (service "kms"), S3 calls with per-call environment
 * overrides (extra master secrets), and the admin API.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { env } from "cloudflare:workers";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { CREDENTIALS, HOST, type Who } from "./worker-client";
import { encodeKey } from "./sigv4-oracle";

/** Test-only master secrets for rotation tests (never used outside tests). */
export const MASTER_V1 = (env as unknown as Record<string, string>)["MASTER_KEY_V1"]!;
export const MASTER_V2 = btoa("test-master-key-version-two--32b");
export const MASTER_V3 = btoa("test-master-key-version-three-32");

/** The worker's env with some variables replaced (undefined removes one). */
export function envWith(overrides: Record<string, string | undefined>): Env {
  const merged: Record<string, unknown> = { ...(env as unknown as Record<string, unknown>) };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return merged as unknown as Env;
}

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

function dispatch(request: Request, e: Env = env as unknown as Env): Promise<Response> {
  return worker.fetch(request, e, ctx) as Promise<Response>;
}

export interface KmsResult {
  status: number;
  body: Record<string, unknown>;
}

/** Calls TrentService.<op> as an AWS client would. */
export async function kms(who: Who, op: string, input: unknown = {}, options: { env?: Env; credentials?: { accessKeyId: string; secretAccessKey: string } } = {}): Promise<KmsResult> {
  const body = JSON.stringify(input);
  const headers: Record<string, string> = { host: HOST, "content-type": "application/x-amz-json-1.1", "x-amz-target": `TrentService.${op}` };
  const signer = new SignatureV4({ service: "kms", region: "us-east-1", credentials: options.credentials ?? CREDENTIALS[who], sha256: Sha256, uriEscapePath: true });
  const signed = await signer.sign({ method: "POST", protocol: "https:", hostname: HOST, path: "/", query: {}, headers, body });
  const h = new Headers();
  for (const [k, v] of Object.entries(signed.headers)) if (k !== "host") h.set(k, v);
  const response = await dispatch(new Request(`https://${HOST}/`, { method: "POST", headers: h, body }), options.env);
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Expects a KMS error of `type` (HTTP 400 unless given) and returns its message. */
export function errorType(result: KmsResult): string | undefined {
  return result.body["__type"] as string | undefined;
}

export interface S3Call {
  method: string;
  bucket: string;
  key?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  query?: Record<string, string>;
}

/** A SigV4 S3 request (https, so SSE-KMS transport rules pass) under an optional env. */
export async function s3(who: Who, c: S3Call, e?: Env): Promise<Response> {
  const path = "/" + c.bucket + (c.key !== undefined ? "/" + encodeKey(c.key) : "");
  const bodyBytes = typeof c.body === "string" ? new TextEncoder().encode(c.body) : c.body;
  const headers: Record<string, string> = { host: HOST, ...(c.headers ?? {}) };
  if (bodyBytes !== undefined) headers["content-length"] = String(bodyBytes.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bodyBytes ?? new Uint8Array(0)));
  headers["x-amz-content-sha256"] = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const signer = new SignatureV4({ service: "s3", region: "us-east-1", credentials: CREDENTIALS[who], sha256: Sha256, uriEscapePath: false });
  const query = c.query ?? {};
  const signed = await signer.sign({ method: c.method, protocol: "https:", hostname: HOST, path, query, headers, body: bodyBytes });
  const h = new Headers();
  for (const [k, v] of Object.entries(signed.headers)) if (k !== "host") h.set(k, v);
  const qs = Object.keys(query)
    .sort()
    .map((k) => (query[k] === "" ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(query[k]!)}`))
    .join("&");
  return dispatch(new Request(`https://${HOST}${path}${qs ? "?" + qs : ""}`, { method: c.method, headers: h, body: bodyBytes }), e);
}

export async function s3Code(response: Response): Promise<string | null> {
  const text = await response.text();
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? null;
}

/** Calls the admin API with the test admin token. */
export async function adminCall(method: string, path: string, body?: unknown, e?: Env): Promise<{ status: number; json: Record<string, unknown> }> {
  const request = new Request(`https://${HOST}/_admin${path}`, {
    method,
    headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const response = await dispatch(request, e);
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

let counter = 0;
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
