import { releaseBucket } from "../../multipart/lifecycle";
import { UploadStore } from "../../multipart/store";
import { bucketIsEmpty } from "../../objects/list";
import { invalidatePolicy } from "../../policy";
import { validBucketName } from "../addressing";
import { ObjectTagStore } from "../../store/object-tags";
import type { S3Context } from "../context";
import { requireBucket } from "../context";
import { Errors } from "../../errors";
import { buildXml, childToken, parseXmlDocument, xmlResponse } from "../xml";
import { readBodyText } from "./body-text";

export async function listBuckets(ctx: S3Context): Promise<Response> {
  const principal = ctx.principal;
  if (!principal) throw Errors.AccessDenied();
  const buckets = await ctx.services.buckets.listByTenant(principal.tenantId);
  return xmlResponse("ListAllMyBucketsResult", {
    Owner: { ID: principal.tenantId, DisplayName: principal.tenantId },
    Buckets: {
      Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: new Date(b.createdAt).toISOString(), BucketRegion: b.region })),
    },
  });
}

/** Shape of an AWS region name ("eu-west-1", "us-gov-east-1", the legacy "EU"). */
const REGION_NAME = /^(EU|[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+)$/;

export async function createBucket(ctx: S3Context): Promise<Response> {
  const principal = ctx.principal;
  if (!principal) throw Errors.AccessDenied();
  const name = ctx.address.bucket!;
  if (!validBucketName(name)) throw Errors.InvalidBucketName({ BucketName: name });
  const region = ctx.services.config.region;
  const text = await readBodyText(ctx, 64 * 1024);
  if (text.trim() !== "") {
    const config = parseXmlDocument(text, "CreateBucketConfiguration");
    const constraint = childToken(config, "LocationConstraint");
    // us-east-1 has no explicit constraint in S3; we accept our own region either way.
    if (constraint !== undefined && constraint !== "" && constraint !== region) {
      // Like a region-specific S3 endpoint: another real region is "incompatible", anything
      // else is not a location constraint at all.
      if (REGION_NAME.test(constraint)) {
        throw Errors.IllegalLocationConstraintException(
          { LocationConstraint: constraint },
          `The ${constraint} location constraint is incompatible for the region specific endpoint this request was sent to.`,
        );
      }
      throw Errors.InvalidLocationConstraint({ LocationConstraint: constraint });
    }
  }
  const { created, bucket } = await ctx.services.buckets.create({ name, tenantId: principal.tenantId, region });
  if (!created) {
    if (bucket.tenantId === principal.tenantId) {
      // AWS: "For legacy compatibility, if you re-create an existing bucket that you already
      // own in the North Virginia Region, Amazon S3 returns 200 OK"; elsewhere it is a 409.
      if (region === "us-east-1") return new Response(null, { status: 200, headers: { Location: `/${name}` } });
      throw Errors.BucketAlreadyOwnedByYou({ BucketName: name });
    }
    throw Errors.BucketAlreadyExists({ BucketName: name });
  }
  return new Response(null, { status: 200, headers: { Location: `/${name}` } });
}

export async function headBucket(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  return new Response(null, { status: 200, headers: { "x-amz-bucket-region": bucket.region } });
}

export async function deleteBucket(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  if (!(await bucketIsEmpty(ctx.services.objects.r2, bucket.name))) throw Errors.BucketNotEmpty({ BucketName: bucket.name });
  await ctx.services.buckets.delete(bucket.name);
  invalidatePolicy(bucket.name);
  // As in S3, uploads in progress do not keep a bucket alive: they are aborted with it
  // (and whatever a race leaves is retired by the scheduled multipart clean-up).
  await releaseBucket({ r2: ctx.services.objects.r2, store: new UploadStore(ctx.services.env.DB) }, bucket.name);
  // Tag rows of its (deleted) objects: a bucket of the same name starts without any.
  if (bucket.hasObjectTags) await new ObjectTagStore(ctx.services.env.DB).deleteBucket(bucket.name);
  return new Response(null, { status: 204 });
}

export async function getBucketLocation(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  // S3 answers an empty LocationConstraint for us-east-1.
  const body = buildXml("LocationConstraint", bucket.region === "us-east-1" ? {} : { "#text": bucket.region });
  return new Response(body, { headers: { "Content-Type": "application/xml" } });
}

/** Buckets are unversioned: an empty VersioningConfiguration, as S3 gives a never-versioned bucket. */
export async function getBucketVersioning(ctx: S3Context): Promise<Response> {
  requireBucket(ctx);
  return xmlResponse("VersioningConfiguration", {});
}

/** The canned "private" ACL: the owner has FULL_CONTROL (ACLs are not otherwise supported). */
export async function getAcl(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const owner = { ID: bucket.tenantId, DisplayName: bucket.tenantId };
  return xmlResponse("AccessControlPolicy", {
    Owner: owner,
    AccessControlList: {
      Grant: {
        Grantee: { "@_xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance", "@_xsi:type": "CanonicalUser", ...owner },
        Permission: "FULL_CONTROL",
      },
    },
  });
}
