import { objectExpiry, parseStoredRules, type LifecycleRule, type RuleFilter, type TagFilter } from "../../lifecycle/rules";
import type { Bucket } from "../../store/buckets";
import { requireBucket, type S3Context } from "../context";
import { Errors } from "../../errors";
import { childArray, childText, xmlResponse } from "../xml";
import { readBodyXml, requireIntegrityHeader } from "./body-text";

/**
 * Put/Get/DeleteBucketLifecycleConfiguration with AWS's XML and validation. Expiration
 * (Days, Date) and AbortIncompleteMultipartUpload are carried out by the scheduled job
 * (src/lifecycle/job.ts). Transitions are not implemented (objects have one storage class);
 * NoncurrentVersionExpiration and ExpiredObjectDeleteMarker are accepted and kept but
 * have nothing to act on, buckets being unversioned.
 */
const MAX_RULES = 1000;
const MAX_ID_LENGTH = 255;

export async function putBucketLifecycle(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  // S3 requires Content-MD5 (or a flexible checksum) on PutBucketLifecycleConfiguration.
  requireIntegrityHeader(ctx.request.headers);
  const doc = await readBodyXml(ctx, "LifecycleConfiguration");
  const nodes = childArray(doc, "Rule");
  if (nodes.length === 0) throw Errors.MalformedXML();
  if (nodes.length > MAX_RULES) throw Errors.InvalidRequest({}, `The number of lifecycle rules must not exceed the allowed limit of ${MAX_RULES} rules`);
  const rules = nodes.map(parseRule);
  const ids = new Set<string>();
  for (const rule of rules) {
    if (ids.has(rule.id)) throw Errors.InvalidArgument({ ArgumentName: "ID", ArgumentValue: rule.id }, "Rule ID must be unique. Found same ID for more than one rule");
    ids.add(rule.id);
  }
  await ctx.services.buckets.setSetting(bucket.name, "lifecycle", JSON.stringify(rules));
  return new Response(null, { status: 200, headers: TRANSITION_DEFAULT });
}

export async function getBucketLifecycle(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  const rules = parseStoredRules(bucket.lifecycle);
  if (rules.length === 0) throw Errors.NoSuchLifecycleConfiguration({ BucketName: bucket.name });
  return xmlResponse("LifecycleConfiguration", { Rule: rules.map((r) => r.xml) }, { headers: TRANSITION_DEFAULT });
}

export async function deleteBucketLifecycle(ctx: S3Context): Promise<Response> {
  const bucket = requireBucket(ctx);
  await ctx.services.buckets.setSetting(bucket.name, "lifecycle", null);
  return new Response(null, { status: 204 });
}

/** AWS answers lifecycle operations with the transition size default in force (2024 on). */
const TRANSITION_DEFAULT = { "x-amz-transition-default-minimum-object-size": "all_storage_classes_128K" };

/**
 * x-amz-expiration for GET/HEAD/PUT of an object an enabled Expiration rule covers:
 * `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="picture-deletion-rule"`.
 */
export function expirationHeader(bucket: Bucket, key: string, size: number, lastModified: Date): string | null {
  if (bucket.lifecycle === null) return null;
  const expiry = objectExpiry(parseStoredRules(bucket.lifecycle), key, size, lastModified.getTime());
  if (!expiry) return null;
  // A header value is Latin-1 and the quotes delimit it: other IDs go percent-encoded.
  const id = /^[\x20-\x21\x23-\x7e]*$/.test(expiry.ruleId) ? expiry.ruleId : encodeURIComponent(expiry.ruleId);
  return `expiry-date="${new Date(expiry.at).toUTCString()}", rule-id="${id}"`;
}

type Node = Record<string, unknown>;

function asNode(value: unknown): Node {
  if (value === "" || value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw Errors.MalformedXML();
  return value as Node;
}

/** A child element that may appear at most once (the parser gives repeated ones as an array). */
function single(node: Node, name: string): Node | undefined {
  const value = node[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw Errors.MalformedXML();
  return asNode(value);
}

/** An xs:int / xs:long: whitespace around the digits is not part of the value. */
function integer(node: Node, name: string): number | undefined {
  const text = childText(node, name);
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!/^[+-]?\d{1,16}$/.test(trimmed)) throw Errors.MalformedXML();
  return Number(trimmed);
}

function parseRule(value: unknown): LifecycleRule {
  const node = asNode(value);
  const rawId = childText(node, "ID");
  if (rawId !== undefined && rawId.length > MAX_ID_LENGTH) {
    throw Errors.InvalidArgument({ ArgumentName: "ID", ArgumentValue: rawId }, `ID length should not exceed allowed limit of ${MAX_ID_LENGTH}`);
  }
  // Like AWS, a rule without an ID gets a generated one.
  const id = rawId === undefined || rawId === "" ? randomId() : rawId;
  const status = childText(node, "Status")?.trim();
  if (status !== "Enabled" && status !== "Disabled") throw Errors.MalformedXML();

  const legacyPrefix = childText(node, "Prefix");
  const filterNode = single(node, "Filter");
  if ((legacyPrefix === undefined) === (filterNode === undefined)) throw Errors.MalformedXML();
  const { filter, xml: filterXml } = filterNode ? parseFilter(filterNode) : { filter: emptyFilter(legacyPrefix!), xml: undefined };

  if (node["Transition"] !== undefined || node["NoncurrentVersionTransition"] !== undefined || node["Transitions"] !== undefined) {
    throw Errors.NotImplemented({}, "Lifecycle transitions are not implemented: objects here have a single storage class.");
  }
  const rule: LifecycleRule = { id, enabled: status === "Enabled", filter, xml: {} };
  const xml: Node = { ID: id, ...(filterXml ? { Filter: filterXml } : { Prefix: legacyPrefix }), Status: status };
  const hasTags = filter.tags.length > 0;
  const hasSize = filter.sizeGreaterThan !== undefined || filter.sizeLessThan !== undefined;

  const expirationNode = single(node, "Expiration");
  if (expirationNode) xml["Expiration"] = parseExpiration(expirationNode, rule, hasTags);
  const noncurrent = single(node, "NoncurrentVersionExpiration");
  if (noncurrent) {
    const days = integer(noncurrent, "NoncurrentDays");
    if (days === undefined) throw Errors.MalformedXML();
    if (days <= 0) throw Errors.InvalidArgument({ ArgumentName: "NoncurrentDays", ArgumentValue: String(days) }, "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer");
    const newer = integer(noncurrent, "NewerNoncurrentVersions");
    xml["NoncurrentVersionExpiration"] = { NoncurrentDays: days, ...(newer !== undefined ? { NewerNoncurrentVersions: newer } : {}) };
  }
  const abort = single(node, "AbortIncompleteMultipartUpload");
  if (abort) {
    const days = integer(abort, "DaysAfterInitiation");
    if (days === undefined) throw Errors.MalformedXML();
    if (days <= 0) {
      throw Errors.InvalidArgument({ ArgumentName: "DaysAfterInitiation", ArgumentValue: String(days) }, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer");
    }
    if (hasTags || hasSize) throw Errors.InvalidRequest({}, "AbortIncompleteMultipartUpload cannot be specified with Tags or Object Size");
    rule.abortAfterDays = days;
    xml["AbortIncompleteMultipartUpload"] = { DaysAfterInitiation: days };
  }
  if (!expirationNode && !noncurrent && !abort) throw Errors.InvalidRequest({}, "At least one action needs to be specified in a rule");
  rule.xml = xml;
  return rule;
}

function parseExpiration(node: Node, rule: LifecycleRule, hasTags: boolean): Node {
  const days = integer(node, "Days");
  const dateText = childText(node, "Date")?.trim();
  const marker = childText(node, "ExpiredObjectDeleteMarker")?.trim();
  if ([days, dateText, marker].filter((v) => v !== undefined).length !== 1) throw Errors.MalformedXML();
  if (days !== undefined) {
    if (days <= 0) throw Errors.InvalidArgument({ ArgumentName: "Days", ArgumentValue: String(days) }, "'Days' for Expiration action must be a positive integer");
    rule.expiration = { days };
    return { Days: days };
  }
  if (dateText !== undefined) {
    // ISO 8601 (a date alone, or a date-time with a zone); it must be a midnight UTC.
    if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(dateText)) throw Errors.InvalidArgument({ ArgumentName: "Date", ArgumentValue: dateText }, "Invalid date");
    const date = Date.parse(dateText);
    if (Number.isNaN(date)) throw Errors.InvalidArgument({ ArgumentName: "Date", ArgumentValue: dateText }, "Invalid date");
    if (date % (24 * 3600 * 1000) !== 0) throw Errors.InvalidArgument({ ArgumentName: "Date", ArgumentValue: dateText }, "'Date' must be at midnight GMT");
    rule.expiration = { date };
    return { Date: new Date(date).toISOString() };
  }
  if (marker !== "true" && marker !== "false") throw Errors.MalformedXML();
  if (hasTags) throw Errors.InvalidRequest({}, "ExpiredObjectDeleteMarker cannot be specified with Tags.");
  return { ExpiredObjectDeleteMarker: marker === "true" };
}

function emptyFilter(prefix: string): RuleFilter {
  return { prefix, tags: [] };
}

/** A Filter holds exactly one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan, And (or nothing: every object). */
function parseFilter(node: Node): { filter: RuleFilter; xml: Node } {
  const present = ["Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"].filter((n) => node[n] !== undefined);
  if (present.length > 1) throw Errors.MalformedXML();
  const and = single(node, "And");
  const source = and ?? node;
  const prefix = childText(source, "Prefix");
  const tags = childArray(source, "Tag").map(parseTag);
  if (!and && tags.length > 1) throw Errors.MalformedXML();
  const gt = integer(source, "ObjectSizeGreaterThan");
  const lt = integer(source, "ObjectSizeLessThan");
  if (gt !== undefined && gt < 0) throw Errors.InvalidArgument({ ArgumentName: "ObjectSizeGreaterThan", ArgumentValue: String(gt) }, "'ObjectSizeGreaterThan' must be a non-negative integer");
  if (lt !== undefined && lt <= 0) throw Errors.InvalidArgument({ ArgumentName: "ObjectSizeLessThan", ArgumentValue: String(lt) }, "'ObjectSizeLessThan' must be a positive integer");
  if (gt !== undefined && lt !== undefined && gt >= lt) {
    throw Errors.InvalidArgument({ ArgumentName: "ObjectSizeGreaterThan", ArgumentValue: String(gt) }, "'ObjectSizeGreaterThan' should be less than 'ObjectSizeLessThan'");
  }
  const keys = new Set<string>();
  for (const t of tags) {
    if (keys.has(t.Key)) throw Errors.InvalidRequest({}, "Duplicate Tag Keys are not allowed.");
    keys.add(t.Key);
  }
  const filter: RuleFilter = { prefix: prefix ?? "", tags, ...(gt !== undefined ? { sizeGreaterThan: gt } : {}), ...(lt !== undefined ? { sizeLessThan: lt } : {}) };
  const inner: Node = {
    ...(prefix !== undefined ? { Prefix: prefix } : {}),
    ...(tags.length > 0 ? { Tag: tags } : {}),
    ...(gt !== undefined ? { ObjectSizeGreaterThan: gt } : {}),
    ...(lt !== undefined ? { ObjectSizeLessThan: lt } : {}),
  };
  return { filter, xml: and ? { And: inner } : inner };
}

function parseTag(value: unknown): TagFilter {
  const node = asNode(value);
  const Key = childText(node, "Key");
  const Value = childText(node, "Value");
  if (Key === undefined || Value === undefined) throw Errors.MalformedXML();
  if ([...Key].length < 1 || [...Key].length > 128) throw Errors.InvalidTag({ TagKey: Key }, "The TagKey you have provided is invalid");
  if ([...Value].length > 256) throw Errors.InvalidTag({ TagKey: Key, TagValue: Value }, "The TagValue you have provided is invalid");
  return { Key, Value };
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(36));
  return btoa(String.fromCharCode(...bytes));
}
