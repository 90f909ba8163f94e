/**
 * The commands of the model run: each one draws its request (principal, bucket, key,
 * encryption, …), asks the model (model.ts) for the answer, sends the request through the
 * worker, and fails — naming the rule — when the worker answers otherwise. On success the
 * model is updated the way the operation changes S3.
 */
import fc from "fast-check";
import { md5Base64, readFully, sameBytes, xmlBlocks, xmlValue } from "../support/s3-harness";
import {
  PRINCIPAL_NAMES,
  POLICY_TEMPLATES,
  expectedChecksumHeaders,
  listEtagIsOpaque,
  predictAbort,
  predictComplete,
  predictCopy,
  predictCreateUpload,
  predictDelete,
  predictDeleteObjects,
  predictGet,
  predictList,
  predictListParts,
  predictPut,
  predictSetEncryption,
  predictSetPolicy,
  predictUploadPart,
  readBytes,
  writeMode,
  type BucketModel,
  type Mode,
  type Model,
  type PolicyTemplate,
  type KeyAsk,
  type Prediction,
  type PrincipalName,
  type SseAsk,
  type StoredMode,
  type UploadModel,
} from "./model";
import { copySource, CUSTOMER_KEYS, customerKeyHeaders, encryptionDocument, escapeXmlText, policyDocument, postForm, request } from "./world";

/** The real side: only statistics (all state lives in the worker's D1/R2). */
export interface Real {
  stats: Stats;
}

/** Commands executed and, per command type, how often each status/code was answered. */
export class Stats {
  commands = 0;
  readonly mix = new Map<string, Map<string, number>>();
  record(command: string, status: number, code: string | null): void {
    this.commands++;
    const byCommand = this.mix.get(command) ?? new Map<string, number>();
    const outcome = code ? `${status} ${code}` : String(status);
    byCommand.set(outcome, (byCommand.get(outcome) ?? 0) + 1);
    this.mix.set(command, byCommand);
  }
  report(): string {
    const lines = [...this.mix].sort(([a], [b]) => a.localeCompare(b)).map(([command, outcomes]) => {
      const total = [...outcomes.values()].reduce((n, x) => n + x, 0);
      const parts = [...outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o} ×${n}`);
      return `  ${command.padEnd(22)} ${String(total).padStart(6)}: ${parts.join(", ")}`;
    });
    return lines.join("\n");
  }
}

// ---- what gets drawn ----------------------------------------------------------------------------

/**
 * Keys a client may send: whitespace-only, leading/trailing spaces, a tab, unicode, and the
 * URL-special `%`, `+`, `?`, `#`. No `.`/`..` segments: workerd normalises request.url, so
 * such keys are not addressable by path here (README, limits).
 */
export const KEYS = ["a", "dir/a", "dir/b", " ", "  lead", "trail  ", "tab\tkey", "ünï/☃", "100%", "a+b", "q?x", "h#x", "%2F", "a b+c%20"] as const;
/**
 * A key for a command that acts on objects: often "the n-th object the bucket holds now"
 * (so reads, copies, overwrites and deletes hit something), else a literal key.
 */
interface KeyPick {
  existing: number | null;
  key: string;
}
function resolveKey(b: BucketModel, pick: KeyPick): string {
  const held = [...b.objects.keys()].sort();
  return pick.existing !== null && held.length > 0 ? held[pick.existing % held.length]! : pick.key;
}

/** The bucket a read uses: the drawn one, or — when it is to read a held object and holds none — the next bucket that holds some. */
function heldBucket(m: Model, drawn: number, pick: KeyPick): number {
  if (pick.existing === null) return drawn;
  for (let i = 0; i < m.buckets.length; i++) if (m.buckets[(drawn + i) % m.buckets.length]!.objects.size > 0) return (drawn + i) % m.buckets.length;
  return drawn;
}

const PREFIXES = ["", "d", "dir/", " ", "a", "ü", "%", "t", "zz"];

/** Owners more often than others, so sequences reach deep states (not mostly refusals). */
const principal = fc.oneof(
  { weight: 3, arbitrary: fc.constant<PrincipalName>("adminA") },
  { weight: 2, arbitrary: fc.constantFrom<PrincipalName>(...PRINCIPAL_NAMES) },
);
const bucketIndex = fc.nat({ max: 2 });
/** A few keys often (so reads, overwrites and deletes hit objects), every key sometimes. */
const key = fc.oneof({ weight: 2, arbitrary: fc.constantFrom<string>("a", " ", "dir/a") }, { weight: 3, arbitrary: fc.constantFrom<string>(...KEYS) });
const keyPick: fc.Arbitrary<KeyPick> = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 9 }).map((existing) => ({ existing, key: "a" })) },
  { weight: 2, arbitrary: key.map((k) => ({ existing: null, key: k })) },
);
const ask = fc.constantFrom<SseAsk>(null, "AES256", "aws:kms");
/** PutObject may also ask for SSE-C (the model's customer key). */
const putAsk = fc.constantFrom<SseAsk>(null, "AES256", "aws:kms", "SSE-C");
/** The SSE-C key a GET/HEAD sends: mostly none, sometimes the right or a wrong one. */
const keyAsk = fc.oneof({ weight: 3, arbitrary: fc.constant<KeyAsk>("none") }, { weight: 2, arbitrary: fc.constantFrom<KeyAsk>("right", "wrong") });
const body = fc.uint8Array({ maxLength: 24 });

// ---- checking an answer -------------------------------------------------------------------------

interface Observed {
  status: number;
  code: string | null;
  bytes: Uint8Array;
  text: string;
  headers: Headers;
}

async function observe(r: Response): Promise<Observed> {
  const { bytes } = await readFully(r);
  const text = new TextDecoder().decode(bytes);
  return { status: r.status, code: r.status >= 300 ? xmlValue(text, "Code") : null, bytes, text, headers: r.headers };
}

class Disagreement extends Error {}

function fail(what: string, detail: string): never {
  throw new Disagreement(`${what}: ${detail}`);
}

/** Records the answer and fails unless status and code are the predicted ones. */
async function answer(real: Real, command: string, what: string, r: Response, want: Prediction, head = false): Promise<Observed> {
  const got = await observe(r);
  real.stats.record(command, got.status, got.code);
  const code = head ? null : want.code;
  if (got.status !== want.status || got.code !== code) {
    fail(what, `expected ${want.status}${code ? " " + code : ""} (${want.rule}), got ${got.status}${got.code ? " " + got.code : ""}: ${got.text.slice(0, 300)}`);
  }
  return got;
}

function expectHeader(what: string, got: Observed, name: string, want: string | null): void {
  const value = got.headers.get(name);
  if (value !== want) fail(what, `${name}: expected ${JSON.stringify(want)}, got ${JSON.stringify(value)}`);
}

/** The SSE headers of an answer about an object stored with `mode`: SSE-C names the customer algorithm and key MD5 instead. */
function expectSse(what: string, got: Observed, mode: StoredMode): void {
  expectHeader(what, got, SSE, mode === "SSE-C" ? null : mode);
  expectHeader(what, got, "x-amz-server-side-encryption-customer-key-md5", mode === "SSE-C" ? CUSTOMER_KEYS.right.md5 : null);
}

const showKey = (k: string) => JSON.stringify(k);
/** The key a command used (once run), else what it will pick. */
const showPick = (resolved: string, pick: KeyPick) => (resolved ? showKey(resolved) : pick.existing !== null ? `<held #${pick.existing}>` : showKey(pick.key));
const bucketOf = (m: Model, i: number): BucketModel => m.buckets[i]!;
const uploadOf = (m: Model, i: number): UploadModel => m.uploads[i % m.uploads.length]!;
const SSE = "x-amz-server-side-encryption";

// ---- object commands -----------------------------------------------------------------------------

class PutCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly keyPick: KeyPick, readonly body: Uint8Array, readonly ask: SseAsk) {}
  /** Resolved when run (see resolveKey). */
  key = "";
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    this.key = resolveKey(b, this.keyPick);
    const want = predictPut(b, this.p, this.key, this.ask);
    const headers = this.ask === "SSE-C" ? customerKeyHeaders("right") : this.ask ? { [SSE]: this.ask } : {};
    const r = await request(this.p, { method: "PUT", bucket: b.name, key: this.key, body: this.body, headers });
    const got = await answer(real, "PutObject", this.toString(), r, want);
    if (got.status !== 200) return;
    const mode = writeMode(b, this.ask);
    expectSse(this.toString(), got, mode);
    b.objects.set(this.key, { bytes: this.body, mode, etag: got.headers.get("etag") ?? fail(this.toString(), "no ETag") });
  }
  toString = () => `PUT ${this.p} b${this.b}/${showPick(this.key, this.keyPick)} ${this.body.byteLength}B sse=${this.ask}`;
}

class PostFormCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly key: string, readonly body: Uint8Array, readonly ask: SseAsk) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    const want = predictPut(b, this.p, this.key, this.ask, 204);
    const got = await answer(real, "PostObject", this.toString(), await postForm(this.p, b.name, this.key, this.body, this.ask), want);
    if (got.status !== 204) return;
    const mode = writeMode(b, this.ask);
    expectHeader(this.toString(), got, SSE, mode);
    b.objects.set(this.key, { bytes: this.body, mode, etag: got.headers.get("etag") ?? fail(this.toString(), "no ETag") });
  }
  toString = () => `POST-form ${this.p} b${this.b}/${showKey(this.key)} ${this.body.byteLength}B sse=${this.ask}`;
}

class CopyCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly p: PrincipalName,
    readonly drawnSource: number,
    readonly sourceKeyPick: KeyPick,
    readonly b: number,
    readonly keyPick: KeyPick,
    readonly directive: "COPY" | "REPLACE",
    readonly ask: SseAsk,
    /** Send the model's key as x-amz-copy-source-server-side-encryption-customer-*. */
    readonly sourceCustomerKey: boolean,
  ) {}
  /** Resolved when run (see heldBucket, resolveKey). */
  sb = this.drawnSource;
  sourceKey = "";
  key = "";
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    this.sb = heldBucket(m, this.drawnSource, this.sourceKeyPick);
    const source = bucketOf(m, this.sb);
    const target = bucketOf(m, this.b);
    this.sourceKey = resolveKey(source, this.sourceKeyPick);
    this.key = resolveKey(target, this.keyPick);
    const want = predictCopy(this.p, { source, sourceKey: this.sourceKey, target, key: this.key, directive: this.directive, ask: this.ask, sourceCustomerKey: this.sourceCustomerKey });
    const headers: Record<string, string> = { "x-amz-copy-source": copySource(source.name, this.sourceKey), "x-amz-metadata-directive": this.directive };
    if (this.ask === "SSE-C") Object.assign(headers, customerKeyHeaders("right"));
    else if (this.ask) headers[SSE] = this.ask;
    if (this.sourceCustomerKey) {
      for (const [name, value] of Object.entries(customerKeyHeaders("right"))) headers[`x-amz-copy-source-${name.slice("x-amz-".length)}`] = value;
    }
    const got = await answer(real, "CopyObject", this.toString(), await request(this.p, { method: "PUT", bucket: target.name, key: this.key, headers }), want);
    if (got.status !== 200) return;
    const mode = writeMode(target, this.ask);
    expectSse(this.toString(), got, mode);
    const etag = xmlValue(got.text, "ETag") ?? fail(this.toString(), "no ETag in CopyObjectResult");
    target.objects.set(this.key, { bytes: source.objects.get(this.sourceKey)!.bytes, mode, etag });
  }
  toString = () =>
    `COPY ${this.p} b${this.sb}/${showPick(this.sourceKey, this.sourceKeyPick)} -> b${this.b}/${showPick(this.key, this.keyPick)} ${this.directive} sse=${this.ask}${this.sourceCustomerKey ? " source-sse-c-key" : ""}`;
}

class GetCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly p: PrincipalName,
    readonly drawnBucket: number,
    readonly keyPick: KeyPick,
    readonly range: { first: number; last: number } | null,
    readonly head: boolean,
    readonly customerKey: KeyAsk,
    /** x-amz-checksum-mode: ENABLED (what SDK v3 sends on every GetObject). */
    readonly checksumMode = false,
  ) {}
  /** Resolved when run (see heldBucket, resolveKey). */
  b = this.drawnBucket;
  key = "";
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    this.b = heldBucket(m, this.drawnBucket, this.keyPick);
    const b = bucketOf(m, this.b);
    this.key = resolveKey(b, this.keyPick);
    const want = predictGet(b, this.p, this.key, this.range, this.customerKey);
    const headers: Record<string, string> = this.range ? { range: `bytes=${this.range.first}-${this.range.last}` } : {};
    if (this.customerKey !== "none") Object.assign(headers, customerKeyHeaders(this.customerKey));
    if (this.checksumMode) headers["x-amz-checksum-mode"] = "ENABLED";
    const r = await request(this.p, { method: this.head ? "HEAD" : "GET", bucket: b.name, key: this.key, headers });
    const got = await answer(real, this.head ? "HeadObject" : this.range ? "GetObject(range)" : "GetObject", this.toString(), r, want, this.head);
    if (got.status !== 200 && got.status !== 206) return;
    const obj = b.objects.get(this.key)!;
    expectSse(this.toString(), got, obj.mode);
    expectHeader(this.toString(), got, "etag", obj.etag);
    for (const [name, value] of Object.entries(await expectedChecksumHeaders(obj, this.checksumMode, !this.range))) expectHeader(this.toString(), got, name, value);
    const expected = this.head ? new Uint8Array(0) : readBytes(obj, this.range);
    if (!sameBytes(got.bytes, expected)) fail(this.toString(), `body: expected ${expected.byteLength} bytes [${[...expected]}], got ${got.bytes.byteLength} [${[...got.bytes]}]`);
  }
  toString = () =>
    `${this.head ? "HEAD" : "GET"} ${this.p} b${this.b}/${showPick(this.key, this.keyPick)}${this.range ? ` bytes=${this.range.first}-${this.range.last}` : ""}${this.customerKey !== "none" ? ` sse-c-key=${this.customerKey}` : ""}${this.checksumMode ? " checksum-mode" : ""}`;
}

class DeleteCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly keyPick: KeyPick) {}
  /** Resolved when run (see resolveKey). */
  key = "";
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    this.key = resolveKey(b, this.keyPick);
    const want = predictDelete(b, this.p, this.key);
    const got = await answer(real, "DeleteObject", this.toString(), await request(this.p, { method: "DELETE", bucket: b.name, key: this.key }), want);
    if (got.status === 204) b.objects.delete(this.key);
  }
  toString = () => `DELETE ${this.p} b${this.b}/${showPick(this.key, this.keyPick)}`;
}

class DeleteObjectsCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly keys: string[]) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    const want = predictDeleteObjects(b, this.p, this.keys);
    const xml = `<Delete>${this.keys.map((k) => `<Object><Key>${escapeXmlText(k)}</Key></Object>`).join("")}</Delete>`;
    const r = await request(this.p, { method: "POST", bucket: b.name, query: { delete: "" }, body: xml, headers: { "content-md5": await md5Base64(xml) } });
    const got = await answer(real, "DeleteObjects", this.toString(), r, { status: 200, code: null, rule: "DeleteObjects answers per key" });
    const deleted = xmlBlocks(got.text, "Deleted").map((block) => xmlValue(block, "Key")!);
    const errors = xmlBlocks(got.text, "Error").map((block) => `${xmlValue(block, "Key")} ${xmlValue(block, "Code")}`);
    const sorted = (xs: string[]) => [...xs].sort();
    const wantErrors = want.refused.map((x) => `${x.key} AccessDenied`);
    if (JSON.stringify(sorted(deleted)) !== JSON.stringify(sorted(want.deleted)) || JSON.stringify(sorted(errors)) !== JSON.stringify(sorted(wantErrors))) {
      fail(this.toString(), `expected Deleted ${JSON.stringify(want.deleted)} Error ${JSON.stringify(want.refused)}, got Deleted ${JSON.stringify(deleted)} Error ${JSON.stringify(errors)}`);
    }
    for (const k of want.deleted) b.objects.delete(k);
  }
  toString = () => `DeleteObjects ${this.p} b${this.b} ${JSON.stringify(this.keys)}`;
}

class ListCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly prefix: string) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    const want = predictList(b, this.p, this.prefix);
    const r = await request(this.p, { method: "GET", bucket: b.name, query: { "list-type": "2", prefix: this.prefix } });
    const got = await answer(real, "ListObjectsV2", this.toString(), r, want.prediction);
    if (got.status !== 200) return;
    const contents = xmlBlocks(got.text, "Contents").map((block) => ({ key: xmlValue(block, "Key")!, etag: xmlValue(block, "ETag"), size: Number(xmlValue(block, "Size")) }));
    const keys = contents.map((c) => c.key);
    if (JSON.stringify(keys) !== JSON.stringify(want.keys)) fail(this.toString(), `keys: expected ${JSON.stringify(want.keys)}, got ${JSON.stringify(keys)}`);
    for (const c of contents) {
      const obj = b.objects.get(c.key)!;
      if (c.size !== obj.bytes.byteLength) fail(this.toString(), `${showKey(c.key)} Size: expected ${obj.bytes.byteLength}, got ${c.size}`);
      const opaque = listEtagIsOpaque(b, this.p, obj);
      if (opaque ? c.etag === obj.etag : c.etag !== obj.etag) {
        fail(this.toString(), `${showKey(c.key)} ETag ${c.etag}: ${opaque ? "must not be the stored ETag (rule: listing a KMS object to X/N)" : `expected the stored ${obj.etag}`}`);
      }
    }
  }
  toString = () => `LIST ${this.p} b${this.b} prefix=${JSON.stringify(this.prefix)}`;
}

// ---- multipart commands ---------------------------------------------------------------------------

class CreateUploadCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly key: string, readonly ask: SseAsk) {}
  check = (m: Readonly<Model>) => m.uploads.length < 6;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    const want = predictCreateUpload(b, this.p, this.ask);
    const r = await request(this.p, { method: "POST", bucket: b.name, key: this.key, query: { uploads: "" }, headers: this.ask ? { [SSE]: this.ask } : {} });
    const got = await answer(real, "CreateMultipartUpload", this.toString(), r, want);
    if (got.status !== 200) return;
    const mode = writeMode(b, this.ask);
    expectHeader(this.toString(), got, SSE, mode);
    m.uploads.push({ id: xmlValue(got.text, "UploadId")!, bucket: this.b, key: this.key, mode, parts: new Map(), state: "active" });
  }
  toString = () => `CreateUpload ${this.p} b${this.b}/${showKey(this.key)} sse=${this.ask}`;
}

class UploadPartCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly u: number, readonly partNumber: number, readonly body: Uint8Array) {}
  check = (m: Readonly<Model>) => m.uploads.length > 0;
  async run(m: Model, real: Real): Promise<void> {
    const u = uploadOf(m, this.u);
    const b = bucketOf(m, u.bucket);
    const want = predictUploadPart(b, this.p, u);
    const r = await request(this.p, { method: "PUT", bucket: b.name, key: u.key, query: { partNumber: String(this.partNumber), uploadId: u.id }, body: this.body });
    const got = await answer(real, "UploadPart", this.toString(), r, want);
    if (got.status !== 200) return;
    u.parts.set(this.partNumber, { bytes: this.body, etag: got.headers.get("etag")! });
  }
  toString = () => `UploadPart ${this.p} upload#${this.u} part ${this.partNumber} ${this.body.byteLength}B`;
}

/** Complete of an upload not completed yet; `retry`: Complete again, with the very list it was completed with (a client's retry). */
class CompleteCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly u: number, readonly parts: number[], readonly retry = false) {}
  check = (m: Readonly<Model>) => m.uploads.length > 0 && (uploadOf(m as Model, this.u).state === "completed") === this.retry;
  async run(m: Model, real: Real): Promise<void> {
    const u = uploadOf(m, this.u);
    const b = bucketOf(m, u.bucket);
    const parts = u.completed?.parts ?? this.parts;
    const want = predictComplete(b, this.p, u, parts);
    const etagOf = (n: number) => u.parts.get(n)?.etag ?? '"00000000000000000000000000000000"';
    const xml = `<CompleteMultipartUpload>${parts.map((n) => `<Part><PartNumber>${n}</PartNumber><ETag>${escapeXmlText(etagOf(n))}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
    const r = await request(this.p, { method: "POST", bucket: b.name, key: u.key, query: { uploadId: u.id }, body: xml });
    const got = await answer(real, u.state === "completed" ? "Complete(retry)" : "CompleteMultipartUpload", this.toString(), r, want);
    if (got.status !== 200) return;
    expectHeader(this.toString(), got, SSE, u.mode);
    const etag = xmlValue(got.text, "ETag") ?? fail(this.toString(), "no ETag");
    if (u.completed) {
      if (etag !== u.completed.etag) fail(this.toString(), `retried Complete: expected the first answer's ETag ${u.completed.etag}, got ${etag}`);
      return;
    }
    u.state = "completed";
    u.completed = { parts: [...parts], etag };
    const bytes = new Uint8Array(parts.reduce((n, p) => n + u.parts.get(p)!.bytes.byteLength, 0));
    let offset = 0;
    for (const p of parts) {
      bytes.set(u.parts.get(p)!.bytes, offset);
      offset += u.parts.get(p)!.bytes.byteLength;
    }
    b.objects.set(u.key, { bytes, mode: u.mode, etag });
  }
  toString = () => (this.retry ? `Complete(retry, same list) ${this.p} upload#${this.u}` : `Complete ${this.p} upload#${this.u} parts ${JSON.stringify(this.parts)}`);
}

class ListPartsCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly u: number) {}
  check = (m: Readonly<Model>) => m.uploads.length > 0;
  async run(m: Model, real: Real): Promise<void> {
    const u = uploadOf(m, this.u);
    const b = bucketOf(m, u.bucket);
    const want = predictListParts(b, this.p, u);
    const got = await answer(real, "ListParts", this.toString(), await request(this.p, { method: "GET", bucket: b.name, key: u.key, query: { uploadId: u.id } }), want);
    if (got.status !== 200) return;
    const listed = xmlBlocks(got.text, "Part").map((block) => `${xmlValue(block, "PartNumber")} ${xmlValue(block, "ETag")} ${xmlValue(block, "Size")}`);
    const expected = [...u.parts].sort(([x], [y]) => x - y).map(([n, part]) => `${n} ${part.etag} ${part.bytes.byteLength}`);
    if (JSON.stringify(listed) !== JSON.stringify(expected)) fail(this.toString(), `parts: expected ${JSON.stringify(expected)}, got ${JSON.stringify(listed)}`);
  }
  toString = () => `ListParts ${this.p} upload#${this.u}`;
}

class AbortCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly u: number) {}
  check = (m: Readonly<Model>) => m.uploads.length > 0;
  async run(m: Model, real: Real): Promise<void> {
    const u = uploadOf(m, this.u);
    const b = bucketOf(m, u.bucket);
    const want = predictAbort(b, this.p, u);
    const got = await answer(real, "AbortMultipartUpload", this.toString(), await request(this.p, { method: "DELETE", bucket: b.name, key: u.key, query: { uploadId: u.id } }), want);
    if (got.status === 204) u.state = "aborted";
  }
  toString = () => `Abort ${this.p} upload#${this.u}`;
}

// ---- bucket configuration commands -------------------------------------------------------------------

class SetEncryptionCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly next: Mode | null) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    const want = predictSetEncryption(b, this.p, this.next);
    const r = this.next
      ? await request(this.p, { method: "PUT", bucket: b.name, query: { encryption: "" }, body: encryptionDocument(this.next) })
      : await request(this.p, { method: "DELETE", bucket: b.name, query: { encryption: "" } });
    const got = await answer(real, this.next ? "PutBucketEncryption" : "DeleteBucketEncryption", this.toString(), r, want);
    if (got.status < 300) b.defaultEncryption = this.next;
  }
  toString = () => `${this.next ? `PutBucketEncryption ${this.next}` : "DeleteBucketEncryption"} ${this.p} b${this.b}`;
}

class SetPolicyCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: PrincipalName, readonly b: number, readonly template: PolicyTemplate) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const b = bucketOf(m, this.b);
    const want = predictSetPolicy(b, this.p);
    const doc = policyDocument(this.template, b.name);
    const r = doc
      ? await request(this.p, { method: "PUT", bucket: b.name, query: { policy: "" }, body: doc })
      : await request(this.p, { method: "DELETE", bucket: b.name, query: { policy: "" } });
    const got = await answer(real, doc ? "PutBucketPolicy" : "DeleteBucketPolicy", this.toString(), r, want);
    if (got.status < 300) b.policy = this.template;
  }
  toString = () => `${this.template === "none" ? "DeleteBucketPolicy" : `PutBucketPolicy ${this.template}`} ${this.p} b${this.b}`;
}

// ---- the command arbitraries -------------------------------------------------------------------------

const range = fc.option(
  fc.tuple(fc.nat({ max: 30 }), fc.nat({ max: 30 })).map(([first, extra]) => ({ first, last: first + extra })),
  { nil: null },
);

/** Command kinds a run leaves out (MODEL_EXCLUDE, comma-separated names as below), e.g. to look past a known disagreement. */
export function commandArbitraries(exclude: readonly string[]): Array<fc.Arbitrary<fc.AsyncCommand<Model, Real>>> {
  return Object.entries(COMMANDS)
    .filter(([name]) => !exclude.includes(name))
    .flatMap(([name, arbitrary]) => Array.from({ length: WEIGHTS[name] ?? 1 }, () => arbitrary));
}

/** Reads and writes of objects more often than configuration changes (fc.commands picks uniformly). */
const WEIGHTS: Record<string, number> = { get: 4, put: 3, copy: 2, post: 2, list: 2, uploadPart: 2, complete: 2 };

const COMMANDS: Record<string, fc.Arbitrary<fc.AsyncCommand<Model, Real>>> = {
  put: fc.tuple(principal, bucketIndex, keyPick, body, putAsk).map(([p, b, k, data, a]) => new PutCommand(p, b, k, data, a)),
  post: fc.tuple(principal, bucketIndex, key, body, ask).map(([p, b, k, data, a]) => new PostFormCommand(p, b, k, data, a)),
  copy: fc
    .tuple(principal, bucketIndex, keyPick, bucketIndex, keyPick, fc.constantFrom<"COPY" | "REPLACE">("COPY", "REPLACE"), putAsk, fc.boolean())
    .map(([p, sb, sk, b, k, d, a, ck]) => new CopyCommand(p, sb, sk, b, k, d, a, ck)),
  get: fc
    .tuple(principal, bucketIndex, keyPick, range, fc.boolean(), keyAsk, fc.boolean())
    .map(([p, b, k, r, head, ck, mode]) => new GetCommand(p, b, k, head ? null : r, head, ck, mode)),
  delete: fc.tuple(principal, bucketIndex, keyPick).map(([p, b, k]) => new DeleteCommand(p, b, k)),
  deleteObjects: fc.tuple(principal, bucketIndex, fc.uniqueArray(key, { minLength: 1, maxLength: 3 })).map(([p, b, ks]) => new DeleteObjectsCommand(p, b, ks)),
  list: fc.tuple(principal, bucketIndex, fc.constantFrom(...PREFIXES)).map(([p, b, prefix]) => new ListCommand(p, b, prefix)),
  createUpload: fc.tuple(principal, bucketIndex, key, ask).map(([p, b, k, a]) => new CreateUploadCommand(p, b, k, a)),
  uploadPart: fc.tuple(principal, fc.nat({ max: 5 }), fc.oneof({ weight: 2, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }), body).map(([p, u, n, data]) => new UploadPartCommand(p, u, n, data)),
  complete: fc.tuple(principal, fc.nat({ max: 5 }), fc.oneof({ weight: 3, arbitrary: fc.constant([1]) }, { weight: 1, arbitrary: fc.subarray([1, 2, 3], { minLength: 1 }) })).map(([p, u, parts]) => new CompleteCommand(p, u, parts)),
  retryComplete: fc.tuple(principal, fc.nat({ max: 5 })).map(([p, u]) => new CompleteCommand(p, u, [], true)),
  abort: fc.tuple(principal, fc.nat({ max: 5 })).map(([p, u]) => new AbortCommand(p, u)),
  listParts: fc.tuple(principal, fc.nat({ max: 5 })).map(([p, u]) => new ListPartsCommand(p, u)),
  encryption: fc.tuple(principal, bucketIndex, fc.constantFrom<Mode | null>(null, "AES256", "aws:kms")).map(([p, b, next]) => new SetEncryptionCommand(p, b, next)),
  policy: fc.tuple(principal, bucketIndex, fc.constantFrom(...POLICY_TEMPLATES)).map(([p, b, t]) => new SetPolicyCommand(p, b, t)),
};

/** Each run's starting world: per bucket a default encryption and a policy template. */
export const initialWorld = fc.array(fc.record({ encryption: fc.constantFrom<Mode | null>(null, "AES256", "aws:kms"), policy: fc.constantFrom(...POLICY_TEMPLATES), sseC: fc.boolean() }), { minLength: 3, maxLength: 3 });

export { Disagreement };
