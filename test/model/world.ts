/**
 * The real side of the model run: the five principals (the three seeded identities, a
 * member of tenant B added here the way seeding adds users, and anonymous), requests
 * through the worker's fetch handler (test/support/s3-harness.ts `send`), POST forms, and
 * the bucket policy templates as JSON.
 */
import { env } from "cloudflare:workers";
import { makeServices } from "../../src/services";
import { obsDenyUnencryptedPolicy } from "../support/obs-policy";
import { amzDate, encodePolicy, multipartBody, signV4, v4Fields } from "../support/post-form";
import { CREDENTIALS, HOST, TENANT_B, fetchWorker, seedIdentities, send, type Send } from "../support/s3-harness";
import type { PolicyTemplate, PrincipalName } from "./model";

export const MEMBER_B = { accessKeyId: "LOCALMEMBERB", secretAccessKey: "local-member-b-secret" } as const;

/** The seeded identities plus memberB (a member of tenant B), idempotent. */
export async function seedWorld(): Promise<void> {
  await seedIdentities();
  const { identities } = makeServices(env);
  const user = (await identities.findUser(TENANT_B, "member-b")) ?? (await identities.createUser({ tenantId: TENANT_B, name: "member-b", role: "member" }));
  const keys = await identities.listAccessKeys(user.id);
  if (!keys.some((k) => k.accessKeyId === MEMBER_B.accessKeyId)) await identities.createAccessKey({ userId: user.id, accessKeyId: MEMBER_B.accessKeyId, secret: MEMBER_B.secretAccessKey });
}

export function credentialsOf(p: PrincipalName): { accessKeyId: string; secretAccessKey: string } | null {
  return p === "anonymous" ? null : p === "memberB" ? MEMBER_B : CREDENTIALS[p];
}

/** One request as `p` (SigV4 with p's keys, or unsigned for anonymous). */
export function request(p: PrincipalName, c: Send): Promise<Response> {
  const credentials = credentialsOf(p);
  return send("adminA", credentials ? { ...c, credentials } : { ...c, anonymous: true });
}

/** POST Object form as `p` (SigV4-signed policy; anonymous: key and file only), success status 204. */
export async function postForm(p: PrincipalName, bucket: string, key: string, file: Uint8Array, sse: string | null): Promise<Response> {
  const credentials = credentialsOf(p);
  const sseField = sse ? { "x-amz-server-side-encryption": sse } : {};
  let parts;
  if (credentials) {
    const date = amzDate();
    const fields = { bucket, ...v4Fields(credentials.accessKeyId, date), ...sseField };
    const policy = encodePolicy([...Object.entries(fields).map(([k, v]) => ({ [k]: v })), ["starts-with", "$key", ""]]);
    parts = [
      { name: "key", value: key },
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: "Policy", value: policy },
      { name: "X-Amz-Signature", value: await signV4(policy, credentials.secretAccessKey, date) },
    ];
  } else {
    parts = [{ name: "key", value: key }, ...Object.entries(sseField).map(([name, value]) => ({ name, value }))];
  }
  const form = multipartBody([...parts, { name: "file", file, filename: "f.bin", contentType: "application/octet-stream" }]);
  return fetchWorker(`http://${HOST}/${bucket}`, { method: "POST", headers: { "content-type": form.contentType }, body: form.body, redirect: "manual" });
}

/** The policy templates as documents (every Principal is "*": anonymous included). */
export function policyDocument(t: PolicyTemplate, bucket: string): string | null {
  const resources = [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`];
  const doc = (statement: Record<string, unknown>) => JSON.stringify({ Version: "2012-10-17", Statement: [{ Principal: "*", Resource: resources, ...statement }] });
  switch (t) {
    case "none":
      return null;
    case "allowAll":
      return doc({ Effect: "Allow", Action: "s3:*" });
    case "readOnly":
      return doc({ Effect: "Allow", Action: ["s3:GetObject", "s3:ListBucket"] });
    case "denyDelete":
      return doc({ Effect: "Deny", Action: "s3:DeleteObject" });
    case "obsDenyUnencrypted":
      return obsDenyUnencryptedPolicy(bucket);
  }
}

/** A PutBucketEncryption document; `sseC` set: with BlockedEncryptionTypes (else the switch stays as it is). */
export function encryptionDocument(mode: string, sseC?: "allow" | "block"): string {
  const blocked = sseC ? `<BlockedEncryptionTypes><EncryptionType>${sseC === "allow" ? "NONE" : "SSE-C"}</EncryptionType></BlockedEncryptionTypes>` : "";
  return `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>${mode}</SSEAlgorithm></ApplyServerSideEncryptionByDefault>${blocked}</Rule></ServerSideEncryptionConfiguration>`;
}

/** The model's SSE-C keys (base64 and base64 MD5): the objects' own, and another one. */
export const CUSTOMER_KEYS = {
  right: { key: "ERERERERERERERERERERERERERERERERERERERERERE=", md5: "YSbdkQDUu1vJkAgt83fvFg==" },
  wrong: { key: "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=", md5: "xv6yX+D2J8md48okxcNG+A==" },
} as const;

/** SSE-C request headers for one of the model's keys. */
export function customerKeyHeaders(which: "right" | "wrong"): Record<string, string> {
  const k = CUSTOMER_KEYS[which];
  return {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": k.key,
    "x-amz-server-side-encryption-customer-key-MD5": k.md5,
  };
}

/** x-amz-copy-source for bucket/key, URL-encoded per segment. */
export function copySource(bucket: string, key: string): string {
  return `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

export function escapeXmlText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\t/g, "&#x9;");
}
