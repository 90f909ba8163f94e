/**
 * The worker's AWS KMS JSON API (TrentService) called directly: SigV4 (service "kms") with
 * the SDK's own signer over plain fetch. Suites that only need a customer key or a key
 * state change use this instead of `aws kms`, so they run where aws-cli is not installed
 * (kms-cli.test.ts and key-lifecycle.test.ts drive `aws kms` itself).
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { expect } from "vitest";
import { endpoint, IDENTITIES, REGION, type IdentityName } from "./clients";

export async function kmsCall(
  who: IdentityName | { accessKeyId: string; secretAccessKey: string },
  operation: string,
  input: Record<string, unknown>,
  base = endpoint(),
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { accessKeyId, secretAccessKey } = typeof who === "string" ? IDENTITIES[who] : who;
  const url = new URL(base);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({ service: "kms", region: REGION, credentials: { accessKeyId, secretAccessKey }, sha256: Sha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: "/",
    headers: { host: url.host, "content-type": "application/x-amz-json-1.1", "x-amz-target": `TrentService.${operation}` },
    body,
  });
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name !== "host"));
  const response = await fetch(new URL("/", base), { method: "POST", headers, body });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A fresh customer key of `who`'s tenant. */
export async function createKmsKey(who: IdentityName, description: string, base = endpoint()): Promise<{ KeyId: string; Arn: string }> {
  const r = await kmsCall(who, "CreateKey", { Description: description }, base);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body["KeyMetadata"] as { KeyId: string; Arn: string };
}

/** A KMS call that must succeed (DisableKey, ScheduleKeyDeletion, ...). */
export async function kmsOk(who: IdentityName, operation: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await kmsCall(who, operation, input);
  expect(r.status, `${operation}: ${JSON.stringify(r.body)}`).toBe(200);
  return r.body;
}
