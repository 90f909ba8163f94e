/**
 * Files above one part go up as a multipart upload the browser drives and the worker
 * grants step by step. Every step after `create` names its upload by the receipt alone,
 * so a visitor can act only on an upload the page created for them:
 *
 *   POST /_upload/multipart/create   {filename, size, contentType} → {key, uploadId, partSize, partCount, receipt}
 *                                    (CreateMultipartUpload with SSE-KMS, as the page's POST)
 *   POST /_upload/multipart/sign     {receipt, partNumber} → {url, length}: a presigned UploadPart
 *                                    (1 hour) with content-length signed, so each part has its exact size
 *   POST /_upload/multipart/parts    {receipt} → {parts: [{partNumber, size, etag}]} (ListParts; resuming)
 *   POST /_upload/multipart/complete {receipt} → {key}: completes with the parts listed, once all are there
 *   POST /_upload/multipart/abort    {receipt} → {aborted: true}
 */
import type { Context, Hono } from "hono";
import { makeServices } from "../services";
import { authorize, ensureBucket, newPrefix, pageSigner, requireReceipt, type PageEnv } from "./access";
import { partSizeFor } from "./config";
import { PageError, readJsonObject } from "./json-body";
import { issueReceipt } from "./receipt";
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listAllParts, type ListedPart, type ObjectRef } from "./s3-calls";
import { presignUrl } from "./signing";

const PART_URL_TTL_SECONDS = 60 * 60;
const MAX_FILENAME_CHARS = 255;

interface Upload {
  ref: ObjectRef;
  uploadId: string;
  size: number;
  partSize: number;
  partCount: number;
}

export function addMultipartRoutes(app: Hono<PageEnv>): void {
  app.post("/multipart/create", async (c) => {
    const config = c.get("config");
    authorize(c, config);
    const body = await readJsonObject(c.req.raw);
    const filename = fileName(body.filename);
    const size = body.size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 1) throw new PageError(400, "InvalidArgument", "size must be the file's size in bytes (a positive integer).");
    if (size > config.maxBytes) throw new PageError(400, "EntityTooLarge", `The file is larger than ${config.maxBytes} bytes, the largest this page accepts.`);
    const partSize = partSizeFor(config, size);
    if (partSize === null) throw new PageError(400, "EntityTooLarge", "The file needs more than 10,000 parts of the largest part size.");
    const contentType = typeof body.contentType === "string" && /^[\x21-\x7e][\x20-\x7e]{0,254}$/.test(body.contentType) ? body.contentType : "application/octet-stream";

    const services = makeServices(c.env);
    const signer = await pageSigner(services, config);
    await ensureBucket(services, config, signer.tenantId);
    const prefix = newPrefix();
    const ref: ObjectRef = { origin: new URL(c.req.url).origin, bucket: config.bucket, key: `${prefix}${filename}` };
    const uploadId = await createMultipartUpload(services, signer, ref, contentType);
    const receipt = await issueReceipt(c.env, config.accessKeyId, { b: config.bucket, p: prefix, k: ref.key, u: uploadId, s: size, ps: partSize });
    return c.json({ key: ref.key, uploadId, partSize, partCount: Math.ceil(size / partSize), receipt });
  });

  app.post("/multipart/sign", async (c) => {
    const { upload, body } = await multipartRequest(c);
    const partNumber = body.partNumber;
    if (typeof partNumber !== "number" || !Number.isInteger(partNumber) || partNumber < 1 || partNumber > upload.partCount) {
      throw new PageError(400, "InvalidArgument", `partNumber must be an integer from 1 to ${upload.partCount}.`);
    }
    const length = partLength(upload, partNumber);
    const config = c.get("config");
    const signer = await pageSigner(makeServices(c.env), config);
    const url = await presignUrl(signer, {
      method: "PUT",
      ...upload.ref,
      query: [["partNumber", String(partNumber)], ["uploadId", upload.uploadId]],
      headers: { "content-length": String(length) },
      expiresInSeconds: PART_URL_TTL_SECONDS,
    });
    return c.json({ url, partNumber, length });
  });

  app.post("/multipart/parts", async (c) => {
    const { upload } = await multipartRequest(c);
    const services = makeServices(c.env);
    const parts = await listAllParts(services, await pageSigner(services, c.get("config")), upload.ref, upload.uploadId);
    return c.json({ parts: parts.filter((p) => p.partNumber <= upload.partCount && p.size === partLength(upload, p.partNumber)) });
  });

  app.post("/multipart/complete", async (c) => {
    const { upload } = await multipartRequest(c);
    const services = makeServices(c.env);
    const signer = await pageSigner(services, c.get("config"));
    const listed = new Map<number, ListedPart>();
    for (const part of await listAllParts(services, signer, upload.ref, upload.uploadId)) listed.set(part.partNumber, part);
    const parts: ListedPart[] = [];
    const missing: number[] = [];
    for (let n = 1; n <= upload.partCount; n++) {
      const part = listed.get(n);
      if (part && part.size === partLength(upload, n)) parts.push(part);
      else missing.push(n);
    }
    if (missing.length > 0) {
      const shown = missing.slice(0, 20).join(", ") + (missing.length > 20 ? ", …" : "");
      return c.json({ error: `Parts not uploaded yet: ${shown}.`, code: "PartsMissing", missing }, 409);
    }
    await completeMultipartUpload(services, signer, upload.ref, upload.uploadId, parts);
    return c.json({ key: upload.ref.key });
  });

  app.post("/multipart/abort", async (c) => {
    const { upload } = await multipartRequest(c);
    const services = makeServices(c.env);
    await abortMultipartUpload(services, await pageSigner(services, c.get("config")), upload.ref, upload.uploadId);
    return c.json({ aborted: true });
  });
}

/** Token, body and a multipart receipt: the upload the request is about. */
async function multipartRequest(c: Context<PageEnv>): Promise<{ upload: Upload; body: Record<string, unknown> }> {
  const config = c.get("config");
  authorize(c, config);
  const body = await readJsonObject(c.req.raw);
  const claims = await requireReceipt(c, config, body.receipt);
  if (claims.k === undefined || claims.u === undefined || claims.s === undefined || claims.ps === undefined) {
    throw new PageError(403, "InvalidReceipt", "This receipt is not for a multipart upload.");
  }
  const upload = { ref: { origin: new URL(c.req.url).origin, bucket: claims.b, key: claims.k }, uploadId: claims.u, size: claims.s, partSize: claims.ps, partCount: Math.ceil(claims.s / claims.ps) };
  return { upload, body };
}

function partLength(upload: Upload, partNumber: number): number {
  return partNumber < upload.partCount ? upload.partSize : upload.size - (upload.partCount - 1) * upload.partSize;
}

/** The last path segment of the browser's file name, as POST Object does with ${filename}. */
function fileName(value: unknown): string {
  const name = typeof value === "string" ? (value.split(/[\\/]/).pop() ?? "").trim() : "";
  if (name === "" || name === "." || name === ".." || name.length > MAX_FILENAME_CHARS || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new PageError(400, "InvalidArgument", `filename must be a file name of 1 to ${MAX_FILENAME_CHARS} characters.`);
  }
  return name;
}
