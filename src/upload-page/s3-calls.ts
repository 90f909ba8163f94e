/**
 * The page backend's own S3 calls for multipart uploads (create, list parts, complete,
 * abort). Each is a request presigned with the page's key and handed to the S3 façade
 * in-process, so it passes exactly the checks a client's request would (signature, bucket
 * policy, SSE-KMS rules, TLS) and nothing here re-implements multipart semantics.
 */
import { Errors, S3Error } from "../errors";
import { handleS3 } from "../s3/dispatch";
import { newRequestId, toS3Error } from "../s3/respond";
import { childArray, childText, parseXmlDocument } from "../s3/xml";
import type { Services } from "../services";
import { presignUrl, type PresignTarget, type Signer } from "./signing";

export interface ObjectRef {
  origin: string;
  bucket: string;
  key: string;
}

export interface ListedPart {
  partNumber: number;
  size: number;
  etag: string;
}

async function call(services: Services, signer: Signer, target: Omit<PresignTarget, "expiresInSeconds">, body?: string): Promise<string> {
  const url = await presignUrl(signer, { ...target, expiresInSeconds: 60 });
  const requestId = newRequestId();
  let response: Response;
  try {
    response = await handleS3(new Request(url, { method: target.method, headers: target.headers, body }), services, requestId);
  } catch (error) {
    throw toS3Error(error, requestId);
  }
  const text = await response.text();
  // CompleteMultipartUpload may answer 200 with an <Error> document (S3 does, once it has started).
  const error = /<Error>[\s\S]*?<Code>([^<]*)<\/Code>[\s\S]*?<Message>([^<]*)<\/Message>/.exec(text);
  if (response.status >= 300 || error) throw new S3Error(error?.[1] ?? "InternalError", response.status >= 300 ? response.status : 500, error?.[2] ?? `HTTP ${response.status}`);
  return text;
}

/** CreateMultipartUpload with SSE-KMS (the bucket's tenant default key); the upload id. */
export async function createMultipartUpload(services: Services, signer: Signer, ref: ObjectRef, contentType: string): Promise<string> {
  const text = await call(services, signer, {
    method: "POST",
    ...ref,
    query: [["uploads", ""], ["x-amz-server-side-encryption", "aws:kms"]],
    headers: { "content-type": contentType },
  });
  const uploadId = childText(parseXmlDocument(text, "InitiateMultipartUploadResult"), "UploadId");
  if (!uploadId) throw Errors.InternalError({}, "CreateMultipartUpload answered without an UploadId.");
  return uploadId;
}

/** Every part of the upload (ListParts, all pages), in part-number order. */
export async function listAllParts(services: Services, signer: Signer, ref: ObjectRef, uploadId: string): Promise<ListedPart[]> {
  const parts: ListedPart[] = [];
  let marker = "0";
  for (;;) {
    const text = await call(services, signer, { method: "GET", ...ref, query: [["uploadId", uploadId], ["max-parts", "1000"], ["part-number-marker", marker]] });
    const result = parseXmlDocument(text, "ListPartsResult");
    for (const part of childArray(result, "Part")) {
      parts.push({ partNumber: Number(childText(part, "PartNumber")), size: Number(childText(part, "Size")), etag: childText(part, "ETag") ?? "" });
    }
    if (childText(result, "IsTruncated") !== "true") return parts;
    const next = childText(result, "NextPartNumberMarker");
    if (!next || next === marker) return parts;
    marker = next;
  }
}

export async function completeMultipartUpload(services: Services, signer: Signer, ref: ObjectRef, uploadId: string, parts: readonly ListedPart[]): Promise<void> {
  const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const body = `<CompleteMultipartUpload>${parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escape(p.etag)}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
  await call(services, signer, { method: "POST", ...ref, query: [["uploadId", uploadId]] }, body);
}

export async function abortMultipartUpload(services: Services, signer: Signer, ref: ObjectRef, uploadId: string): Promise<void> {
  await call(services, signer, { method: "DELETE", ...ref, query: [["uploadId", uploadId]] });
}
