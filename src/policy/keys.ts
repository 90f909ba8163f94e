/**
 * Condition keys a policy may name. Names are case-insensitive in IAM, so everything
 * here (and every key in a request's condition context) is lowercase.
 *
 * Keys this endpoint never populates (aws:SourceVpc, aws:PrincipalOrgID, …) are still
 * accepted: they are real AWS keys, policies copied from AWS use them, and an absent key
 * evaluates exactly as it does on AWS for a request that does not carry it.
 */

/** Keys the context builder fills from request facts. */
export const POPULATED_KEYS = [
  "aws:currenttime",
  "aws:epochtime",
  "aws:securetransport",
  "aws:sourceip",
  "aws:referer",
  "aws:useragent",
  "aws:principalaccount",
  "aws:principalarn",
  "aws:principaltype",
  "aws:username",
  "aws:userid",
  "s3:x-amz-server-side-encryption",
  "s3:x-amz-server-side-encryption-aws-kms-key-id",
  "s3:x-amz-server-side-encryption-customer-algorithm",
  "s3:x-amz-content-sha256",
  "s3:x-amz-metadata-directive",
  "s3:x-amz-acl",
  "s3:x-amz-copy-source",
  "s3:prefix",
  "s3:delimiter",
  "s3:max-keys",
  "s3:signatureversion",
  "s3:authtype",
  "s3:tlsversion",
  "s3:signatureage",
  "s3:requestobjecttagkeys",
] as const;

const OTHER_AWS_KEYS = [
  "aws:principalorgid",
  "aws:principalorgpaths",
  "aws:principalisawsservice",
  "aws:principalservicename",
  "aws:principalservicenamelist",
  "aws:sourcevpc",
  "aws:sourcevpce",
  "aws:vpcsourceip",
  "aws:sourcearn",
  "aws:sourceaccount",
  "aws:sourceowner",
  "aws:sourceorgid",
  "aws:sourceorgpaths",
  "aws:sourceidentity",
  "aws:resourceaccount",
  "aws:resourceorgid",
  "aws:resourceorgpaths",
  "aws:multifactorauthpresent",
  "aws:multifactorauthage",
  "aws:tokenissuetime",
  "aws:viaawsservice",
  "aws:calledvia",
  "aws:calledviafirst",
  "aws:calledvialast",
  "aws:requestedregion",
  "aws:tagkeys",
  "aws:federatedprovider",
  "s3:x-amz-storage-class",
  "s3:x-amz-grant-read",
  "s3:x-amz-grant-write",
  "s3:x-amz-grant-read-acp",
  "s3:x-amz-grant-write-acp",
  "s3:x-amz-grant-full-control",
  "s3:x-amz-object-ownership",
  "s3:x-amz-website-redirect-location",
  "s3:locationconstraint",
  "s3:versionid",
  "s3:resourceaccount",
  "s3:accesspointnetworkorigin",
  "s3:dataaccesspointarn",
  "s3:dataaccesspointaccount",
  "s3:object-lock-mode",
  "s3:object-lock-retain-until-date",
  "s3:object-lock-remaining-retention-days",
  "s3:object-lock-legal-hold",
  "s3:objectcreationoperation",
  "s3:if-match",
  "s3:if-none-match",
];

const KNOWN = new Set<string>([...POPULATED_KEYS, ...OTHER_AWS_KEYS]);

/** Families whose suffix is a tag key: `s3:ExistingObjectTag/<key>` and friends. */
const TAG_FAMILIES = [
  "s3:existingobjecttag/",
  "s3:requestobjecttag/",
  "aws:requesttag/",
  "aws:resourcetag/",
  "aws:principaltag/",
];

/** The lowercase canonical name of a valid key, or null for an unknown one. */
export function canonicalKey(name: string): string | null {
  const key = name.toLowerCase();
  if (KNOWN.has(key)) return key;
  for (const family of TAG_FAMILIES) {
    // A tag key is 1-128 characters; `/` and control characters cannot appear in it.
    if (key.startsWith(family) && key.length > family.length && key.length - family.length <= 128) {
      return /[\x00-\x1f/]/.test(key.slice(family.length)) ? null : key;
    }
  }
  return null;
}

const PUT_OBJECT = ["s3:PutObject"];
const PUT_OBJECT_OR_CREATE_BUCKET = ["s3:PutObject", "s3:CreateBucket"];
const LIST_OBJECTS = ["s3:ListBucket", "s3:ListBucketVersions"];
/** Actions that carry a request tag set (x-amz-tagging or a Tagging document). */
const REQUEST_TAGS = ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"];
/** Actions on an existing object whose tags AWS puts in the request context. */
const EXISTING_TAGS = [
  "s3:GetObject",
  "s3:GetObjectVersion",
  "s3:GetObjectAcl",
  "s3:GetObjectVersionAcl",
  "s3:GetObjectTagging",
  "s3:GetObjectVersionTagging",
  "s3:PutObjectAcl",
  "s3:PutObjectVersionAcl",
  "s3:PutObjectTagging",
  "s3:PutObjectVersionTagging",
  "s3:DeleteObjectTagging",
  "s3:DeleteObjectVersionTagging",
];

/**
 * S3 keys AWS defines only for some actions (Service Authorization Reference, "Actions
 * defined by Amazon S3", condition keys column, for the actions this endpoint implements).
 * In a request for any other action AWS's request context does not hold them, whatever the
 * request carries: a GetObject with `?prefix=home/alice/` has no s3:prefix, so a statement
 * conditioned on s3:prefix cannot grant it. Keys not listed here apply to every action.
 */
const ACTION_SCOPED_KEYS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  (
    [
      ["s3:prefix", LIST_OBJECTS],
      ["s3:delimiter", LIST_OBJECTS],
      ["s3:max-keys", LIST_OBJECTS],
      ["s3:x-amz-server-side-encryption", PUT_OBJECT],
      ["s3:x-amz-server-side-encryption-aws-kms-key-id", PUT_OBJECT],
      ["s3:x-amz-server-side-encryption-customer-algorithm", PUT_OBJECT],
      ["s3:x-amz-storage-class", PUT_OBJECT],
      ["s3:x-amz-website-redirect-location", PUT_OBJECT],
      ["s3:x-amz-metadata-directive", PUT_OBJECT],
      ["s3:x-amz-copy-source", PUT_OBJECT],
      ["s3:requestobjecttagkeys", REQUEST_TAGS],
      ["s3:objectcreationoperation", PUT_OBJECT],
      ["s3:object-lock-mode", PUT_OBJECT],
      ["s3:object-lock-retain-until-date", PUT_OBJECT],
      ["s3:object-lock-remaining-retention-days", PUT_OBJECT],
      ["s3:object-lock-legal-hold", PUT_OBJECT],
      ["s3:if-none-match", PUT_OBJECT],
      ["s3:if-match", ["s3:PutObject", "s3:DeleteObject"]],
      ["s3:x-amz-acl", PUT_OBJECT_OR_CREATE_BUCKET],
      ["s3:x-amz-grant-read", PUT_OBJECT_OR_CREATE_BUCKET],
      ["s3:x-amz-grant-write", PUT_OBJECT_OR_CREATE_BUCKET],
      ["s3:x-amz-grant-read-acp", PUT_OBJECT_OR_CREATE_BUCKET],
      ["s3:x-amz-grant-write-acp", PUT_OBJECT_OR_CREATE_BUCKET],
      ["s3:x-amz-grant-full-control", PUT_OBJECT_OR_CREATE_BUCKET],
      ["s3:x-amz-object-ownership", ["s3:CreateBucket"]],
      ["s3:locationconstraint", ["s3:CreateBucket"]],
      ["s3:versionid", ["s3:GetObjectVersion", "s3:DeleteObjectVersion"]],
      ["aws:tagkeys", ["s3:CreateBucket"]],
    ] as const
  ).map(([key, actions]) => [key, new Set<string>(actions)]),
);

/** Tag-key families, scoped the same way. */
const ACTION_SCOPED_FAMILIES: readonly (readonly [string, ReadonlySet<string>])[] = [
  ["s3:requestobjecttag/", new Set(REQUEST_TAGS)],
  ["s3:existingobjecttag/", new Set(EXISTING_TAGS)],
  ["aws:requesttag/", new Set(["s3:CreateBucket"])],
];

/** Is the (lowercase) key part of AWS's request context for this action? */
export function keyDefinedFor(key: string, action: string): boolean {
  const scoped = ACTION_SCOPED_KEYS.get(key);
  if (scoped) return scoped.has(action);
  for (const [family, actions] of ACTION_SCOPED_FAMILIES) if (key.startsWith(family)) return actions.has(action);
  return true;
}
