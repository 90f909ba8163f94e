import { XMLBuilder, XMLParser, XMLValidator, type EntityDecoderOptions } from "fast-xml-parser";
import { Errors } from "./errors";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/**
 * Characters XML 1.0 cannot carry literally. S3 keys may contain them; S3 emits numeric
 * references (clients that care ask for encoding-type=url), so do we.
 */
const CONTROL = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/g;

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

/** Elements whose text is an object key: kept byte for byte (S3 keys may be " " or end in spaces). */
const VERBATIM = new Set(["Key"]);

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  // Every other value is trimmed (and whitespace between elements dropped), as before; a
  // trimmed <Key> made DeleteObjects of "  a" delete "a", and of " " answer MalformedXML.
  trimValues: false,
  tagValueProcessor: (name, value) => (VERBATIM.has(name) ? value : value.trim()),
  processEntities: true,
  entityDecoder: xmlEntities,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 32,
  isArray: (name) => REPEATING.has(name),
});

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
  const content = doc[root];
  if (content === undefined) throw Errors.MalformedXML();
  return content === "" ? {} : (content as Record<string, unknown>);
}

/** Text of a child element that must appear at most once. */
export function childText(node: unknown, name: string): string | undefined {
  if (!node || typeof node !== "object") return undefined;
  const value = (node as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value !== null && typeof value === "object" && Object.keys(value).length === 0) return "";
  throw Errors.MalformedXML();
}

export function childArray(node: unknown, name: string): unknown[] {
  if (!node || typeof node !== "object") return [];
  const value = (node as Record<string, unknown>)[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
