import { XMLBuilder, XMLParser, XMLValidator, type EntityDecoderOptions } from "fast-xml-parser";
import { Errors } from "../errors";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/**
 * Characters XML 1.0 cannot carry literally, and CR and LF: S3 keys may contain them and S3
 * emits numeric references (clients that care ask for encoding-type=url), so do we. CR and
 * LF are legal but a literal CR (or CRLF) reaches the client's parser as LF (XML 1.0
 * §2.11), so a key "a\rb" would be listed as "a\nb"; S3 writes both as references
 * ("Object key naming guidelines", XML related object key constraints).
 */
const CONTROL = /[\x00-\x08\x0A-\x1F\uFFFE\uFFFF]/g;

export function escapeXml(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(CONTROL, (c) => `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`);
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  suppressEmptyNode: false,
  processEntities: false,
  tagValueProcessor: (_name, value) => escapeXml(String(value)),
  attributeValueProcessor: (_name, value) => escapeXml(String(value)),
});

/** Serialises `{ Root: {...} }`; arrays repeat the element, undefined fields are omitted. */
export function buildXml(root: string, body: Record<string, unknown>, namespace = true): string {
  const node = namespace ? { "@_xmlns": S3_XMLNS, ...body } : body;
  return DECLARATION + builder.build({ [root]: node });
}

export function xmlResponse(root: string, body: Record<string, unknown>, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/xml");
  return new Response(buildXml(root, body), { ...init, headers });
}

/** Elements that may repeat in the request documents we accept; always parsed as arrays. */
const REPEATING = new Set([
  "Part", "Object", "CORSRule", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader",
  "Rule", "Tag", "Grant",
]);

const PREDEFINED_ENTITIES = new Map([["lt", "<"], ["gt", ">"], ["amp", "&"], ["apos", "'"], ["quot", '"']]);

/**
 * A reference's replacement: XML's five predefined entities and character references
 * (`&#34;`, `&#x22;`). fast-xml-parser's own decoder leaves character references undecoded
 * unless HTML entities are switched on (which would also accept `&nbsp;` & co.), yet they
 * are plain XML: aws-sdk-go (rclone) writes the quotes of a Complete document's ETags as
 * `&#34;`, Go's encoding/xml writes `'`, tab and newlines in keys as `&#39;`, `&#x9;`,
 * `&#xA;`. Every code point a key can hold is decoded (C0 controls and U+FFFE/U+FFFF too:
 * listings emit them as references, see escapeXml); NUL, surrogates, out-of-range values,
 * undeclared entities and DTD-declared ones are errors (MalformedXML) — never dropped or
 * left literal, so a document cannot name another key than the client meant.
 */
function decodeReference(body: string): string {
  const named = PREDEFINED_ENTITIES.get(body);
  if (named !== undefined) return named;
  const digits = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(body);
  const cp = digits ? parseInt(digits[1] ?? digits[2]!, digits[1] ? 16 : 10) : NaN;
  if (!(cp >= 1 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) throw new Error("invalid entity or character reference");
  return String.fromCodePoint(cp);
}

/** fast-xml-parser's decoder interface; runs once over each text node (not CDATA). */
const xmlEntities: EntityDecoderOptions = {
  decode: (text) => text.replace(/&([^&;]*);/g, (_ref, body: string) => decodeReference(body)),
  setExternalEntities: () => {},
  addInputEntities: () => {}, // DTD entities are not expanded: using one is MalformedXML
  reset: () => {},
  setXmlVersion: () => {},
};

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  // Text is kept byte-exact: keys, ETags and every user-chosen value are xs:string in S3's
  // schema (whitespace preserved), so `<Key>_ </Key>` names "_ " and `<Key> </Key>` names
  // " ". Whitespace between elements (pretty-printed documents) is dropped by
  // dropLayoutText below instead. The parser still normalises literal CRLF and CR to LF in
  // text, as XML 1.0 §2.11 requires of every processor; a CR in a key arrives as &#xD;.
  trimValues: false,
  processEntities: true,
  entityDecoder: xmlEntities,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 32,
  isArray: (name) => REPEATING.has(name),
});

/** XML's whitespace (the S production); after line-end normalisation CR only comes from &#xD;. */
const XML_SPACE = /^[ \t\n\r]*$/;

/**
 * Removes whitespace-only text that sits between elements (indentation and line breaks of a
 * pretty-printed document): it is layout, not content. Text of an element without child
 * elements is left alone, so `<Key> </Key>` stays " ". Non-blank text mixed with elements
 * stays under "#text", which no reader looks at (as before).
 */
function dropLayoutText(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(dropLayoutText);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(node as Record<string, unknown>)) {
    if (name === "#text" && typeof value === "string" && XML_SPACE.test(value)) continue;
    out[name] = dropLayoutText(value);
  }
  return out;
}

/** Largest request document we parse (DeleteObjects with 1000 keys fits well under it). */
export const MAX_XML_BYTES = 2 * 1024 * 1024;

/**
 * Parses a request document and returns the content of its root element, or throws
 * MalformedXML. `root` is the element name AWS requires.
 */
export function parseXmlDocument(text: string, root: string): Record<string, unknown> {
  if (text.trim() === "" || XMLValidator.validate(text) !== true) throw Errors.MalformedXML();
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text) as Record<string, unknown>;
  } catch {
    throw Errors.MalformedXML();
  }
  const content = dropLayoutText(doc[root]);
  if (content === undefined) throw Errors.MalformedXML();
  // A root with no child elements: blank (`<Delete>\n</Delete>`) is empty content.
  if (typeof content === "string" && XML_SPACE.test(content)) return {};
  return content as Record<string, unknown>;
}

/**
 * Text of a child element that must appear at most once, exactly as sent (no trimming):
 * for keys, ETags, checksums, IDs, origins and every other user-chosen value.
 */
export function childText(node: unknown, name: string): string | undefined {
  if (!node || typeof node !== "object") return undefined;
  const value = (node as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value !== null && typeof value === "object" && Object.keys(value).length === 0) return "";
  throw Errors.MalformedXML();
}

/**
 * Text of a child element whose schema type is a token — a boolean, a number or an enum value
 * (Quiet, PartNumber, SSEAlgorithm, BucketKeyEnabled, LocationConstraint, AllowedMethod,
 * MaxAgeSeconds): leading and trailing XML whitespace is removed, as XML Schema's
 * whiteSpace="collapse" does for xs:boolean and xs:int and as this endpoint always has
 * (`<Quiet> true </Quiet>` is quiet). Never for values a user chose.
 */
export function childToken(node: unknown, name: string): string | undefined {
  return childText(node, name)?.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, "");
}

/** Texts of a repeatable child element, exactly as sent; an element inside one is MalformedXML. */
export function childTexts(node: unknown, name: string): string[] {
  return childArray(node, name).map((v) => {
    if (typeof v === "string") return v;
    if (v !== null && typeof v === "object" && Object.keys(v).length === 0) return "";
    throw Errors.MalformedXML();
  });
}

export function childArray(node: unknown, name: string): unknown[] {
  if (!node || typeof node !== "object") return [];
  const value = (node as Record<string, unknown>)[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
