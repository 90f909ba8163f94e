/**
 * An R2 bucket binding that fails on purpose: it forwards every call to the real binding
 * (the local R2 of the test run) except the ones a test picked — the Nth put, a get of a
 * given key, every list — which fail in the chosen way:
 *
 * - "throw": the call is refused before it reaches R2 (R2 unavailable);
 * - "throw-after": the call reaches R2 and takes effect, then the binding reports an
 *   error anyway (an ambiguous failure: a timeout after the commit);
 * - "abort-upload": a put reads about half of its body, then fails (a connection to R2
 *   dropped mid-upload; R2 commits nothing);
 * - "body-error": a get succeeds, but its body stream errors after `afterBytes` bytes.
 *
 * Requests are sent with `send(..., { env: { OBJECTS: faulty.bucket } })`, which calls the
 * worker module's fetch with that env (test/support/s3-harness.ts).
 */
import { env } from "cloudflare:workers";

export type R2Op = "head" | "get" | "put" | "delete" | "list";

export interface Fault {
  op: R2Op;
  /** Which matching call fails: 1 = the first (default); "every" = all of them. */
  nth?: number | "every";
  /** Only calls whose key (or list prefix, or first deleted key) passes this count. */
  key?: (key: string) => boolean;
  kind: "throw" | "throw-after" | "abort-upload" | "body-error";
  afterBytes?: number;
}

export interface Call {
  op: R2Op;
  key: string;
  failed: boolean;
}

export class InjectedR2Error extends Error {
  constructor(op: string, key: string) {
    super(`injected R2 failure: ${op} ${key}`);
    this.name = "InjectedR2Error";
  }
}

export interface FaultyBucket {
  bucket: R2Bucket;
  calls: Call[];
  /** Faults that have fired (a test asserts its fault was actually reached). */
  fired: Fault[];
}

/** Passes `afterBytes` bytes through, then errors. */
function failingAfter(body: ReadableStream<Uint8Array>, afterBytes: number, error: Error): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let passed = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (passed >= afterBytes) {
        await reader.cancel(error).catch(() => {});
        controller.error(error);
        return;
      }
      const { value, done } = await reader.read();
      if (done) return controller.close();
      const take = value.subarray(0, Math.min(value.byteLength, afterBytes - passed));
      passed += take.byteLength;
      controller.enqueue(take);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** An R2ObjectBody whose body is replaced (the fields the worker reads are copied over). */
function withBody(object: R2ObjectBody, body: ReadableStream<Uint8Array>): R2ObjectBody {
  return {
    key: object.key,
    version: object.version,
    size: object.size,
    etag: object.etag,
    httpEtag: object.httpEtag,
    checksums: object.checksums,
    uploaded: object.uploaded,
    httpMetadata: object.httpMetadata,
    customMetadata: object.customMetadata,
    range: object.range,
    storageClass: object.storageClass,
    writeHttpMetadata: (headers: Headers) => object.writeHttpMetadata(headers),
    body,
    bodyUsed: false,
    arrayBuffer: () => new Response(body).arrayBuffer(),
    text: () => new Response(body).text(),
    json: <T>() => new Response(body).json() as Promise<T>,
    blob: () => new Response(body).blob(),
    bytes: async () => new Uint8Array(await new Response(body).arrayBuffer()),
  } as unknown as R2ObjectBody;
}

/** Reads about half of a put's body, then cancels it: nothing reaches R2. */
async function abortUpload(value: unknown, error: Error): Promise<never> {
  if (value instanceof ReadableStream) {
    const reader = (value as ReadableStream<Uint8Array>).getReader();
    // A few pieces in, so the writer is mid-body when the upload breaks off.
    for (let i = 0; i < 4; i++) if ((await reader.read()).done) break;
    await reader.cancel(error).catch(() => {});
  }
  throw error;
}

export function faultyBucket(faults: Fault[], real: R2Bucket = env.OBJECTS): FaultyBucket {
  const calls: Call[] = [];
  const fired: Fault[] = [];
  const seen = new Map<Fault, number>();

  /** The fault this call triggers, if any. */
  const pick = (op: R2Op, key: string): Fault | undefined => {
    for (const f of faults) {
      if (f.op !== op || (f.key && !f.key(key))) continue;
      const n = (seen.get(f) ?? 0) + 1;
      seen.set(f, n);
      if (f.nth === "every" || n === (f.nth ?? 1)) {
        fired.push(f);
        return f;
      }
    }
    return undefined;
  };

  async function run<T>(op: R2Op, key: string, call: () => Promise<T>, extra?: (fault: Fault, error: Error) => Promise<T>): Promise<T> {
    const fault = pick(op, key);
    calls.push({ op, key, failed: fault !== undefined });
    if (!fault) return call();
    const error = new InjectedR2Error(op, key);
    if (fault.kind === "throw") throw error;
    if (fault.kind === "throw-after") {
      await call();
      throw error;
    }
    return extra!(fault, error);
  }

  const bucket = {
    head: (key: string) => run("head", key, () => real.head(key)),
    get: (key: string, options?: R2GetOptions) =>
      run("get", key, () => real.get(key, options), async (fault, error) => {
        const object = await real.get(key, options);
        if (!object || !("body" in object) || fault.kind !== "body-error") throw error;
        return withBody(object, failingAfter(object.body, fault.afterBytes ?? 0, error));
      }),
    put: (key: string, value: Parameters<R2Bucket["put"]>[1], options?: R2PutOptions) =>
      run("put", key, () => real.put(key, value, options), (_fault, error) => abortUpload(value, error)),
    delete: (keys: string | string[]) => run("delete", Array.isArray(keys) ? (keys[0] ?? "") : keys, () => real.delete(keys)),
    list: (options?: R2ListOptions) => run("list", options?.prefix ?? "", () => real.list(options)),
    createMultipartUpload: () => Promise.reject(new Error("not used by the worker")),
    resumeMultipartUpload: () => {
      throw new Error("not used by the worker");
    },
  };
  return { bucket: bucket as unknown as R2Bucket, calls, fired };
}
