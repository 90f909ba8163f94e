import { Errors } from "../errors";

/**
 * ACLs are disabled, as on a bucket with S3 Object Ownership "BucketOwnerEnforced" (AWS's
 * default since April 2023 and the only setting here): the bucket owner owns every object
 * and access is granted by bucket policies alone. Writes may still name an ACL that grants
 * nothing beyond the owner's full control; any other ACL is refused rather than silently
 * ignored, so nobody believes an object became public or shared.
 */

/** Canned ACLs that grant nothing beyond the bucket owner's full control. */
const OWNER_ONLY_CANNED = new Set(["private", "bucket-owner-full-control"]);
const GRANT_HEADERS = ["x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write", "x-amz-grant-write-acp"];

/** POST Object's `acl` field, and x-amz-acl on object writes (canned ACL names are case-sensitive). */
export function assertOwnerOnlyCannedAcl(acl: string | null | undefined): void {
  if (acl === null || acl === undefined || OWNER_ONLY_CANNED.has(acl)) return;
  throw Errors.AccessControlListNotSupported();
}

/**
 * x-amz-acl / x-amz-grant-* on PutObject, CopyObject, CreateMultipartUpload and the
 * Put*Acl operations: 400 AccessControlListNotSupported unless they only grant the owner
 * (`ownerId`, the bucket owner's canonical id) full control.
 */
export function assertOwnerOnlyAclHeaders(headers: Headers, ownerId: string): void {
  assertOwnerOnlyCannedAcl(headers.get("x-amz-acl"));
  for (const name of GRANT_HEADERS) {
    const value = headers.get(name);
    if (value === null) continue;
    if (name === "x-amz-grant-full-control" && grantsOnly(value, ownerId)) continue;
    throw Errors.AccessControlListNotSupported();
  }
}

/** `id="<owner>"` (one or more times, comma-separated): the owner and nobody else. */
function grantsOnly(value: string, ownerId: string): boolean {
  return value.split(",").every((grantee) => {
    const m = /^\s*id\s*=\s*"?([^"]*)"?\s*$/i.exec(grantee);
    return m !== null && m[1] === ownerId;
  });
}

/**
 * CreateBucket: an ACL beyond "private" (or the creator's own full control) is 400
 * InvalidBucketAclWithObjectOwnership, as AWS answers for a BucketOwnerEnforced bucket.
 * x-amz-object-ownership may only ask for what buckets here are.
 */
export function assertCreateBucketAcl(headers: Headers, creatorId: string): void {
  const ownership = headers.get("x-amz-object-ownership");
  if (ownership !== null) assertObjectOwnership(ownership, () =>
    Errors.InvalidArgument({ ArgumentName: "x-amz-object-ownership", ArgumentValue: ownership }, `Invalid x-amz-object-ownership header: ${ownership}`),
  );
  const acl = headers.get("x-amz-acl");
  const grantsOthers = GRANT_HEADERS.some((name) => {
    const value = headers.get(name);
    return value !== null && !(name === "x-amz-grant-full-control" && grantsOnly(value, creatorId));
  });
  if ((acl !== null && acl !== "private") || grantsOthers) throw Errors.InvalidBucketAclWithObjectOwnership();
}

/**
 * The three values AWS knows: BucketOwnerEnforced is what every bucket here is; the two
 * that would turn ACLs on are not implemented (501); anything else is the caller's error.
 */
export function assertObjectOwnership(value: string, invalid: () => Error): void {
  if (value === "BucketOwnerEnforced") return;
  if (value === "ObjectWriter" || value === "BucketOwnerPreferred") {
    throw Errors.NotImplemented({}, `Object ownership ${value} would enable ACLs; this endpoint keeps ACLs disabled (BucketOwnerEnforced).`);
  }
  throw invalid();
}
