import type { Tag } from "../store/object-tags";
import { Errors } from "../errors";
import { buildXml, childArray, childText, parseXmlDocument } from "./xml";

/**
 * Object tag sets as S3 takes them: the <Tagging> document (PutObjectTagging, the POST
 * form's `tagging` field) and the `x-amz-tagging` header (PutObject, CopyObject with
 * REPLACE, CreateMultipartUpload), and S3's limits on them. Values are kept exactly as
 * sent: nothing here trims.
 */

export const MAX_OBJECT_TAGS = 10;
/** "A tag key can be up to 128 Unicode characters … internally represented in UTF-16": counted in UTF-16 code units. */
const MAX_KEY = 128;
const MAX_VALUE = 256;
/** Letters, numbers, white space and `_ . : / = + @ -` (AWS's tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]`). */
const ALLOWED = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

const HEADER_MESSAGE = "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.";

/** S3's checks, in S3's words; returns the set sorted by key (S3 answers tags in key order). */
export function validateTags(tags: Tag[]): Tag[] {
  if (tags.length > MAX_OBJECT_TAGS) throw Errors.BadRequest({}, "Object tags cannot be greater than 10");
  const seen = new Set<string>();
  for (const { key, value } of tags) {
    if (key.length === 0 || !ALLOWED.test(key)) throw Errors.InvalidTag({ TagKey: key }, "The TagKey you have provided is invalid");
    if (key.length > MAX_KEY) throw Errors.InvalidTag({ TagKey: key }, `The TagKey you have provided is too long, max ${MAX_KEY}`);
    if (value.length > MAX_VALUE) throw Errors.InvalidTag({ TagKey: key, TagValue: value }, `The TagValue you have provided is too long, max ${MAX_VALUE}`);
    if (!ALLOWED.test(value)) throw Errors.InvalidTag({ TagKey: key, TagValue: value }, "The TagValue you have provided is invalid");
    if (key.toLowerCase().startsWith("aws:")) throw Errors.InvalidTag({ TagKey: key }, "Your TagKey cannot be prefixed with aws:");
    if (seen.has(key)) throw Errors.InvalidTag({ TagKey: key }, "Cannot provide multiple Tags with the same key");
    seen.add(key);
  }
  return [...tags].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * `x-amz-tagging: k1=v1&k2=v2` — form-encoded (`+` is a space), a key without `=` has the
 * empty value. A pair with a second `=` or a key given twice is InvalidArgument, as S3
 * answers. Null when the header is absent.
 */
export function tagsFromHeader(headers: Headers): Tag[] | null {
  const raw = headers.get("x-amz-tagging");
  if (raw === null) return null;
  const invalid = () => Errors.InvalidArgument({ ArgumentName: "x-amz-tagging", ArgumentValue: raw }, HEADER_MESSAGE);
  const tags: Tag[] = [];
  const keys = new Set<string>();
  for (const pair of raw.split("&")) {
    if (pair === "") continue;
    const at = pair.indexOf("=");
    const [rawKey, rawValue] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
    if (rawValue.includes("=")) throw invalid();
    const key = formDecode(rawKey, invalid);
    if (keys.has(key)) throw invalid();
    keys.add(key);
    tags.push({ key, value: formDecode(rawValue, invalid) });
  }
  return validateTags(tags);
}

function formDecode(text: string, invalid: () => Error): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    throw invalid();
  }
}

/** The <Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging> document; Key and Value required. */
export function tagsFromXml(text: string): Tag[] {
  const doc = parseXmlDocument(text, "Tagging");
  if (!Object.hasOwn(doc, "TagSet")) throw Errors.MalformedXML();
  const set = (doc as Record<string, unknown>).TagSet;
  const tags: Tag[] = [];
  for (const entry of childArray(set, "Tag")) {
    const key = childText(entry, "Key");
    const value = childText(entry, "Value");
    if (key === undefined || value === undefined) throw Errors.MalformedXML();
    tags.push({ key, value });
  }
  return validateTags(tags);
}

export function taggingXml(tags: Tag[]): string {
  return buildXml("Tagging", { TagSet: { Tag: tags.map((t) => ({ Key: t.key, Value: t.value })) } });
}

/** The tag set as policy condition values (s3:RequestObjectTag/<key>, s3:ExistingObjectTag/<key>). */
export function tagMap(tags: Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t.key, t.value]));
}
