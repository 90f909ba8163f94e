/** Multipart helpers for workerd tests: signed requests through the worker, raw D1/R2 views. */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { send, xmlValue, xmlValues, type Send, type Who } from "./s3-harness";
import { concatBytes } from "./sources";

export const MiB = 1024 * 1024;

export async function createUpload(who: Who, bucket: string, key: string, headers: Record<string, string> = {}, extra: Partial<Send> = {}): Promise<string> {
  const r = await send(who, { method: "POST", bucket, key, query: { uploads: "" }, headers, ...extra });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  return xmlValue(text, "UploadId")!;
}

export function uploadPartRequest(who: Who, bucket: string, key: string, uploadId: string, partNumber: number, body: Uint8Array, headers: Record<string, string> = {}, extra: Partial<Send> = {}) {
  return send(who, { method: "PUT", bucket, key, query: { partNumber: String(partNumber), uploadId }, body, headers, ...extra });
}

export async function uploadPart(who: Who, bucket: string, key: string, uploadId: string, partNumber: number, body: Uint8Array, headers: Record<string, string> = {}): Promise<string> {
  const r = await uploadPartRequest(who, bucket, key, uploadId, partNumber, body, headers);
  expect(r.status, await r.clone().text()).toBe(200);
  return r.headers.get("etag")!;
}

export function completeXml(parts: Array<{ partNumber: number; etag: string; extra?: string }>): string {
  const items = parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${p.etag}</ETag>${p.extra ?? ""}</Part>`).join("");
  return `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${items}</CompleteMultipartUpload>`;
}

export function completeRequest(who: Who, bucket: string, key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string; extra?: string }>, extra: Partial<Send> = {}) {
  return send(who, { method: "POST", bucket, key, query: { uploadId }, body: completeXml(parts), ...extra });
}

/** Create → parts → complete; returns the upload id, the part ETags and the completion response text. */
export async function multipartPut(who: Who, bucket: string, key: string, parts: Uint8Array[], headers: Record<string, string> = {}) {
  const uploadId = await createUpload(who, bucket, key, headers);
  const etags: string[] = [];
  for (const [i, body] of parts.entries()) etags.push(await uploadPart(who, bucket, key, uploadId, i + 1, body));
  const r = await completeRequest(who, bucket, key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
  const text = await r.text();
  expect(r.status, text).toBe(200);
  return { uploadId, etags, text, etag: xmlValue(text, "ETag")!, headers: r.headers };
}

export function concat(parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** Everything D1 and R2 hold for an upload id. */
export async function traces(uploadId: string): Promise<{ uploads: number; parts: number; objects: number; r2: string[] }> {
  const count = async (table: string) =>
    (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE upload_id = ?`).bind(uploadId).first<{ n: number }>())!.n;
  const listed = await env.OBJECTS.list({ prefix: `_mpu/${uploadId}/` });
  return {
    uploads: await count("multipart_uploads"),
    parts: await count("multipart_parts"),
    objects: await count("multipart_objects"),
    r2: listed.objects.map((o) => o.key),
  };
}

export { xmlValue, xmlValues };
