/**
 * Tamper campaign: an attacker with write access to R2 (but not to the master secret or
 * D1) edits stored objects directly. Every edit must be refused — an error status, or a
 * body that aborts — and no response may end cleanly with (a prefix of) the plaintext.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { makeServices } from "../../src/services";
import { concatBytes, pseudoRandom } from "../support/sources";
import { containsBytes, createBucket, rawGet, rawPut, readFully, sameBytes, seedIdentities, send, TENANT_A, TENANT_B, uniqueBucket, type RawObject } from "../support/s3-harness";

const bucket = uniqueBucket("tamper");
const sibling = uniqueBucket("tamper-sib");
const foreign = uniqueBucket("tamper-b");

const HEADER = 32;
const CHUNK = 65536;
const SEALED = CHUNK + 16;
const SIZE = 3 * CHUNK + 3392; // three full chunks and a partial final one
/** The trailer record after the final chunk (FORMAT.md §3a): the object's checksum, sealed. */
const TRAILER = 52;
const plaintext = pseudoRandom(SIZE, 1234);
const twinText = pseudoRandom(SIZE, 4321);
const CONTEXT = btoa(JSON.stringify({ app: "tamper" }));

let original: RawObject;
let twin: RawObject;
let olderVersion: RawObject;
let otherKeyArn = "";

const chunkStart = (i: number) => HEADER + i * SEALED;
const chunkEnd = (i: number, total: number) => Math.min(chunkStart(i) + SEALED, total);

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

function clone(raw: RawObject): RawObject {
  return { body: raw.body.slice(), customMetadata: { ...raw.customMetadata }, httpMetadata: { ...raw.httpMetadata } };
}

function flip(body: Uint8Array, offset: number, bit = 0): Uint8Array {
  const out = body.slice();
  out[offset]! ^= 1 << bit;
  return out;
}

function chunks(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = HEADER; at < body.byteLength; at += SEALED) out.push(body.slice(at, Math.min(at + SEALED, body.byteLength)));
  return out;
}

type Envelope = Record<string, unknown>;

function withEnvelope(raw: RawObject, edit: (e: Envelope) => void): RawObject {
  const out = clone(raw);
  const envelope = JSON.parse(out.customMetadata["sse-envelope"]!) as Envelope;
  edit(envelope);
  out.customMetadata["sse-envelope"] = JSON.stringify(envelope);
  return out;
}

function flipBase64(value: unknown, offset = 0): string {
  const bytes = Uint8Array.from(atob(String(value)), (c) => c.charCodeAt(0));
  bytes[offset % bytes.length]! ^= 0x01;
  return btoa(String.fromCharCode(...bytes));
}

function withBody(raw: RawObject, body: Uint8Array): RawObject {
  return { ...clone(raw), body };
}

interface Outcome {
  status: number;
  errored: boolean;
  bytes: Uint8Array;
}

/** `bytes` is what a successful response served (an error document counts as nothing served). */
async function attempt(method: "GET" | "HEAD", key: string, range?: string, b = bucket, who: "adminA" | "adminB" = "adminA", checksumMode = false): Promise<Outcome> {
  const headers: Record<string, string> = { ...(range ? { range } : {}), ...(checksumMode ? { "x-amz-checksum-mode": "ENABLED" } : {}) };
  const r = await send(who, { method, bucket: b, key, headers });
  const { bytes, errored } = await readFully(r);
  return { status: r.status, errored, bytes: r.status >= 400 ? new Uint8Array(0) : bytes };
}

/** Refused: an error status or an aborted body; never the plaintext (or a clean prefix of it). */
function expectRefused(o: Outcome, what: string, expected: Uint8Array = plaintext): void {
  const refused = o.status >= 400 || o.errored;
  expect(refused, `${what}: status ${o.status}, clean end with ${o.bytes.byteLength} bytes`).toBe(true);
  if (o.bytes.byteLength > 0) expect(sameBytes(o.bytes, expected), `${what}: served the plaintext`).toBe(false);
  if (o.status >= 400) expect(o.status, what).toBeLessThan(600);
}

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  await createBucket("adminA", sibling);
  await createBucket("adminB", foreign);
  const headers = {
    "x-amz-server-side-encryption": "aws:kms",
    "x-amz-server-side-encryption-context": CONTEXT,
    "content-type": "application/x-victim",
    "x-amz-meta-color": "blue",
  };
  expect((await send("adminA", { method: "PUT", bucket, key: "victim", body: plaintext, headers })).status).toBe(200);
  expect((await send("adminA", { method: "PUT", bucket, key: "twin", body: twinText, headers })).status).toBe(200);
  // An older version of another key: its chunks are under the same CMK but another data key.
  expect((await send("adminA", { method: "PUT", bucket, key: "versioned", body: twinText, headers })).status).toBe(200);
  olderVersion = (await rawGet(bucket, "versioned"))!;
  expect((await send("adminA", { method: "PUT", bucket, key: "versioned", body: plaintext, headers })).status).toBe(200);
  original = (await rawGet(bucket, "victim"))!;
  twin = (await rawGet(bucket, "twin"))!;
  expect(original.body.byteLength).toBe(HEADER + SIZE + 4 * 16 + TRAILER);
  const other = await makeServices(env).keys.registry.create({ tenantId: TENANT_A, region: "us-east-1", kind: "customer" });
  otherKeyArn = other.arn;
});

describe("the stored object", () => {
  it("is readable before any tampering (control)", async () => {
    await rawPut(bucket, "victim", original);
    const o = await attempt("GET", "victim");
    expect(o.status).toBe(200);
    expect(o.errored).toBe(false);
    expect(sameBytes(o.bytes, plaintext)).toBe(true);
  });

  it("never contains the plaintext: no 32-byte window of it appears in the raw body or metadata", async () => {
    const text = new TextEncoder().encode("The quick brown fox jumps over the lazy dog. ".repeat(5000));
    expect((await send("adminA", { method: "PUT", bucket, key: "text", body: text, headers: { "x-amz-server-side-encryption": "aws:kms" } })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket, key: "text-s3", body: text, headers: { "x-amz-server-side-encryption": "AES256" } })).status).toBe(200);
    for (const [key, plain] of [["text", text], ["text-s3", text], ["victim", plaintext]] as const) {
      const raw = (await rawGet(bucket, key))!;
      const metadata = new TextEncoder().encode(JSON.stringify(raw.customMetadata));
      for (let offset = 0; offset + 32 <= plain.byteLength; offset += 997) {
        const window = plain.subarray(offset, offset + 32);
        expect(containsBytes(raw.body, window), `${key} window at ${offset}`).toBe(false);
        expect(containsBytes(metadata, window), `${key} metadata window at ${offset}`).toBe(false);
      }
    }
  });
});

interface BodyCase {
  name: string;
  body: () => Uint8Array;
  /** Ranges that read the damaged part and must be refused as well. */
  ranges?: string[];
  /** HEAD must be refused too (the stored size no longer matches). */
  head?: boolean;
  /** HEAD and GET with x-amz-checksum-mode: ENABLED must be refused (they read the trailer record). */
  checksum?: boolean;
}

const last = (b: Uint8Array) => b.byteLength - 1;

const bodyCases: BodyCase[] = [
  { name: "magic byte of the header", body: () => flip(original.body, 0) },
  { name: "version byte of the header", body: () => flip(original.body, 3) },
  { name: "part number in the header", body: () => flip(original.body, 7) },
  { name: "plaintext length in the header", body: () => flip(original.body, 15) },
  { name: "salt in the header", body: () => flip(original.body, 20, 7) },
  { name: "whole header zeroed", body: () => concat(new Uint8Array(HEADER), original.body.subarray(HEADER)) },
  { name: "first byte of chunk 0", body: () => flip(original.body, chunkStart(0)), ranges: ["bytes=0-0", "bytes=0-99"] },
  { name: "middle of chunk 2", body: () => flip(original.body, chunkStart(2) + 30_000, 3), ranges: ["bytes=131072-131100", "bytes=160000-"] },
  { name: "the final, partial chunk", body: () => flip(original.body, chunkStart(3) + 5), ranges: ["bytes=-1", "bytes=196608-"] },
  { name: "tag of chunk 1", body: () => flip(original.body, chunkEnd(1, original.body.byteLength) - 1), ranges: ["bytes=65536-65540"] },
  { name: "first tag byte of chunk 0", body: () => flip(original.body, chunkStart(0) + CHUNK), ranges: ["bytes=10-20"] },
  { name: "final tag", body: () => flip(original.body, last(original.body) - TRAILER, 7), ranges: ["bytes=-10"] },
  { name: "trailer record, last byte (its tag)", checksum: true, body: () => flip(original.body, last(original.body), 7) },
  { name: "trailer record, first byte (the algorithm)", checksum: true, body: () => flip(original.body, original.body.byteLength - TRAILER) },
  { name: "trailer record, a value byte", checksum: true, body: () => flip(original.body, original.body.byteLength - TRAILER + 6, 2) },
  {
    name: "trailer record of another object under the same CMK",
    checksum: true,
    body: () => concat(original.body.subarray(0, original.body.byteLength - TRAILER), twin.body.subarray(twin.body.byteLength - TRAILER)),
  },
  { name: "trailer record zeroed", checksum: true, body: () => concat(original.body.subarray(0, original.body.byteLength - TRAILER), new Uint8Array(TRAILER)) },
  { name: "trailer record cut off", head: true, checksum: true, body: () => original.body.subarray(0, original.body.byteLength - TRAILER), ranges: ["bytes=-5", "bytes=0-5"] },
  {
    name: "chunks 0 and 1 swapped",
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[1]!, c[0]!, c[2]!, c[3]!);
    },
    ranges: ["bytes=0-10", "bytes=65536-65546"],
  },
  {
    name: "chunks 1 and 2 swapped",
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[0]!, c[2]!, c[1]!, c[3]!);
    },
    ranges: ["bytes=70000-140000"],
  },
  {
    name: "chunk 0 duplicated over chunk 1",
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[0]!, c[0]!, c[2]!, c[3]!);
    },
    ranges: ["bytes=65536-65546"],
  },
  {
    name: "chunk 1 dropped",
    head: true,
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[0]!, c[2]!, c[3]!);
    },
    ranges: ["bytes=0-10", "bytes=-10"],
  },
  {
    name: "final chunk dropped",
    head: true,
    body: () => original.body.subarray(0, chunkStart(3)),
    ranges: ["bytes=0-10", "bytes=-10"],
  },
  {
    name: "chunk 1 duplicated (inserted again)",
    head: true,
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[0]!, c[1]!, c[1]!, c[2]!, c[3]!);
    },
    ranges: ["bytes=0-10"],
  },
  { name: "final chunk appended again", head: true, body: () => concat(original.body, chunks(original.body)[3]!), ranges: ["bytes=-5"] },
  { name: "one byte appended", head: true, body: () => concat(original.body, new Uint8Array([0])), ranges: ["bytes=-5"] },
  { name: "a whole zero chunk appended", head: true, body: () => concat(original.body, new Uint8Array(SEALED)), ranges: ["bytes=0-5"] },
  { name: "truncated by one byte", head: true, body: () => original.body.subarray(0, last(original.body)), ranges: ["bytes=-5"] },
  { name: "final tag cut off", head: true, body: () => original.body.subarray(0, original.body.byteLength - 16), ranges: ["bytes=-5"] },
  { name: "truncated to the header", head: true, body: () => original.body.subarray(0, HEADER) },
  { name: "truncated in the middle of chunk 1", head: true, body: () => original.body.subarray(0, chunkStart(1) + 1000) },
  { name: "empty body", head: true, body: () => new Uint8Array(0) },
  {
    name: "chunk 1 spliced from another object under the same CMK",
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[0]!, chunks(twin.body)[1]!, c[2]!, c[3]!);
    },
    ranges: ["bytes=65536-65546"],
  },
  { name: "the whole body of another object under the same CMK", body: () => twin.body.slice(), ranges: ["bytes=0-5", "bytes=-5"] },
  { name: "header of another object", body: () => concat(twin.body.subarray(0, HEADER), original.body.subarray(HEADER)) },
  {
    name: "chunk 1 spliced from an older version of another key",
    body: () => {
      const c = chunks(original.body);
      return concat(original.body.subarray(0, HEADER), c[0]!, chunks(olderVersion.body)[1]!, c[2]!, c[3]!);
    },
    ranges: ["bytes=65536-65546"],
  },
  {
    name: "the plaintext itself, padded to the stored length",
    body: () => concat(plaintext, new Uint8Array(original.body.byteLength - SIZE)),
    ranges: ["bytes=0-5", "bytes=100000-100005"],
  },
];

/**
 * Reads the untouched original first, with checksum mode, so the isolate has just verified
 * its metadata, facts and trailer record (objects/verified-memo.ts): each edit must be
 * refused although the same data key was verified a moment ago.
 */
async function warmOriginal(): Promise<void> {
  await rawPut(bucket, "victim", original);
  const o = await attempt("GET", "victim", undefined, bucket, "adminA", true);
  expect(o.status).toBe(200);
  expect(sameBytes(o.bytes, plaintext)).toBe(true);
}

describe("body tampering is refused", () => {
  it.each(bodyCases)("$name", async (c) => {
    await warmOriginal();
    await rawPut(bucket, "victim", withBody(original, c.body()));
    expectRefused(await attempt("GET", "victim"), "GET");
    for (const range of c.ranges ?? []) {
      const o = await attempt("GET", "victim", range);
      expectRefused(o, `GET ${range}`, new Uint8Array(0));
      expect(o.bytes.byteLength, `GET ${range} served bytes`).toBe(0);
    }
    if (c.head) expectRefused(await attempt("HEAD", "victim"), "HEAD");
    if (c.checksum) {
      expectRefused(await attempt("HEAD", "victim", undefined, bucket, "adminA", true), "HEAD with checksum mode");
      expectRefused(await attempt("GET", "victim", undefined, bucket, "adminA", true), "GET with checksum mode");
    }
  });
});

interface MetadataCase {
  name: string;
  edit: () => RawObject;
}

const metadataCases: MetadataCase[] = [
  { name: "format version", edit: () => withEnvelope(original, (e) => (e["v"] = 2)) },
  { name: "mode aws:kms → AES256", edit: () => withEnvelope(original, (e) => (e["m"] = "AES256")) },
  { name: "key ARN → another key of the tenant", edit: () => withEnvelope(original, (e) => (e["k"] = otherKeyArn)) },
  { name: "key ARN → another tenant", edit: () => withEnvelope(original, (e) => (e["k"] = String(e["k"]).replace(TENANT_A, TENANT_B))) },
  { name: "key ARN → bare uuid", edit: () => withEnvelope(original, (e) => (e["k"] = String(e["k"]).split("/").pop())) },
  { name: "CMK key version", edit: () => withEnvelope(original, (e) => (e["kv"] = 2)) },
  { name: "master version (not configured)", edit: () => withEnvelope(original, (e) => (e["mv"] = 2)) },
  { name: "master version as a string", edit: () => withEnvelope(original, (e) => (e["mv"] = "1")) },
  { name: "wrapped key, first byte", edit: () => withEnvelope(original, (e) => (e["w"] = flipBase64(e["w"], 0))) },
  { name: "wrapped key, last byte", edit: () => withEnvelope(original, (e) => (e["w"] = flipBase64(e["w"], 39))) },
  { name: "wrapped key of another object", edit: () => withEnvelope(original, (e) => (e["w"] = JSON.parse(twin.customMetadata["sse-envelope"]!).w)) },
  { name: "wrapped key truncated", edit: () => withEnvelope(original, (e) => (e["w"] = btoa(atob(String(e["w"])).slice(0, 32)))) },
  { name: "length − 1", edit: () => withEnvelope(original, (e) => (e["n"] = SIZE - 1)) },
  { name: "length + 1", edit: () => withEnvelope(original, (e) => (e["n"] = SIZE + 1)) },
  {
    name: "length and body cut to three chunks together",
    edit: () => ({ ...withEnvelope(original, (e) => (e["n"] = 3 * CHUNK)), body: original.body.slice(0, chunkStart(3)) }),
  },
  { name: "length as a string", edit: () => withEnvelope(original, (e) => (e["n"] = String(SIZE))) },
  { name: "salt", edit: () => withEnvelope(original, (e) => (e["s"] = flipBase64(e["s"], 5))) },
  { name: "salt of another object", edit: () => withEnvelope(original, (e) => (e["s"] = JSON.parse(twin.customMetadata["sse-envelope"]!).s)) },
  {
    name: "single layout replaced by a multipart layout",
    edit: () =>
      withEnvelope(original, (e) => {
        delete e["s"];
        e["p"] = { c: 1, h: btoa(String.fromCharCode(...new Uint8Array(32))) };
      }),
  },
  { name: "encryption context changed", edit: () => withEnvelope(original, (e) => (e["c"] = btoa(JSON.stringify({ app: "other" })))) },
  { name: "encryption context removed", edit: () => withEnvelope(original, (e) => delete e["c"]) },
  { name: "bucket key flag added", edit: () => withEnvelope(original, (e) => (e["b"] = 1)) },
  { name: "trailer flag removed", edit: () => withEnvelope(original, (e) => delete e["r"]) },
  { name: "trailer flag as 2", edit: () => withEnvelope(original, (e) => (e["r"] = 2)) },
  // An external CMK's bucket-key flag on an object under a local CMK (FORMAT.md §10).
  { name: "external bucket key flag added", edit: () => withEnvelope(original, (e) => (e["bk"] = 1)) },
  { name: "external bucket key flag as 2", edit: () => withEnvelope(original, (e) => (e["bk"] = 2)) },
  { name: "sealed facts flipped", edit: () => withEnvelope(original, (e) => (e["e"] = flipBase64(e["e"], 20))) },
  { name: "sealed facts of another object", edit: () => withEnvelope(original, (e) => (e["e"] = JSON.parse(twin.customMetadata["sse-envelope"]!).e)) },
  { name: "Content-Type changed", edit: () => withEnvelope(original, (e) => ((e["h"] as Record<string, string>)["ct"] = "text/html")) },
  { name: "Content-Disposition added", edit: () => withEnvelope(original, (e) => ((e["h"] as Record<string, string>)["cd"] = "attachment")) },
  { name: "HTTP metadata removed", edit: () => withEnvelope(original, (e) => delete e["h"]) },
  { name: "MAC, first byte", edit: () => withEnvelope(original, (e) => (e["t"] = flipBase64(e["t"], 0))) },
  { name: "MAC, last byte", edit: () => withEnvelope(original, (e) => (e["t"] = flipBase64(e["t"], 31))) },
  { name: "MAC of another object", edit: () => withEnvelope(original, (e) => (e["t"] = JSON.parse(twin.customMetadata["sse-envelope"]!).t)) },
  { name: "MAC removed", edit: () => withEnvelope(original, (e) => delete e["t"]) },
  { name: "whole envelope of another object (with its body kept)", edit: () => ({ ...clone(original), customMetadata: { ...original.customMetadata, "sse-envelope": twin.customMetadata["sse-envelope"]! } }) },
  { name: "envelope and body of another object at this key", edit: () => clone(twin) },
  {
    name: "envelope removed",
    edit: () => {
      const out = clone(original);
      delete out.customMetadata["sse-envelope"];
      return out;
    },
  },
  { name: "envelope not JSON", edit: () => ({ ...clone(original), customMetadata: { ...original.customMetadata, "sse-envelope": "{not json" } }) },
  { name: "envelope JSON null", edit: () => ({ ...clone(original), customMetadata: { ...original.customMetadata, "sse-envelope": "null" } }) },
  { name: "user metadata value changed", edit: () => ({ ...clone(original), customMetadata: { ...original.customMetadata, "x-amz-meta-color": "red" } }) },
  {
    name: "user metadata removed",
    edit: () => {
      const out = clone(original);
      delete out.customMetadata["x-amz-meta-color"];
      return out;
    },
  },
  { name: "user metadata added", edit: () => ({ ...clone(original), customMetadata: { ...original.customMetadata, "x-amz-meta-extra": "1" } }) },
  { name: "user metadata name case changed", edit: () => {
    const out = clone(original);
    delete out.customMetadata["x-amz-meta-color"];
    out.customMetadata["x-amz-meta-Color"] = "blue";
    return out;
  } },
  { name: "unknown custom metadata added", edit: () => ({ ...clone(original), customMetadata: { ...original.customMetadata, "x-internal": "1" } }) },
];

describe("metadata tampering is refused, on GET, ranged GET and HEAD", () => {
  it.each(metadataCases)("$name", async (c) => {
    await warmOriginal();
    await rawPut(bucket, "victim", c.edit());
    expectRefused(await attempt("GET", "victim"), "GET", c.name.startsWith("envelope and body") ? twinText : plaintext);
    for (const range of ["bytes=0-99", "bytes=-99"]) {
      const o = await attempt("GET", "victim", range);
      expectRefused(o, `GET ${range}`, new Uint8Array(0));
      expect(o.bytes.byteLength, `GET ${range} served bytes`).toBe(0);
    }
    expectRefused(await attempt("HEAD", "victim"), "HEAD");
  });

  it("R2's own HTTP metadata is not trusted: it never changes what is served", async () => {
    await rawPut(bucket, "victim", { ...clone(original), httpMetadata: { contentType: "text/html", contentDisposition: "attachment" } });
    const r = await send("adminA", { method: "GET", bucket, key: "victim" });
    const { bytes, errored } = await readFully(r);
    if (r.status === 200 && !errored) {
      expect(r.headers.get("content-type")).toBe("application/x-victim");
      expect(r.headers.get("content-disposition")).toBeNull();
      expect(sameBytes(bytes, plaintext)).toBe(true);
    } else {
      expect(r.status >= 400 || errored).toBe(true);
    }
  });
});

describe("objects moved inside R2 are refused", () => {
  it.each([
    ["another key in the same bucket", bucket, "renamed"],
    ["the same key in another bucket of the tenant", sibling, "victim"],
    ["a key in another tenant's bucket", foreign, "victim"],
  ])("copied to %s", async (_label, b, key) => {
    await rawPut(b, key, original);
    const who = b === foreign ? "adminB" : "adminA";
    for (const method of ["GET", "HEAD"] as const) expectRefused(await attempt(method, key, undefined, b, who), `${method} ${b}/${key}`);
    const ranged = await attempt("GET", key, "bytes=0-99", b, who);
    expectRefused(ranged, "GET bytes=0-99", new Uint8Array(0));
    expect(ranged.bytes.byteLength).toBe(0);
  });

  it("the original is still readable after the campaign (control)", async () => {
    await rawPut(bucket, "victim", original);
    const o = await attempt("GET", "victim");
    expect(o.status).toBe(200);
    expect(o.errored).toBe(false);
    expect(sameBytes(o.bytes, plaintext)).toBe(true);
  });
});

describe("SSE-C envelope tampering is refused (with the right key), on GET, ranged GET and HEAD", () => {
  const cbucket = uniqueBucket("tamper-c");
  const raw = new Uint8Array(32).map((_, i) => (i * 13 + 5) & 0xff);
  const keyB64 = btoa(String.fromCharCode(...raw));
  let ssec: Record<string, string> = {};
  let cOriginal: RawObject;
  let cTwin: RawObject;
  let kmsEnvelope: Envelope;

  beforeAll(async () => {
    const md5 = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("MD5", raw))));
    ssec = { "x-amz-server-side-encryption-customer-algorithm": "AES256", "x-amz-server-side-encryption-customer-key": keyB64, "x-amz-server-side-encryption-customer-key-MD5": md5 };
    await createBucket("adminA", cbucket);
    const config = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>NONE</EncryptionType></BlockedEncryptionTypes></Rule></ServerSideEncryptionConfiguration>`;
    const md5Config = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(config)))));
    expect((await send("adminA", { method: "PUT", bucket: cbucket, query: { encryption: "" }, body: config, headers: { "content-md5": md5Config } })).status).toBe(200);
    expect((await send("adminA", { method: "PUT", bucket: cbucket, key: "cvictim", body: plaintext, headers: ssec })).status).toBe(200);
    // Another object under the same customer key: its salt and verifier are bound to its own name.
    expect((await send("adminA", { method: "PUT", bucket: cbucket, key: "ctwin", body: twinText, headers: ssec })).status).toBe(200);
    cOriginal = (await rawGet(cbucket, "cvictim"))!;
    cTwin = (await rawGet(cbucket, "ctwin"))!;
    kmsEnvelope = JSON.parse(original.customMetadata["sse-envelope"]!) as Envelope;
  });

  async function cAttempt(method: "GET" | "HEAD", key: string, range?: string): Promise<Outcome> {
    const r = await send("adminA", { method, bucket: cbucket, key, headers: { ...ssec, ...(range ? { range } : {}) } });
    const { bytes, errored } = await readFully(r);
    return { status: r.status, errored, bytes: r.status >= 400 ? new Uint8Array(0) : bytes };
  }

  it("is readable with its key before any tampering (control), and R2 holds neither the key nor the plaintext", async () => {
    const o = await cAttempt("GET", "cvictim");
    expect(o.status).toBe(200);
    expect(sameBytes(o.bytes, plaintext)).toBe(true);
    expect(containsBytes(cOriginal.body, raw)).toBe(false);
    expect(containsBytes(cOriginal.body, plaintext.subarray(0, 32))).toBe(false);
    expect(JSON.stringify(cOriginal.customMetadata).includes(keyB64)).toBe(false);
  });

  const cases: Array<{ name: string; edit: () => RawObject; wholeOnly?: boolean }> = [
    { name: "verifier flipped", edit: () => withEnvelope(cOriginal, (e) => (e["y"] = flipBase64(e["y"], 5))) },
    { name: "KEK salt flipped", edit: () => withEnvelope(cOriginal, (e) => (e["x"] = flipBase64(e["x"], 3))) },
    { name: "salt and verifier of another object under the same key", edit: () => withEnvelope(cOriginal, (e) => {
      const other = JSON.parse(cTwin.customMetadata["sse-envelope"]!) as Envelope;
      e["x"] = other["x"];
      e["y"] = other["y"];
    }) },
    { name: "salt, verifier and wrapped key of another object under the same key", edit: () => withEnvelope(cOriginal, (e) => {
      const other = JSON.parse(cTwin.customMetadata["sse-envelope"]!) as Envelope;
      e["x"] = other["x"];
      e["y"] = other["y"];
      e["w"] = other["w"];
    }) },
    { name: "wrapped key flipped", edit: () => withEnvelope(cOriginal, (e) => (e["w"] = flipBase64(e["w"], 7))) },
    { name: "verifier removed", edit: () => withEnvelope(cOriginal, (e) => delete e["y"]) },
    { name: "salt removed", edit: () => withEnvelope(cOriginal, (e) => delete e["x"]) },
    { name: "mode changed to AES256 (salt and verifier kept)", edit: () => withEnvelope(cOriginal, (e) => (e["m"] = "AES256")) },
    { name: "mode changed to aws:kms with a CMK named", edit: () => withEnvelope(cOriginal, (e) => {
      e["m"] = "aws:kms";
      e["k"] = kmsEnvelope["k"];
      e["kv"] = kmsEnvelope["kv"];
      delete e["x"];
      delete e["y"];
    }) },
    { name: "a CMK added beside the salt and verifier", edit: () => withEnvelope(cOriginal, (e) => {
      e["k"] = kmsEnvelope["k"];
      e["kv"] = kmsEnvelope["kv"];
    }) },
    { name: "length changed", edit: () => withEnvelope(cOriginal, (e) => (e["n"] = Number(e["n"]) - 1)) },
    { name: "MAC flipped", edit: () => withEnvelope(cOriginal, (e) => (e["t"] = flipBase64(e["t"], 0))) },
    { name: "envelope and body of another SSE-C object at this key", edit: () => clone(cTwin) },
    { name: "body chunk flipped", edit: () => withBody(cOriginal, flip(cOriginal.body, HEADER + 100)) },
    // An SSE-C read has no verified memo: a full GET opens the record itself, with or without checksum mode.
    { name: "trailer record, last byte (its tag)", edit: () => withBody(cOriginal, flip(cOriginal.body, last(cOriginal.body), 7)), wholeOnly: true },
    { name: "trailer record, a value byte", edit: () => withBody(cOriginal, flip(cOriginal.body, cOriginal.body.byteLength - TRAILER + 6, 2)), wholeOnly: true },
  ];

  it.each(cases)("$name", async (c) => {
    await rawPut(cbucket, "cvictim", c.edit());
    expectRefused(await cAttempt("GET", "cvictim"), "GET", c.name.startsWith("envelope and body") ? twinText : plaintext);
    // Ranges and HEAD never read the record (FORMAT.md §3a).
    if (c.wholeOnly) return;
    // A flipped first chunk leaves the last chunk intact (ranges read only what they need).
    for (const range of c.name.startsWith("body chunk") ? ["bytes=0-99"] : ["bytes=0-99", "bytes=-99"]) {
      const o = await cAttempt("GET", "cvictim", range);
      expectRefused(o, `GET ${range}`, new Uint8Array(0));
      expect(o.bytes.byteLength, `GET ${range} served bytes`).toBe(0);
    }
    if (!c.name.startsWith("body chunk")) expectRefused(await cAttempt("HEAD", "cvictim"), "HEAD");
  });

  it("copied to another key inside R2 (same customer key): refused, the verifier is bound to the name", async () => {
    await rawPut(cbucket, "crenamed", cOriginal);
    const r = await send("adminA", { method: "GET", bucket: cbucket, key: "crenamed", headers: ssec });
    expect(r.status).toBe(403);
  });

  it("the original is still readable after the campaign (control)", async () => {
    await rawPut(cbucket, "cvictim", cOriginal);
    const o = await cAttempt("GET", "cvictim");
    expect(o.status).toBe(200);
    expect(sameBytes(o.bytes, plaintext)).toBe(true);
  });
});
