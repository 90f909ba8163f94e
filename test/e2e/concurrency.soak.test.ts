import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type GetObjectCommandOutput,
  type ServerSideEncryption,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createCipheriv, createHash } from "node:crypto";
import { Agent } from "node:http";
import { Readable } from "node:stream";
import { afterAll, describe, expect, inject, it } from "vitest";
import { endpoint, IDENTITIES, REGION } from "./support/clients";
import { kmsCall } from "./support/kms";

/**
 * Issue 8 item 4: many S3 clients at once against the one worker of the e2e run.
 *
 * 64 SDK clients (own sockets, several tenants and roles, with and without the SDK's default
 * checksums) run a seeded random mix of PUT (SSE-S3 / SSE-KMS, 0 B to a few MiB, buffered
 * or aws-chunked streamed), whole and ranged GETs, overwrites of shared keys, multipart
 * uploads, deletes and listings. Every body read is checked by sha256 against what was
 * written; a shared key must always read as one complete version that some client wrote
 * (its metadata names the version, so a ranged read is checked too); every failure must
 * be one the model predicts (NoSuchKey after a delete, InvalidRange, AccessDenied for a
 * member's SSE-KMS or another tenant's bucket). SDK retries are off, so a 5xx cannot hide.
 *
 * A second test fires the first SSE-KMS uploads of eight fresh tenants all at once and
 * checks through the KMS API that each tenant ends with exactly one default key, named by
 * every object of the burst.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const PART = 5 * MiB;
const CLIENTS = 64;
/** CONCURRENCY_OPS=200 (and CONCURRENCY_SEED) make a longer soak of the same mix outside npm test. */
const OPS_PER_CLIENT = Number(process.env.CONCURRENCY_OPS ?? 16);
const SHARED_KEYS_PER_BUCKET = 3;
/** Multipart uploads are the big transfers; a fixed budget keeps the run short. */
const MULTIPART_OWN = Math.ceil(OPS_PER_CLIENT / 4);
const MULTIPART_SHARED = Math.ceil(OPS_PER_CLIENT / 4);
const SEED = Number(process.env.CONCURRENCY_SEED ?? Date.now() % 1_000_000);

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Deterministic bytes for (seed, size): an AES-CTR keystream, so nothing is kept in memory. */
function bytesFor(seed: string, size: number): Buffer {
  const key = createHash("sha256").update(seed).digest().subarray(0, 16);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** mulberry32: a small seeded PRNG, so a failing mix of operations can be re-run (CONCURRENCY_SEED; the interleaving differs). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- identities (admin API) -----------------------------------------------------------------

interface Identity {
  name: string;
  tenantId: string;
  admin: boolean;
  accessKeyId: string;
  secretAccessKey: string;
}

async function adminApi<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${endpoint()}/_admin${path}`, {
    method,
    headers: { authorization: `Bearer ${inject("adminToken")}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const randomTenantId = () => Array.from({ length: 32 }, () => "0123456789abcdefghijklmnopqrstuvwxyz"[Math.floor(Math.random() * 36)]).join("");

async function newIdentity(tenantId: string, user: string, role: "tenant_admin" | "member"): Promise<Identity> {
  await adminApi("PUT", `/tenants/${tenantId}`, { name: `conc-${tenantId.slice(0, 6)}` });
  await adminApi("PUT", `/tenants/${tenantId}/users/${user}`, { role });
  const key = await adminApi<{ accessKeyId: string; secret: string }>("POST", `/tenants/${tenantId}/users/${user}/access-keys`, {});
  return { name: `${user}@${tenantId.slice(0, 6)}`, tenantId, admin: role === "tenant_admin", accessKeyId: key.accessKeyId, secretAccessKey: key.secret };
}

// ---- clients ----------------------------------------------------------------------------------

/** Requests as they went on the wire, counted by a middleware on every client. */
const wire = { requests: 0, byStatus: {} as Record<string, number>, payload: {} as Record<string, number>, fiveXX: [] as string[] };

/** Every client's socket pool, closed when the file is done. */
const agents: Agent[] = [];
afterAll(() => agents.forEach((a) => a.destroy()));

function client(who: Identity, opts: { checksums: boolean; sockets?: number }): S3Client {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.sockets ?? 8 });
  agents.push(agent);
  const c = new S3Client({
    endpoint: endpoint(),
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: who.accessKeyId, secretAccessKey: who.secretAccessKey },
    // No retries: every 5xx or dropped connection must surface.
    maxAttempts: 1,
    requestHandler: { httpAgent: agent, requestTimeout: 60_000 },
    ...(opts.checksums ? {} : { requestChecksumCalculation: "WHEN_REQUIRED" as const, responseChecksumValidation: "WHEN_REQUIRED" as const }),
  });
  c.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { method: string; path: string; headers: Record<string, string> };
      wire.requests++;
      if (request.method === "PUT") {
        const mode = request.headers["x-amz-content-sha256"] ?? "none";
        const label = mode.startsWith("STREAMING") ? mode : /^[0-9a-f]{64}$/.test(mode) ? "signed sha256" : mode;
        wire.payload[label] = (wire.payload[label] ?? 0) + 1;
      }
      const count = (status: number | string) => {
        wire.byStatus[status] = (wire.byStatus[status] ?? 0) + 1;
        if (typeof status === "number" && status >= 500) wire.fiveXX.push(`${context.commandName} ${request.method} ${request.path} → ${status}`);
      };
      try {
        const result = await next(args);
        count((result.response as { statusCode: number }).statusCode);
        return result;
      } catch (error) {
        count((error as S3ServiceException).$metadata?.httpStatusCode ?? "network");
        throw error;
      }
    },
    { step: "deserialize", name: "concurrencyWireCounter" },
  );
  return c;
}

// ---- the model ----------------------------------------------------------------------------

interface Version {
  id: string;
  seed: string;
  size: number;
  sha: string;
  sse: ServerSideEncryption;
}

/** A key of one bucket that many clients overwrite: every version ever sent to it. */
interface SharedKey {
  bucket: string;
  key: string;
  versions: Map<string, Version>;
  completedPuts: number;
  deletesIssued: number;
}

interface Bucket {
  name: string;
  tenantId: string;
  shared: SharedKey[];
}

/** S3's range semantics (src/s3/range.ts is not imported: the test keeps its own model). */
function expectedSpan(range: string, size: number): { first: number; last: number } | "unsatisfiable" {
  const m = /^bytes=(\d*)-(\d*)$/.exec(range)!;
  if (size === 0) return "unsatisfiable";
  if (m[1] === "") {
    const n = Number(m[2]);
    return n === 0 ? "unsatisfiable" : { first: Math.max(0, size - n), last: size - 1 };
  }
  const first = Number(m[1]);
  if (first >= size) return "unsatisfiable";
  return { first, last: m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

/** Sizes: many tiny, 64 KiB chunk edges, some hundreds of KiB, a few MiB. */
function pickSize(rnd: () => number): number {
  const r = rnd();
  if (r < 0.08) return 0;
  if (r < 0.14) return 1;
  if (r < 0.4) return Math.floor(rnd() * 4 * KiB);
  if (r < 0.65) return [65535, 65536, 65537, 131071, 131072, 131073, 65536 * 3 + 7][Math.floor(rnd() * 7)]!;
  if (r < 0.95) return 100 * KiB + Math.floor(rnd() * 900 * KiB);
  return MiB + Math.floor(rnd() * 2 * MiB);
}

/** Ranges around chunk (64 KiB) and part (5 MiB) edges, the ends, suffixes, open and past-the-end. */
function pickRange(rnd: () => number, size: number): string {
  const at = (n: number) => Math.max(0, Math.min(n, size + 2));
  const edges = [0, 65535, 65536, 65536 + 16, 131072, PART - 1, PART, size - 1, size];
  const edge = edges[Math.floor(rnd() * edges.length)]!;
  switch (Math.floor(rnd() * 6)) {
    case 0:
      return `bytes=${at(edge)}-${at(edge)}`;
    case 1:
      return `bytes=${at(edge - 3)}-${at(edge + 2)}`;
    case 2: {
      const a = Math.floor(rnd() * (size + 1));
      return `bytes=${a}-${a + Math.floor(rnd() * 200 * KiB)}`;
    }
    case 3:
      return `bytes=${Math.floor(rnd() * (size + 1))}-`;
    case 4:
      return `bytes=-${1 + Math.floor(rnd() * Math.max(1, size))}`;
    default:
      return `bytes=${size + Math.floor(rnd() * 3)}-${size + 10}`;
  }
}

interface Outcome {
  mismatches: string[];
  unexpected: string[];
  ops: Record<string, number>;
  expectedErrors: Record<string, number>;
}

const errorOf = (error: unknown): { code: string; status: number | undefined } =>
  error instanceof S3ServiceException ? { code: error.name, status: error.$metadata.httpStatusCode } : { code: `${(error as Error).name}: ${(error as Error).message}`, status: undefined };

async function readBody(out: GetObjectCommandOutput): Promise<Buffer> {
  return Buffer.from(await out.Body!.transformToByteArray());
}

describe("64 concurrent clients", () => {
  it(
    "PUT/GET/ranges/overwrites/multipart/deletes/lists: every body verified, no 5xx, only expected errors",
    async () => {
      const started = Date.now();
      // Tenants: A (admin + member, seeded), B (admin, seeded), C (admin + member), D (admin).
      const tenantC = randomTenantId();
      const tenantD = randomTenantId();
      const seeded = (name: keyof typeof IDENTITIES): Identity => ({ name, admin: name !== "memberA", ...IDENTITIES[name] });
      const identities: Identity[] = [
        seeded("adminA"),
        seeded("memberA"),
        seeded("adminB"),
        await newIdentity(tenantC, "admin-c", "tenant_admin"),
        await newIdentity(tenantC, "member-c", "member"),
        await newIdentity(tenantD, "admin-d", "tenant_admin"),
      ];
      const buckets = new Map<string, Bucket>();
      for (const who of identities.filter((i) => i.admin)) {
        const name = `conc-${who.tenantId.slice(-6)}-${Date.now().toString(36)}`;
        await client(who, { checksums: true }).send(new CreateBucketCommand({ Bucket: name }));
        const shared = Array.from({ length: SHARED_KEYS_PER_BUCKET }, (_, j) => ({ bucket: name, key: `shared/${j}`, versions: new Map(), completedPuts: 0, deletesIssued: 0 }));
        buckets.set(who.tenantId, { name, tenantId: who.tenantId, shared });
      }
      /** The default CMK ARN each tenant's SSE-KMS objects must name (first one seen). */
      const defaultArn = new Map<string, string>();
      const budget = { own: MULTIPART_OWN, shared: MULTIPART_SHARED };
      const outcome: Outcome = { mismatches: [], unexpected: [], ops: {}, expectedErrors: {} };

      const runClient = async (index: number) => {
        const who = identities[index % identities.length]!;
        const home = buckets.get(who.tenantId)!;
        const foreign = [...buckets.values()].find((b) => b.tenantId !== who.tenantId)!;
        const checksums = index % 4 !== 3;
        const s3c = client(who, { checksums });
        const rnd = prng(SEED * 1000 + index);
        const own = new Map<string, Version | null>(); // null: deleted
        let serial = 0;
        const tag = (op: string) => `client ${index} (${who.name}, seed ${SEED}) ${op}`;

        const note = (op: string) => (outcome.ops[op] = (outcome.ops[op] ?? 0) + 1);
        const expectedError = (op: string, code: string) => (outcome.expectedErrors[`${op}:${code}`] = (outcome.expectedErrors[`${op}:${code}`] ?? 0) + 1);
        const sseFor = (): ServerSideEncryption => (who.admin && rnd() < 0.5 ? "aws:kms" : "AES256");

        const checkSse = (what: string, version: Version, out: { ServerSideEncryption?: string; SSEKMSKeyId?: string }) => {
          if (out.ServerSideEncryption !== version.sse) outcome.mismatches.push(`${what}: SSE ${out.ServerSideEncryption} ≠ ${version.sse}`);
          if (version.sse === "aws:kms") {
            const arn = defaultArn.get(home.tenantId) ?? out.SSEKMSKeyId!;
            defaultArn.set(home.tenantId, arn);
            if (out.SSEKMSKeyId !== arn) outcome.mismatches.push(`${what}: key ${out.SSEKMSKeyId} ≠ the tenant's default ${arn}`);
          }
        };

        /** Puts `version` at `key` in one of three ways: buffered, aws-chunked stream, or multipart. */
        const put = async (bucket: string, key: string, version: Version, how: "single" | "multipart", metadata: Record<string, string> = {}) => {
          const body = bytesFor(version.seed, version.size);
          if (how === "multipart") {
            if (rnd() < 0.5) {
              const upload = new Upload({ client: s3c, params: { Bucket: bucket, Key: key, Body: body, ServerSideEncryption: version.sse, Metadata: metadata }, partSize: PART, queueSize: 2 });
              const out = await upload.done();
              return out as { ServerSideEncryption?: string; SSEKMSKeyId?: string };
            }
            const { UploadId } = await s3c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ServerSideEncryption: version.sse, Metadata: metadata }));
            const parts = await Promise.all(
              [body.subarray(0, PART), body.subarray(PART)].map(async (Body, i) => {
                const out = await s3c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body }));
                return { PartNumber: i + 1, ETag: out.ETag, ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}) };
              }),
            );
            return s3c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
          }
          // A Readable body makes the SDK stream it aws-chunked with a trailing checksum.
          const streamed = checksums && rnd() < 0.5;
          return s3c.send(
            new PutObjectCommand({ Bucket: bucket, Key: key, Body: streamed ? Readable.from([body]) : body, ContentLength: version.size, ServerSideEncryption: version.sse, Metadata: metadata }),
          );
        };

        /** GET `key` (whole or `range`), check the bytes against `version` (or the version the metadata names). */
        const get = async (what: string, bucket: string, key: string, range: string | undefined, known: (out: GetObjectCommandOutput) => Version | string) => {
          const out = await s3c.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: range } : {}) }));
          const body = await readBody(out);
          const version = known(out);
          if (typeof version === "string") return outcome.mismatches.push(`${what}: ${version}`);
          // SSE-KMS is a tenant_admin interface: a member must never be served an SSE-KMS object.
          if (!who.admin && version.sse === "aws:kms") return outcome.mismatches.push(`${what}: a member read SSE-KMS version ${version.id}`);
          checkSse(what, version, out);
          if (!range) {
            if (body.length !== version.size || sha256(body) !== version.sha) outcome.mismatches.push(`${what}: body of ${body.length} B is not version ${version.id} (${version.size} B)`);
            return;
          }
          const span = expectedSpan(range, version.size);
          if (span === "unsatisfiable") return outcome.mismatches.push(`${what} ${range}: answered 206 for an unsatisfiable range of ${version.size} B`);
          const slice = bytesFor(version.seed, span.last + 1).subarray(span.first);
          if (out.ContentRange !== `bytes ${span.first}-${span.last}/${version.size}`) outcome.mismatches.push(`${what} ${range}: Content-Range ${out.ContentRange}`);
          if (body.length !== slice.length || sha256(body) !== sha256(slice)) outcome.mismatches.push(`${what} ${range}: ${body.length} B differ from version ${version.id} [${span.first}, ${span.last}]`);
        };

        for (let n = 0; n < OPS_PER_CLIENT; n++) {
          const r = rnd();
          const ownKeys = [...own.keys()];
          const pickOwn = () => ownKeys[Math.floor(rnd() * ownKeys.length)]!;
          const shared = home.shared[Math.floor(rnd() * home.shared.length)]!;
          let op = "";
          let expected: string[] = [];
          const detail: Record<string, unknown> = {};
          try {
            if (r < 0.22 || ownKeys.length === 0) {
              // PUT a new or an existing own key.
              const key = ownKeys.length > 0 && rnd() < 0.3 ? pickOwn() : `c${index}/k${serial++}`;
              const memberKms = !who.admin && rnd() < 0.15;
              const version: Version = { id: `${index}.${n}`, seed: `${SEED}/${index}/${n}`, size: pickSize(rnd), sha: "", sse: memberKms ? "aws:kms" : sseFor() };
              version.sha = sha256(bytesFor(version.seed, version.size));
              op = memberKms ? "put-member-kms" : "put";
              // A member may not use SSE-KMS (OBS rule): AccessDenied, nothing stored.
              expected = memberKms ? ["AccessDenied"] : [];
              const out = await put(home.name, key, version, "single");
              if (memberKms) throw new Error("member SSE-KMS upload was accepted");
              checkSse(tag(`PUT ${key}`), version, out);
              own.set(key, version);
            } else if (r < 0.34) {
              op = "get";
              const key = pickOwn();
              const version = own.get(key);
              expected = version ? [] : ["NoSuchKey"];
              await get(tag(`GET ${key}`), home.name, key, undefined, () => version ?? "read a deleted key");
            } else if (r < 0.48) {
              op = "get-range";
              const key = pickOwn();
              const version = own.get(key);
              const range = pickRange(rnd, version?.size ?? 0);
              expected = !version ? ["NoSuchKey"] : expectedSpan(range, version.size) === "unsatisfiable" ? ["InvalidRange"] : [];
              await get(tag(`GET ${key}`), home.name, key, range, () => version ?? "read a deleted key");
            } else if (r < 0.6) {
              // Overwrite a shared key: the version is known before it is sent, so a reader may see it at once.
              const multipart = rnd() < 0.25 && budget.shared > 0;
              if (multipart) budget.shared--;
              op = multipart ? "put-shared-multipart" : "put-shared";
              const size = multipart ? PART + 1 + Math.floor(rnd() * 512 * KiB) : pickSize(rnd);
              const version: Version = { id: `${index}.${n}`, seed: `${SEED}/${index}/${n}/shared`, size, sha: "", sse: sseFor() };
              version.sha = sha256(bytesFor(version.seed, version.size));
              shared.versions.set(version.id, version);
              const out = await put(home.name, shared.key, version, multipart ? "multipart" : "single", { v: version.id });
              checkSse(tag(`PUT ${shared.key}`), version, out);
              shared.completedPuts++;
            } else if (r < 0.78) {
              op = rnd() < 0.5 ? "get-shared" : "get-shared-range";
              const before = shared.completedPuts;
              const range = op === "get-shared" ? undefined : pickRange(rnd, 64 * KiB + Math.floor(rnd() * PART));
              try {
                await get(tag(`GET ${shared.key}`), home.name, shared.key, range, (out) => {
                  const id = out.Metadata?.v;
                  return (id && shared.versions.get(id)) || `metadata names an unknown version ${id}`;
                });
              } catch (error) {
                // NoSuchKey: nothing was there yet, or a delete went out. InvalidRange: the
                // range is past the end of a version of that size (the error says which size).
                const { code } = errorOf(error);
                const actual = Number((error as { ActualObjectSize?: string }).ActualObjectSize);
                Object.assign(detail, { key: shared.key, range, actual, before, sizes: [...shared.versions.values()].map((v) => v.size) });
                if (code === "NoSuchKey" && (before === 0 || shared.deletesIssued > 0)) expected = ["NoSuchKey"];
                // A member reading a shared key an admin last wrote with SSE-KMS: refused (README, "Who may do what").
                if (code === "AccessDenied" && !who.admin && [...shared.versions.values()].some((v) => v.sse === "aws:kms")) expected = ["AccessDenied"];
                if (code === "InvalidRange" && range && [...shared.versions.values()].some((v) => v.size === actual && expectedSpan(range, v.size) === "unsatisfiable")) expected = ["InvalidRange"];
                throw error;
              }
            } else if (r < 0.84 && budget.own > 0) {
              op = "multipart";
              budget.own--;
              const key = `c${index}/mp${serial++}`;
              const version: Version = { id: `${index}.${n}`, seed: `${SEED}/${index}/${n}/mp`, size: PART + 1 + Math.floor(rnd() * MiB), sha: "", sse: sseFor() };
              version.sha = sha256(bytesFor(version.seed, version.size));
              const out = await put(home.name, key, version, "multipart");
              checkSse(tag(`multipart ${key}`), version, out);
              own.set(key, version);
              // Read it back across the part boundary.
              await get(tag(`GET ${key}`), home.name, key, `bytes=${PART - 100}-${PART + 99}`, () => version);
            } else if (r < 0.9) {
              op = "delete";
              const key = pickOwn();
              await s3c.send(new DeleteObjectCommand({ Bucket: home.name, Key: key }));
              own.set(key, null);
            } else if (r < 0.91) {
              // Only the last shared key is ever deleted: the others, once written, must always be there.
              op = "delete-shared";
              const doomed = home.shared.at(-1)!;
              doomed.deletesIssued++;
              await s3c.send(new DeleteObjectCommand({ Bucket: home.name, Key: doomed.key }));
            } else if (r < 0.97) {
              op = "list";
              let token: string | undefined;
              const listed = new Map<string, number>();
              do {
                const page = await s3c.send(new ListObjectsV2Command({ Bucket: home.name, Prefix: `c${index}/`, MaxKeys: 5, ContinuationToken: token }));
                for (const o of page.Contents ?? []) listed.set(o.Key!, o.Size!);
                token = page.NextContinuationToken;
              } while (token);
              const live = [...own].filter(([, v]) => v !== null).map(([k, v]) => [k, v!.size] as const).sort();
              const got = [...listed].sort();
              if (JSON.stringify(got) !== JSON.stringify(live)) outcome.mismatches.push(tag(`LIST c${index}/: ${JSON.stringify(got)} ≠ ${JSON.stringify(live)}`));
              const sharedList = await s3c.send(new ListObjectsV2Command({ Bucket: home.name, Prefix: "shared/" }));
              for (const o of sharedList.Contents ?? []) {
                const sizes = new Set([...(home.shared.find((s) => s.key === o.Key)?.versions.values() ?? [])].map((v) => v.size));
                if (!sizes.has(o.Size!)) outcome.mismatches.push(tag(`LIST shared/: ${o.Key} has ${o.Size} B, no version had that size`));
              }
            } else {
              // Another tenant's bucket, no policy: AccessDenied for reads and writes alike.
              op = "cross-tenant";
              expected = ["AccessDenied"];
              if (rnd() < 0.5) await s3c.send(new GetObjectCommand({ Bucket: foreign.name, Key: foreign.shared[0]!.key }));
              else await s3c.send(new PutObjectCommand({ Bucket: foreign.name, Key: `intruder/${index}`, Body: "x" }));
              throw new Error("another tenant's bucket answered");
            }
            note(op);
            if (expected.length > 0) outcome.unexpected.push(tag(`${op}: succeeded, expected ${expected.join("|")}`));
          } catch (error) {
            note(op);
            const { code, status } = errorOf(error);
            if (expected.includes(code)) expectedError(op, code);
            else outcome.unexpected.push(tag(`${op}: ${code} (${status ?? "no status"}) ${JSON.stringify(detail)}`));
          }
        }
      };

      await Promise.all(Array.from({ length: CLIENTS }, (_, i) => runClient(i)));
      const seconds = (Date.now() - started) / 1000;
      console.log(
        `concurrency: seed ${SEED}, ${CLIENTS} clients, ${wire.requests} requests in ${seconds.toFixed(1)} s; ops ${JSON.stringify(outcome.ops)}; ` +
          `expected errors ${JSON.stringify(outcome.expectedErrors)}; statuses ${JSON.stringify(wire.byStatus)}; PUT payloads ${JSON.stringify(wire.payload)}; ` +
          `mismatches ${outcome.mismatches.length}, 5xx ${wire.fiveXX.length}, unexpected ${outcome.unexpected.length}`,
      );
      expect(outcome.mismatches).toEqual([]);
      expect(wire.fiveXX).toEqual([]);
      expect(outcome.unexpected).toEqual([]);
      // The mix really was mixed.
      for (const op of ["put", "get", "get-range", "put-shared", "get-shared", "get-shared-range", "delete", "list", "cross-tenant", "multipart", "put-shared-multipart"]) {
        expect(outcome.ops[op] ?? 0, op).toBeGreaterThan(0);
      }
      expect(Object.keys(wire.payload).some((m) => m.startsWith("STREAMING"))).toBe(true);
      expect(wire.payload["signed sha256"] ?? 0).toBeGreaterThan(0);
    },
    120_000 * Math.max(1, OPS_PER_CLIENT / 16),
  );
});

// ---- first SSE-KMS uploads of fresh tenants ---------------------------------------------------

/** The KMS JSON API of the worker (support/kms.ts), as a call that must succeed. */
async function kms<T>(who: Identity, operation: string, input: Record<string, unknown>): Promise<T> {
  const r = await kmsCall(who, operation, input);
  if (r.status !== 200) throw new Error(`KMS ${operation}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as T;
}

describe("first SSE-KMS uploads in fresh tenants, all at once", () => {
  it("8 tenants × 8 parallel first uploads: one default CMK per tenant, named by every object", async () => {
    const TENANTS = 8;
    const UPLOADS = 8;
    const tenants = await Promise.all(
      Array.from({ length: TENANTS }, async (_, t) => {
        const who = await newIdentity(randomTenantId(), `first-${t}`, "tenant_admin");
        const bucket = `first-kms-${t}-${Date.now().toString(36)}`;
        await client(who, { checksums: true }).send(new CreateBucketCommand({ Bucket: bucket }));
        return { who, bucket, clients: Array.from({ length: UPLOADS }, (_, u) => client(who, { checksums: u % 2 === 0, sockets: 2 })) };
      }),
    );
    // Before the burst, no tenant has a key.
    for (const { who } of tenants) expect((await kms<{ Keys: unknown[] }>(who, "ListKeys", {})).Keys).toEqual([]);

    // The burst: 64 first uploads at once — single PUTs (buffered and aws-chunked) and multipart.
    const written = await Promise.all(
      tenants.flatMap(({ who, bucket, clients }) =>
        clients.map(async (s3c, u) => {
          const key = `first/${u}`;
          const body = bytesFor(`${who.tenantId}/${u}`, u * 7919);
          let arn: string | undefined;
          if (u < 6) {
            const out = await s3c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: u % 3 === 0 ? Readable.from([body]) : body, ContentLength: body.length, ServerSideEncryption: "aws:kms" }));
            arn = out.SSEKMSKeyId;
          } else {
            const { UploadId, SSEKMSKeyId } = await s3c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ServerSideEncryption: "aws:kms" }));
            const part = await s3c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: body }));
            const done = await s3c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, ...(part.ChecksumCRC32 ? { ChecksumCRC32: part.ChecksumCRC32 } : {}) }] } }));
            expect(done.SSEKMSKeyId).toBe(SSEKMSKeyId);
            arn = SSEKMSKeyId;
          }
          return { who, bucket, key, sha: sha256(body), arn, s3c };
        }),
      ),
    );

    for (const { who } of tenants) {
      const { Keys } = await kms<{ Keys: { KeyId: string; KeyArn: string }[] }>(who, "ListKeys", {});
      expect(Keys, who.tenantId).toHaveLength(1);
      const { KeyMetadata } = await kms<{ KeyMetadata: { Arn: string; KeyManager: string; KeyState: string } }>(who, "DescribeKey", { KeyId: Keys[0]!.KeyId });
      expect(KeyMetadata).toMatchObject({ Arn: Keys[0]!.KeyArn, KeyManager: "AWS", KeyState: "Enabled" });
      expect(KeyMetadata.Arn).toContain(`:${who.tenantId}:key/`);
      const mine = written.filter((w) => w.who === who);
      expect(mine.map((w) => w.arn)).toEqual(mine.map(() => KeyMetadata.Arn));
      await Promise.all(
        mine.map(async (w) => {
          const head = await w.s3c.send(new HeadObjectCommand({ Bucket: w.bucket, Key: w.key }));
          expect(head.SSEKMSKeyId).toBe(KeyMetadata.Arn);
          const got = await w.s3c.send(new GetObjectCommand({ Bucket: w.bucket, Key: w.key }));
          expect(sha256(await readBody(got))).toBe(w.sha);
        }),
      );
    }
  });
});
