/**
 * The objects the tamper campaign attacks ("victims"), each written through the worker
 * (or, for small-part multipart layouts, through the same module POST Object uses), and
 * what the campaign needs to know about them: the plaintext, every R2 object the stored
 * object consists of (its state before any tampering), and "donors" — other authentic
 * ciphertext and envelopes under the same tenant and CMK to splice from.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { joinCustomMetadata, signEnvelope } from "../../../src/crypto/envelope";
import { sealFacts } from "../../../src/crypto/facts";
import { deriveMacKey, unwrapDataKey } from "../../../src/crypto/keys";
import { multipartEtag, normalizeEtag } from "../../../src/multipart/complete";
import { settleObjects } from "../../../src/multipart/lifecycle";
import { UploadStore } from "../../../src/multipart/store";
import { encodeManifest, manifestHash } from "../../../src/objects/manifest";
import { partR2Key } from "../../../src/objects/parts";
import { makeServices } from "../../../src/services";
import { completeRequest, createUpload, uploadPart } from "../../support/multipart";
import { pseudoRandom } from "../../support/sources";
import { crc32Base64, createBucket, md5Base64, readFully, sameBytes, send, type Who } from "../../support/s3-harness";

export interface Stored {
  body: Uint8Array;
  meta: Record<string, string>;
  http: R2HTTPMetadata;
}

/** R2 key → what R2 holds there (null: nothing). */
export type State = Map<string, Stored | null>;

/** An S3 location a moved object can be probed at. */
export interface Place {
  r2Key: string;
  bucket: string;
  key: string;
  who: Who;
}

export interface Donor {
  name: string;
  stored: Stored;
  /** An older version of this very key: replaying it whole is a rollback, outside what the format detects. */
  sameKey: boolean;
}

/** Headers every successful GET/HEAD of the victim must carry (authentic metadata only). */
export interface Expected {
  etag: string;
  contentType: string;
  userMetadata: Record<string, string>;
  sse: string;
}

export interface Victim {
  name: string;
  layout: "single" | "multipart";
  bucket: string;
  key: string;
  r2Key: string;
  plaintext: Uint8Array;
  /** R2 keys of the part streams in manifest order (multipart). */
  parts: string[];
  uploadId: string | null;
  original: State;
  /** Whole objects of the same layout under the same tenant (and CMK where possible). */
  donors: Donor[];
  /** Multipart: other part streams — of this upload (earlier attempts) and of other uploads. */
  partDonors: Donor[];
  expected: Expected;
  /** Relative share of the campaign's mutations. */
  weight: number;
  /** Where the object (slot 0) can be moved to and still be addressed through S3. */
  moves: Place[];
  /** Unreferenced keys under the victim's part prefix (part moved / duplicated there). */
  spareKeys: string[];
}

export async function rawState(keys: string[]): Promise<State> {
  const out: State = new Map();
  for (const key of keys) {
    const o = await env.OBJECTS.get(key);
    out.set(key, o ? { body: new Uint8Array(await o.arrayBuffer()), meta: { ...(o.customMetadata ?? {}) }, http: { ...o.httpMetadata } } : null);
  }
  return out;
}

async function stored(key: string): Promise<Stored> {
  const s = (await rawState([key])).get(key);
  if (!s) throw new Error(`nothing stored at ${key}`);
  return s;
}

/** Part R2 keys from a manifest body (parsed here, independently of src/objects/manifest.ts). */
export function manifestPartKeys(body: Uint8Array): string[] {
  const doc = JSON.parse(new TextDecoder().decode(body)) as { p: Array<{ k: string }> };
  return doc.p.map((p) => p.k);
}

async function put(who: Who, bucket: string, key: string, body: Uint8Array, headers: Record<string, string>): Promise<void> {
  const r = await send(who, { method: "PUT", bucket, key, body, headers });
  expect(r.status, await r.clone().text()).toBe(200);
}

/** HEAD + GET of a freshly written victim: it must read back exactly (the control case). */
async function expectedOf(bucket: string, key: string, plaintext: Uint8Array): Promise<Expected> {
  const get = await send("adminA", { method: "GET", bucket, key });
  const { bytes, errored } = await readFully(get);
  expect(get.status).toBe(200);
  expect(errored).toBe(false);
  expect(sameBytes(bytes, plaintext), `${bucket}/${key} reads back`).toBe(true);
  const userMetadata: Record<string, string> = {};
  for (const [name, value] of get.headers) if (name.startsWith("x-amz-meta-")) userMetadata[name] = value;
  return {
    etag: get.headers.get("etag")!,
    contentType: get.headers.get("content-type")!,
    userMetadata,
    sse: get.headers.get("x-amz-server-side-encryption")!,
  };
}

export interface Buckets {
  sibling: string;
  foreign: string;
}

interface SingleSpec {
  name: string;
  size: number;
  headers: Record<string, string>;
  weight: number;
}

const ctx = (app: string) => btoa(JSON.stringify({ app }));

export const SINGLE_SPECS: SingleSpec[] = [
  { name: "s0-sse-s3", size: 0, weight: 1, headers: { "x-amz-server-side-encryption": "AES256", "content-type": "application/x-empty", "x-amz-meta-kind": "empty" } },
  {
    name: "s1-kms",
    size: 1,
    weight: 1,
    headers: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-context": ctx("one"), "content-type": "application/x-one", "x-amz-meta-a": "1" },
  },
  { name: "s64k-1-sse-s3", size: 65535, weight: 1, headers: { "x-amz-server-side-encryption": "AES256", "x-amz-meta-size": "65535", "cache-control": "no-cache" } },
  { name: "s64k-kms", size: 65536, weight: 1, headers: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-context": ctx("64k"), "x-amz-meta-b": "two" } },
  { name: "s64k+1-kms", size: 65537, weight: 1, headers: { "x-amz-server-side-encryption": "aws:kms", "content-type": "application/x-plus", "x-amz-meta-c": "3", "x-amz-meta-d": "4" } },
  {
    name: "s3chunks-kms",
    size: 3 * 65536 + 3392,
    weight: 2,
    headers: {
      "x-amz-server-side-encryption": "aws:kms",
      "x-amz-server-side-encryption-context": ctx("chunks"),
      "content-type": "application/x-victim",
      "content-disposition": "attachment",
      "x-amz-meta-color": "blue",
    },
  },
];

/**
 * A single-stream victim: an older version is written first at the same key (a donor from
 * "the same tenant and key"), then the victim; a twin of the same size at another key is a
 * donor from another object under the same CMK. Donor objects are removed from R2 after
 * they were captured, so the bucket holds only the victim (the audit lists it alone).
 */
export async function singleVictim(spec: SingleSpec, bucket: string, buckets: Buckets, seed: number): Promise<Victim> {
  const key = `v/${spec.name}`;
  const plaintext = pseudoRandom(spec.size, seed);
  const withDigests = async (body: Uint8Array) => ({ ...spec.headers, "content-md5": await md5Base64(body), "x-amz-checksum-crc32": crc32Base64(body) });
  await createBucket("adminA", bucket);
  const older = pseudoRandom(spec.size, seed + 1);
  await put("adminA", bucket, key, older, await withDigests(older));
  const olderVersion = await stored(`${bucket}/${key}`);
  const twinText = pseudoRandom(spec.size, seed + 2);
  await put("adminA", bucket, `${key}~twin`, twinText, await withDigests(twinText));
  const twin = await stored(`${bucket}/${key}~twin`);
  await env.OBJECTS.delete(`${bucket}/${key}~twin`);
  await put("adminA", bucket, key, plaintext, await withDigests(plaintext));
  const r2Key = `${bucket}/${key}`;
  return {
    name: spec.name,
    layout: "single",
    bucket,
    key,
    r2Key,
    plaintext,
    parts: [],
    uploadId: null,
    original: await rawState([r2Key]),
    donors: [
      { name: "older version of this key", stored: olderVersion, sameKey: true },
      { name: "twin under the same CMK", stored: twin, sameKey: false },
    ],
    partDonors: [],
    expected: await expectedOf(bucket, key, plaintext),
    weight: spec.weight,
    moves: movesFor(bucket, key, buckets),
    spareKeys: [],
  };
}

function movesFor(bucket: string, key: string, buckets: Buckets): Place[] {
  return [
    { r2Key: `${bucket}/${key}~moved`, bucket, key: `${key}~moved`, who: "adminA" },
    { r2Key: `${buckets.sibling}/${key}`, bucket: buckets.sibling, key, who: "adminA" },
    { r2Key: `${buckets.foreign}/${key}`, bucket: buckets.foreign, key, who: "adminB" },
  ];
}

/** Every R2 object under an upload's part prefix. */
async function partObjects(uploadId: string): Promise<string[]> {
  const listed = await env.OBJECTS.list({ prefix: `_mpu/${uploadId}/` });
  return listed.objects.map((o) => o.key).sort();
}

/** Create → parts (part 1 uploaded twice when asked; the first attempt is captured) → complete. */
async function apiUpload(bucket: string, key: string, parts: Uint8Array[], headers: Record<string, string>, retryFirst: boolean) {
  const uploadId = await createUpload("adminA", bucket, key, headers);
  let earlier: Stored | null = null;
  if (retryFirst) {
    await uploadPart("adminA", bucket, key, uploadId, 1, pseudoRandom(parts[0]!.byteLength, 99));
    earlier = await stored((await partObjects(uploadId))[0]!);
  }
  const etags: string[] = [];
  for (const [i, body] of parts.entries()) etags.push(await uploadPart("adminA", bucket, key, uploadId, i + 1, body));
  const r = await completeRequest("adminA", bucket, key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
  expect(r.status, await r.clone().text()).toBe(200);
  return { uploadId, earlier };
}

async function multipartVictimFrom(name: string, bucket: string, key: string, plaintext: Uint8Array, uploadId: string, buckets: Buckets, donors: Donor[], partDonors: Donor[], weight: number): Promise<Victim> {
  const r2Key = `${bucket}/${key}`;
  const manifest = await stored(r2Key);
  const parts = manifestPartKeys(manifest.body);
  expect(await partObjects(uploadId)).toEqual([...parts].sort());
  return {
    name,
    layout: "multipart",
    bucket,
    key,
    r2Key,
    plaintext,
    parts,
    uploadId,
    original: await rawState([r2Key, ...parts]),
    donors,
    partDonors,
    expected: await expectedOf(bucket, key, plaintext),
    weight,
    moves: movesFor(bucket, key, buckets),
    spareKeys: [`_mpu/${uploadId}/00001/0000000000000000`, `_mpu/${uploadId}/09999/ffffffffffffffff`],
  };
}

const MPU_HEADERS = {
  "x-amz-server-side-encryption": "aws:kms",
  "x-amz-server-side-encryption-context": ctx("multipart"),
  "content-type": "application/x-multipart-victim",
  "x-amz-meta-origin": "api",
  "x-amz-checksum-algorithm": "CRC32",
};

/**
 * One-part upload through the S3 API (part 1 uploaded twice: the superseded attempt is a
 * donor "of the same upload"); an earlier upload of the same key supplies the manifest,
 * envelope and part of "the same tenant and key".
 */
export async function onePartVictim(bucket: string, buckets: Buckets, seed: number): Promise<Victim> {
  await createBucket("adminA", bucket);
  const key = "v/mpu-1part-kms";
  const olderText = pseudoRandom(100_000, seed + 1);
  const older = await apiUpload(bucket, key, [olderText], MPU_HEADERS, false);
  const olderManifest = await stored(`${bucket}/${key}`);
  const olderPart = await stored((await partObjects(older.uploadId))[0]!);
  const plaintext = pseudoRandom(100_000, seed);
  const done = await apiUpload(bucket, key, [plaintext], MPU_HEADERS, true);
  return multipartVictimFrom(
    "mpu-1part-kms",
    bucket,
    key,
    plaintext,
    done.uploadId,
    buckets,
    [{ name: "older upload of this key", stored: olderManifest, sameKey: true }],
    [
      { name: "superseded attempt of part 1", stored: done.earlier!, sameKey: false },
      { name: "part 1 of an older upload of this key", stored: olderPart, sameKey: false },
    ],
    2,
  );
}

/** Two parts through the S3 API: 5 MiB (S3's minimum for all but the last) and 70,000 bytes. */
export async function twoPartVictim(bucket: string, buckets: Buckets, seed: number): Promise<Victim> {
  await createBucket("adminA", bucket);
  const key = "v/mpu-2parts-kms";
  const olderParts = [pseudoRandom(5 * 1024 * 1024, seed + 1), pseudoRandom(70_000, seed + 2)];
  const older = await apiUpload(bucket, key, olderParts, MPU_HEADERS, false);
  const olderManifest = await stored(`${bucket}/${key}`);
  const olderKeys = await partObjects(older.uploadId);
  const olderPartDonors = await Promise.all(olderKeys.map(async (k, i) => ({ name: `part ${i + 1} of an older upload of this key`, stored: await stored(k), sameKey: false })));
  const parts = [pseudoRandom(5 * 1024 * 1024, seed), pseudoRandom(70_000, seed + 3)];
  const done = await apiUpload(bucket, key, parts, MPU_HEADERS, false);
  return multipartVictimFrom(
    "mpu-2parts-kms",
    bucket,
    key,
    new Uint8Array([...parts[0]!, ...parts[1]!]),
    done.uploadId,
    buckets,
    [{ name: "older upload of this key", stored: olderManifest, sameKey: true }],
    olderPartDonors,
    1,
  );
}

/**
 * A multipart-layout object with three small parts (70,000 + 70,000 + 40,000 bytes), so
 * part swaps, splices and reorders across several parts cost kilobytes per mutation
 * instead of 5 MiB parts. The parts are uploaded through the S3 API; CompleteMultipartUpload
 * refuses parts under 5 MiB (S3's rule), so the manifest is written here exactly as
 * completeUpload writes it (src/multipart/complete.ts: manifest, sealed facts, envelope MAC
 * over part count, manifest hash and length), and the upload is handed over in D1 the same
 * way. The read path under attack cannot tell it from a completed upload.
 */
export async function smallPartsVictim(bucket: string, buckets: Buckets, seed: number): Promise<Victim> {
  await createBucket("adminA", bucket);
  const key = "v/mpu-3small-sse-s3";
  const headers = { "x-amz-server-side-encryption": "AES256", "content-type": "application/x-small-parts", "content-language": "en", "x-amz-meta-origin": "small", "x-amz-meta-n": "3" };
  const services = makeServices(env);
  const store = new UploadStore(env.DB);
  const write = async (k: string, plaintext: Uint8Array) => {
    const uploadId = await createUpload("adminA", bucket, k, headers);
    const etags: string[] = [];
    for (const [i, [from, to]] of [[0, 70_000], [70_000, 140_000], [140_000, 180_000]].entries()) {
      etags.push(normalizeEtag(await uploadPart("adminA", bucket, k, uploadId, i + 1, plaintext.subarray(from!, to!))));
    }
    const upload = (await store.get(uploadId))!;
    const parts = await store.allParts(uploadId);
    const bytes = encodeManifest({ uploadId, parts: parts.map((p) => ({ number: p.partNumber, length: p.size, salt: p.salt, r2Key: partR2Key(uploadId, p.partNumber, p.attempt) })) });
    const hash = await manifestHash(bytes);
    const dataKey = await unwrapDataKey(await services.keys.forRead(upload.tenantId, upload.keyArn, upload.keyVersion, upload.masterVersion, true, null), upload.wrappedKey);
    const sealed = await sealFacts(await services.keys.sealKey(upload.tenantId, upload.masterVersion), bucket, k, { etag: await multipartEtag(etags), length: plaintext.byteLength });
    const envelope = await signEnvelope(
      await deriveMacKey(dataKey),
      {
        version: 1,
        mode: upload.mode,
        keyArn: upload.keyArn,
        keyVersion: upload.keyVersion,
        masterVersion: upload.masterVersion,
        wrappedKey: upload.wrappedKey,
        length: plaintext.byteLength,
        layout: { kind: "multipart", parts: parts.length, manifestHash: hash },
        bucketKeyEnabled: upload.bucketKeyEnabled,
        sealed,
        http: upload.http,
      },
      { bucket, key: k, userMetadata: upload.userMetadata },
    );
    const now = Date.now();
    expect(await store.claim(uploadId, upload.partsVersion, hash, now)).toBe(true);
    await env.OBJECTS.put(`${bucket}/${k}`, bytes, { customMetadata: joinCustomMetadata(envelope, upload.userMetadata) });
    await store.finish(upload, hash, now);
    return { manifest: await stored(`${bucket}/${k}`), uploadId };
  };
  const twin = await write(`${key}~twin`, pseudoRandom(180_000, seed + 1));
  const twinParts = await Promise.all((await partObjects(twin.uploadId)).map(async (k, i) => ({ name: `part ${i + 1} of another upload`, stored: await stored(k), sameKey: false })));
  const older = await write(key, pseudoRandom(180_000, seed + 2));
  const olderParts = await Promise.all((await partObjects(older.uploadId)).map(async (k, i) => ({ name: `part ${i + 1} of an older upload of this key`, stored: await stored(k), sameKey: false })));
  const plaintext = pseudoRandom(180_000, seed);
  const done = await write(key, plaintext);
  // The older upload's parts go as an overwrite's would once its grace is over (no grace
  // here); the twin stays (its parts are donors), at another key, so the audit lists it
  // beside the victim.
  await settleObjects({ r2: env.OBJECTS, store }, await store.objectsAt(bucket, [key]), Date.now(), 0);
  return multipartVictimFrom(
    "mpu-3small-sse-s3",
    bucket,
    key,
    plaintext,
    done.uploadId,
    buckets,
    [
      { name: "older upload of this key", stored: older.manifest, sameKey: true },
      { name: "another multipart object", stored: twin.manifest, sameKey: false },
    ],
    [...olderParts, ...twinParts],
    3,
  );
}
