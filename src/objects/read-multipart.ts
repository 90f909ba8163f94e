import { decryptingStream, type DecryptPlan } from "../crypto/decrypt";
import { IntegrityError } from "../crypto/errors";
import { chunkCount, chunkSpan, encryptedSize } from "../crypto/format";
import { Errors } from "../errors";
import { resolveRange, type RangeRequest } from "../util/range";
import { ObjectChangedError } from "./changed";
import { decodeManifest, MAX_MANIFEST_BYTES, partOffsets, type Manifest, type ManifestPart } from "./manifest";
import type { Authenticated, ObjectRead } from "./object-info";

/**
 * Reading multipart-layout objects (docs/multipart.md, "Reading"). The object at the key
 * is a manifest; its parts are separate streams. A read decrypts only the parts a range
 * touches, each with one R2 get covering only the chunks it needs, one part after another
 * so memory stays bounded whatever the object's size.
 */

/** The authenticated manifest object: `body` is its full body when the caller already has it. */
export interface ManifestSource {
  r2: R2Bucket;
  r2Key: string;
  /** The authenticated object (its etag and size), as R2 returned it with the envelope. */
  object: Pick<R2Object, "etag" | "size">;
  body: ReadableStream<Uint8Array> | null;
  auth: Authenticated;
}

export interface LoadedManifest extends Manifest {
  offsets: number[];
}

/**
 * Reads and verifies the manifest of an authenticated multipart-layout object. When the
 * body is not at hand it is fetched on condition that the object is still the one whose
 * envelope was authenticated.
 */
export async function loadManifest(src: ManifestSource): Promise<LoadedManifest> {
  const layout = src.auth.envelope.layout;
  if (layout.kind !== "multipart") throw new Error("not a multipart-layout object");
  let body = src.body;
  if (src.object.size > MAX_MANIFEST_BYTES) {
    await body?.cancel().catch(() => {});
    throw new IntegrityError("multipart manifest is too large");
  }
  if (!body) {
    const fresh = await src.r2.get(src.r2Key, { onlyIf: { etagMatches: src.object.etag } });
    if (!fresh) throw Errors.NoSuchKey({ Key: src.auth.info.key });
    if (!("body" in fresh)) throw new ObjectChangedError();
    if (fresh.size > MAX_MANIFEST_BYTES) {
      await fresh.body.cancel().catch(() => {});
      throw new IntegrityError("multipart manifest is too large");
    }
    body = fresh.body;
  }
  const bytes = new Uint8Array(await new Response(body).arrayBuffer());
  const manifest = await decodeManifest(bytes, { hash: layout.manifestHash, parts: layout.parts, length: src.auth.envelope.length });
  return { ...manifest, offsets: partOffsets(manifest) };
}

/** Plaintext span of part `partNumber` (1-based position in the completed object). */
export function partSpan(manifest: LoadedManifest, partNumber: number): { first: number; last: number } {
  const index = partNumber - 1;
  const part = manifest.parts[index];
  // A zero-length (last) part has no byte range to answer with.
  if (!part || part.length === 0) throw Errors.InvalidPartNumber();
  return { first: manifest.offsets[index]!, last: manifest.offsets[index]! + part.length - 1 };
}


/**
 * GET of a multipart-layout object: whole, ranged, or one part. `check` (conditional
 * headers) runs on the authenticated metadata before the manifest is read.
 */
export async function readMultipartObject(
  src: ManifestSource,
  opts: { range: RangeRequest | null; partNumber?: number; check: (info: Authenticated["info"]) => void },
): Promise<ObjectRead> {
  const { info, dataKey } = src.auth;
  try {
    opts.check(info);
  } catch (error) {
    await src.body?.cancel().catch(() => {});
    throw error;
  }
  const manifest = await loadManifest(src);
  let span: { first: number; last: number } | undefined;
  if (opts.partNumber !== undefined) span = partSpan(manifest, opts.partNumber);
  else if (opts.range) {
    const resolved = resolveRange(opts.range, info.size);
    if (resolved === "unsatisfiable") throw Errors.InvalidRange({ ActualObjectSize: String(info.size) });
    span = resolved;
  }
  const body = await multipartStream(src.r2, manifest, dataKey, span);
  return {
    info,
    body,
    ...(span ? { span } : {}),
    ...(opts.partNumber !== undefined ? { partsCount: manifest.parts.length } : {}),
  };
}

/** One part's share of a read: plaintext bytes [first, last] of the part, or all of it. */
interface Segment {
  part: ManifestPart;
  whole: boolean;
  first: number;
  last: number;
}

function segmentsFor(manifest: LoadedManifest, span: { first: number; last: number } | undefined): Segment[] {
  // A whole read visits every part, a zero-length last part included, so every stream
  // in the manifest is authenticated end to end.
  if (!span) return manifest.parts.map((part) => ({ part, whole: true, first: 0, last: part.length - 1 }));
  const out: Segment[] = [];
  for (let i = firstTouched(manifest.offsets, span.first); i < manifest.parts.length; i++) {
    const part = manifest.parts[i]!;
    const start = manifest.offsets[i]!;
    if (start > span.last) break;
    if (part.length === 0) continue;
    const first = Math.max(span.first, start) - start;
    const last = Math.min(span.last, start + part.length - 1) - start;
    out.push({ part, whole: first === 0 && last === part.length - 1, first, last });
  }
  return out;
}

/** Index of the part containing plaintext offset `at` (binary search over offsets). */
function firstTouched(offsets: number[], at: number): number {
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The plaintext of the requested span as one stream. The first part is opened, and the
 * last part's presence and size checked, before this returns — a missing or truncated
 * part there (dropped trailing parts included) fails the request before any byte is
 * sent. Parts in between are opened one ahead of the reader; a failure there errors the
 * stream, so a response built on it is aborted, never ended cleanly.
 */
export async function multipartStream(
  r2: R2Bucket,
  manifest: LoadedManifest,
  dataKey: CryptoKey,
  span?: { first: number; last: number },
): Promise<ReadableStream<Uint8Array>> {
  const segments = segmentsFor(manifest, span);
  const open = (i: number) => openSegment(r2, dataKey, segments[i]!);
  const last = segments.length > 1 ? segments[segments.length - 1]!.part : null;
  const [opened, checked] = await Promise.allSettled([open(0), last ? checkPresent(r2, last) : Promise.resolve()]);
  if (opened.status === "rejected" || checked.status === "rejected") {
    if (opened.status === "fulfilled") await opened.value.cancel().catch(() => {});
    throw opened.status === "rejected" ? opened.reason : (checked as PromiseRejectedResult).reason;
  }
  let index = 0;
  let current: ReadableStreamDefaultReader<Uint8Array> | null = opened.value.getReader();
  // The first chunk is decrypted before this returns, so a first part that fails
  // authentication (swapped, reordered, replaced) is refused with an error status too.
  let primed: ReadableStreamReadResult<Uint8Array> | undefined;
  try {
    primed = await current.read();
  } catch (error) {
    await current.cancel().catch(() => {});
    throw error;
  }
  let next: Promise<ReadableStream<Uint8Array>> | null = null;
  const prefetch = () => {
    next = index + 1 < segments.length ? open(index + 1) : null;
    // Surfaced when awaited; never an unhandled rejection in between.
    next?.catch(() => {});
  };
  prefetch();

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (primed) {
          const first = primed;
          primed = undefined;
          if (!first.done && first.value.byteLength > 0) {
            controller.enqueue(first.value);
            return;
          }
          if (first.done) current = null;
        }
        for (;;) {
          if (!current) {
            if (!next) {
              controller.close();
              return;
            }
            const stream = await next;
            index++;
            current = stream.getReader();
            prefetch();
          }
          const { value, done } = await current.read();
          if (done) {
            current = null;
            continue;
          }
          if (value.byteLength === 0) continue;
          controller.enqueue(value);
          return;
        }
      },
      async cancel(reason) {
        await current?.cancel(reason).catch(() => {});
        const pending = next;
        next = null;
        if (pending) await pending.then((s) => s.cancel(reason)).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

async function openSegment(r2: R2Bucket, dataKey: CryptoKey, seg: Segment): Promise<ReadableStream<Uint8Array>> {
  const { part } = seg;
  const header = { partNumber: part.number, length: part.length, salt: part.salt };
  let object: R2ObjectBody | null;
  let plan: DecryptPlan;
  try {
    if (seg.whole) {
      object = await r2.get(part.r2Key);
      plan = { header, includesHeader: true, firstChunk: 0, lastChunk: chunkCount(part.length) - 1, skip: 0, take: part.length };
    } else {
      const chunks = chunkSpan(seg.first, seg.last, part.length);
      object = await r2.get(part.r2Key, { range: { offset: chunks.offset, length: chunks.size } });
      plan = { header, includesHeader: false, firstChunk: chunks.firstChunk, lastChunk: chunks.lastChunk, skip: chunks.skip, take: seg.last - seg.first + 1 };
    }
  } catch {
    // R2 refuses a range past the end of a (truncated) object.
    throw new IntegrityError(`part ${part.number} is shorter than its manifest entry`);
  }
  if (!object) throw new IntegrityError(`part ${part.number} is missing`);
  if (object.size !== encryptedSize(part.length)) {
    await object.body.cancel().catch(() => {});
    throw new IntegrityError(`part ${part.number} does not have its manifest length`);
  }
  return decryptingStream(object.body, dataKey, plan);
}

async function checkPresent(r2: R2Bucket, part: ManifestPart): Promise<void> {
  const head = await r2.head(part.r2Key);
  if (!head) throw new IntegrityError(`part ${part.number} is missing`);
  if (head.size !== encryptedSize(part.length)) throw new IntegrityError(`part ${part.number} does not have its manifest length`);
}
