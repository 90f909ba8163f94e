import type { S3Action } from "../policy";
import type { Address } from "./addressing";
import type { S3Context } from "./context";
import { Errors } from "../errors";
import * as acl from "./handlers/acl";
import * as buckets from "./handlers/buckets";
import * as cors from "./handlers/cors";
import { deleteObjects } from "./handlers/delete-objects";
import * as encryption from "./handlers/encryption";
import * as lifecycle from "./handlers/lifecycle";
import * as list from "./handlers/list";
import * as multipart from "./handlers/multipart";
import * as multipartList from "./handlers/multipart-list";
import { getObjectAttributes } from "./handlers/object-attributes";
import * as objectTagging from "./handlers/object-tagging";
import * as objects from "./handlers/objects";
import * as ownership from "./handlers/ownership";
import * as policy from "./handlers/policy";
import { postObject } from "./handlers/post-object";
import * as publicAccess from "./handlers/public-access";
import * as tagging from "./handlers/tagging";

export type Handler = (ctx: S3Context) => Promise<Response>;

/**
 * One S3 API operation. `action` is the IAM action bucket policies are evaluated against
 * (null: the handler authorizes, e.g. per key in DeleteObjects); `config` marks
 * bucket-configuration operations that only the owning tenant may call.
 */
export interface Operation {
  name: string;
  action: S3Action | null;
  needsBucket: boolean;
  config?: "policy" | "owner";
  /** Its body is object data (PutObject, UploadPart, POST Object): held to MAX_REQUEST_BODY_BYTES. */
  uploadsData?: true;
  /** GetObject/HeadObject: when the policy tests s3:ExistingObjectTag, the handler authorizes with the object's tags. */
  existingTags?: boolean;
  handler: Handler;
}

const op = (name: string, action: S3Action | null, handler: Handler, extra: Partial<Operation> = {}): Operation => ({
  name,
  action,
  handler,
  needsBucket: action !== null && action !== "s3:ListAllMyBuckets",
  ...extra,
});

/** Registry that later modules (multipart, CORS, POST Object) extend. */
export const extraOperations: Array<(method: string, address: Address, query: URLSearchParams, headers: Headers) => Operation | null> = [];

/**
 * Sub-resources S3 has that this endpoint does not implement: 501 at once, never a 500.
 */
const UNIMPLEMENTED = [
  "accelerate", "analytics", "intelligent-tiering", "inventory", "legal-hold", "logging", "metrics", "notification",
  "object-lock", "replication", "requestPayment", "restore", "retention", "select",
  "torrent", "website", "renameObject", "metadataTable", "session",
];

function notImplemented(name: string): Operation {
  return op(name, null, async () => {
    throw Errors.NotImplemented({}, `The ${name} operation is not implemented by this endpoint.`);
  }, { needsBucket: false });
}

/**
 * The tagging handlers authorize themselves (action null): the policy may test the
 * object's current tags and the body's, known only once they are loaded.
 */
function objectTaggingOperation(m: string): Operation {
  switch (m) {
    case "GET":
      return op("GetObjectTagging", null, objectTagging.getObjectTagging, { needsBucket: true });
    case "PUT":
      return op("PutObjectTagging", null, objectTagging.putObjectTagging, { needsBucket: true });
    case "DELETE":
      return op("DeleteObjectTagging", null, objectTagging.deleteObjectTagging, { needsBucket: true });
  }
  throw Errors.MethodNotAllowed({ Method: m, ResourceType: "OBJECT" });
}

export function resolveOperation(method: string, address: Address, query: URLSearchParams, headers: Headers): Operation {
  for (const resolve of extraOperations) {
    const found = resolve(method, address, query, headers);
    if (found) return found;
  }
  const m = method.toUpperCase();
  // Object tagging (?tagging on a key); bucket tagging is in the bucket switch below.
  if (address.bucket !== null && address.key !== null && query.has("tagging")) return objectTaggingOperation(m);
  for (const sub of UNIMPLEMENTED) if (query.has(sub)) return notImplemented(sub);

  if (address.bucket === null) {
    if (m === "GET") return op("ListBuckets", "s3:ListAllMyBuckets", buckets.listBuckets, { needsBucket: false });
    throw Errors.MethodNotAllowed({ Method: m, ResourceType: "SERVICE" });
  }

  if (address.key === null) {
    switch (m) {
      case "GET":
        if (query.has("location")) return op("GetBucketLocation", "s3:GetBucketLocation", buckets.getBucketLocation);
        if (query.has("policyStatus")) return op("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", policy.getBucketPolicyStatus, { config: "policy" });
        if (query.has("policy")) return op("GetBucketPolicy", "s3:GetBucketPolicy", policy.getBucketPolicy, { config: "policy" });
        if (query.has("cors")) return op("GetBucketCors", "s3:GetBucketCORS", cors.getBucketCors, { config: "owner" });
        if (query.has("encryption")) return op("GetBucketEncryption", "s3:GetEncryptionConfiguration", encryption.getBucketEncryption, { config: "owner" });
        if (query.has("versioning")) return op("GetBucketVersioning", "s3:ListBucket", buckets.getBucketVersioning);
        if (query.has("acl")) return op("GetBucketAcl", "s3:ListBucket", acl.getAcl, { config: "owner" });
        if (query.has("lifecycle")) return op("GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", lifecycle.getBucketLifecycle, { config: "owner" });
        if (query.has("publicAccessBlock")) return op("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", publicAccess.getPublicAccessBlock, { config: "owner" });
        if (query.has("ownershipControls")) return op("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", ownership.getOwnershipControls, { config: "owner" });
        if (query.has("tagging")) return op("GetBucketTagging", "s3:GetBucketTagging", tagging.getBucketTagging, { config: "owner" });
        if (query.has("versions")) return op("ListObjectVersions", "s3:ListBucketVersions", list.listObjectVersions);
        if (query.has("uploads")) return op("ListMultipartUploads", "s3:ListBucketMultipartUploads", multipartList.listMultipartUploads);
        if (query.get("list-type") === "2") return op("ListObjectsV2", "s3:ListBucket", list.listObjectsV2);
        return op("ListObjects", "s3:ListBucket", list.listObjectsV1);
      case "HEAD":
        return op("HeadBucket", "s3:ListBucket", buckets.headBucket);
      case "PUT":
        if (query.has("policy")) return op("PutBucketPolicy", "s3:PutBucketPolicy", policy.putBucketPolicy, { config: "policy" });
        if (query.has("encryption")) return op("PutBucketEncryption", "s3:PutEncryptionConfiguration", encryption.putBucketEncryption, { config: "owner" });
        if (query.has("cors")) return op("PutBucketCors", "s3:PutBucketCORS", cors.putBucketCors, { config: "owner" });
        if (query.has("lifecycle")) return op("PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration", lifecycle.putBucketLifecycle, { config: "owner" });
        if (query.has("publicAccessBlock")) return op("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock", publicAccess.putPublicAccessBlock, { config: "owner" });
        if (query.has("ownershipControls")) return op("PutBucketOwnershipControls", "s3:PutBucketOwnershipControls", ownership.putOwnershipControls, { config: "owner" });
        if (query.has("tagging")) return op("PutBucketTagging", "s3:PutBucketTagging", tagging.putBucketTagging, { config: "owner" });
        if (query.has("acl")) return op("PutBucketAcl", "s3:PutBucketAcl", acl.putAcl, { config: "owner" });
        if (query.has("versioning")) return notImplemented("PutBucketVersioning");
        return op("CreateBucket", null, buckets.createBucket, { needsBucket: false });
      case "DELETE":
        if (query.has("policy")) return op("DeleteBucketPolicy", "s3:DeleteBucketPolicy", policy.deleteBucketPolicy, { config: "policy" });
        if (query.has("cors")) return op("DeleteBucketCors", "s3:PutBucketCORS", cors.deleteBucketCors, { config: "owner" });
        if (query.has("encryption")) return op("DeleteBucketEncryption", "s3:PutEncryptionConfiguration", encryption.deleteBucketEncryption, { config: "owner" });
        if (query.has("lifecycle")) return op("DeleteBucketLifecycle", "s3:PutLifecycleConfiguration", lifecycle.deleteBucketLifecycle, { config: "owner" });
        if (query.has("publicAccessBlock")) return op("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock", publicAccess.deletePublicAccessBlock, { config: "owner" });
        if (query.has("ownershipControls")) return op("DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls", ownership.deleteOwnershipControls, { config: "owner" });
        if (query.has("tagging")) return op("DeleteBucketTagging", "s3:PutBucketTagging", tagging.deleteBucketTagging, { config: "owner" });
        return op("DeleteBucket", "s3:DeleteBucket", buckets.deleteBucket, { config: "owner" });
      case "POST":
        if (query.has("delete")) return op("DeleteObjects", null, deleteObjects, { needsBucket: true });
        // Browser form upload: authenticated by the form's signed policy, authorized per key by its handler.
        return op("PostObject", null, postObject, { needsBucket: true, uploadsData: true });
    }
    throw Errors.MethodNotAllowed({ Method: m, ResourceType: "BUCKET" });
  }

  switch (m) {
    case "GET":
      if (query.has("acl")) return op("GetObjectAcl", "s3:GetObject", acl.getAcl);
      if (query.has("uploadId")) return op("ListParts", "s3:ListMultipartUploadParts", multipartList.listParts);
      if (query.has("attributes")) return op("GetObjectAttributes", "s3:GetObjectAttributes", getObjectAttributes);
      return op("GetObject", "s3:GetObject", objects.getObject, { existingTags: true });
    case "HEAD":
      return op("HeadObject", "s3:GetObject", objects.headObject, { existingTags: true });
    case "PUT":
      if (query.has("acl")) return op("PutObjectAcl", "s3:PutObjectAcl", acl.putAcl);
      // UploadPart(Copy) and Complete are s3:PutObject, authorized by their handlers with the
      // upload's recorded encryption as the policy's SSE condition keys.
      if (query.has("uploadId") && headers.has("x-amz-copy-source")) return op("UploadPartCopy", null, multipart.uploadPartCopy, { needsBucket: true });
      if (query.has("uploadId")) return op("UploadPart", null, multipart.uploadPart, { needsBucket: true, uploadsData: true });
      if (headers.has("x-amz-copy-source")) return op("CopyObject", "s3:PutObject", objects.copyObjectHandler);
      return op("PutObject", "s3:PutObject", objects.putObject, { uploadsData: true });
    case "DELETE":
      if (query.has("uploadId")) return op("AbortMultipartUpload", "s3:AbortMultipartUpload", multipart.abortMultipartUpload);
      return op("DeleteObject", "s3:DeleteObject", objects.deleteObject);
    case "POST":
      if (query.has("uploads")) return op("CreateMultipartUpload", "s3:PutObject", multipart.createMultipartUpload);
      if (query.has("uploadId")) return op("CompleteMultipartUpload", null, multipart.completeMultipartUpload, { needsBucket: true });
      break;
  }
  throw Errors.MethodNotAllowed({ Method: m, ResourceType: "OBJECT" });
}
