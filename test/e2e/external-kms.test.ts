import { CopyObjectCommand, CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, connect, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM helper shared with scripts/
import { startTestWorker, TEST_MASTER_KEYS } from "../../scripts/lib/worker.mjs";
import { IDENTITIES, endpoint, runWith, s3, uniqueBucket } from "./support/clients";
import { kmsCall } from "./support/kms";
import { missing } from "./support/programs";

/**
 * CMKs rooted in an external KMS (issue 15), with real servers only:
 *  - the gateway under test ("G"): its own worker, EXTERNAL_KEY_CACHE_SECONDS=2 and
 *    EXTERNAL_KMS_TIMEOUT_MS=1500 so revocation and timeouts show within seconds;
 *  - the external KMS for revocation: the suite's shared worker ("X", a second gateway
 *    instance), reached through a TCP relay this file runs, which can stall (accept and
 *    never answer) or stop (refuse connections) to play a slow or dead KMS;
 *  - moto_server (EXTERNAL_KMS_ENDPOINT if set, else started here) for protocol
 *    compatibility with a KMS that is not this code base.
 * Two worker processes in all (G and the shared X); G is restarted once on its own state,
 * with a second master secret, for the rewrap job.
 */
const CACHE_SECONDS = 2;
const TIMEOUT_MS = 1500;
const adminA = IDENTITIES.adminA;

interface TestWorker {
  endpoint: string;
  adminToken: string;
  persist: string;
  dispose(): Promise<void>;
}

let gateway: TestWorker;
const bucket = uniqueBucket("extkms");
// G's state lives here (not in startTestWorker's throwaway directory) so G can restart on it.
const stateRoot = mkdtempSync(join(tmpdir(), "sse-gw-extkms-"));
const persist = join(stateRoot, "state");
const gatewayVars = {
  EXTERNAL_KEY_CACHE_SECONDS: String(CACHE_SECONDS),
  EXTERNAL_KMS_TIMEOUT_MS: String(TIMEOUT_MS),
  // Credentials as named Worker secrets (the binding names "XKMS"), instead of sealed in D1.
  XKMS_ACCESS_KEY_ID: IDENTITIES.adminB.accessKeyId,
  XKMS_SECRET_ACCESS_KEY: IDENTITIES.adminB.secretAccessKey,
};

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${gateway.endpoint}/_admin${path}`, {
    method,
    headers: { authorization: `Bearer ${gateway.adminToken}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function externalCalls(): Promise<Record<string, number>> {
  return (await admin("GET", "/kms/external/calls")).body["calls"] as Record<string, number>;
}

const sum = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const client = () => s3("adminA", { endpoint: gateway.endpoint });
/** No SDK retries: a 503 is seen once, and its time is the gateway's, not the SDK's backoff. */
const once = () => s3("adminA", { endpoint: gateway.endpoint, maxAttempts: 1 });

async function put(key: string, body: string | Uint8Array, keyId: string, c = client(), into = bucket): Promise<void> {
  await c.send(new PutObjectCommand({ Bucket: into, Key: key, Body: body, ServerSideEncryption: "aws:kms", SSEKMSKeyId: keyId }));
}

async function get(key: string, c = client(), from = bucket): Promise<string> {
  return (await c.send(new GetObjectCommand({ Bucket: from, Key: key }))).Body!.transformToString();
}

// ---- the gateway's local state and FORMAT.md, read independently ------------------------

const here = dirname(fileURLToPath(import.meta.url));

interface ExternalState {
  versions: Record<string, string | null>;
  bucketKeys: Array<{ version: number; bucket: string; blob: string; createdAt: number }>;
  objects: Record<string, Record<string, string>>;
}

/** D1 rows of a CMK and R2 metadata of objects, read from G's persistence directory (support/external_state.py). */
async function localState(keyId: string, objects: Array<[string, string]> = []): Promise<ExternalState> {
  const r = await runWith("adminA", "python3", [join(here, "support", "external_state.py"), gateway.persist, "dump", keyId, ...objects.map(([b, k]) => `${b}/${k}`)]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ExternalState;
}

const envelopeOf = (state: ExternalState, b: string, k: string) => JSON.parse(state.objects[`${b}/${k}`]!["sse-envelope"]!) as Record<string, unknown>;

/** The encryption context FORMAT.md §10 gives a bucket key. */
const bucketContext = (b: string, version = 1) => ({ "s3-sse-gw:tenant": adminA.tenantId, "s3-sse-gw:bucket": b, "s3-sse-gw:cmk": boundKey.arn, "s3-sse-gw:version": String(version) });

const te = new TextEncoder();
const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const info = (...fields: Array<string | Buffer>) => Buffer.concat(fields.map((f) => (typeof f === "string" ? Buffer.concat([te.encode(f), Buffer.from([0])]) : f)));

/** HKDF-SHA256 to a 32-byte key (Node's WebCrypto, nothing from src/). */
async function hkdf(ikm: Uint8Array, salt: Uint8Array, infoBytes: Uint8Array, alg: AlgorithmIdentifier | HmacImportParams, usages: KeyUsage[]): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", new Uint8Array(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(salt), info: new Uint8Array(infoBytes) }, base, 256);
  return crypto.subtle.importKey("raw", bits, alg, false, usages);
}

/** The S3 error of a failing call: code, status and Retry-After. */
async function failure(p: Promise<unknown>): Promise<{ code: string; status: number; retryAfter: string | undefined }> {
  try {
    await p;
  } catch (error) {
    const e = error as S3ServiceException;
    const headers = (e.$response?.headers ?? {}) as Record<string, string>;
    return { code: e.name, status: e.$metadata.httpStatusCode ?? 0, retryAfter: headers["retry-after"] };
  }
  throw new Error("expected the call to fail");
}

/** One request the gateway sent to the external KMS, as the relay saw it on the wire. */
interface SeenRequest {
  operation: string;
  body: Record<string, unknown>;
}

/**
 * A TCP relay to `target` that can stall (accept, never answer) or stop (refuse), and
 * that keeps what the gateway sent, so a test can read the external calls' bodies.
 */
class Relay {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  /** Bytes each connection sent upstream (connections interleave; each is parsed alone). */
  private sent = new Map<Socket, Buffer[]>();
  stalled = false;
  port = 0;

  /** The external KMS requests sent since the last call (plain HTTP/1.1, parsed off the wire). */
  takeRequests(): SeenRequest[] {
    const out: SeenRequest[] = [];
    for (const [socket, chunks] of this.sent) {
      const wire = Buffer.concat(chunks);
      if (socket.destroyed) this.sent.delete(socket);
      else this.sent.set(socket, []);
      for (let at = 0; at < wire.length; ) {
        const end = wire.indexOf("\r\n\r\n", at);
        if (end < 0) break;
        const head = wire.subarray(at, end).toString("latin1");
        const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
        const operation = /^x-amz-target:\s*TrentService\.(\w+)/im.exec(head)?.[1] ?? "?";
        out.push({ operation, body: JSON.parse(wire.subarray(end + 4, end + 4 + length).toString("utf8")) as Record<string, unknown> });
        at = end + 4 + length;
      }
    }
    return out;
  }

  constructor(private readonly target: URL) {}

  async start(port = 0): Promise<void> {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => {});
      if (this.stalled) return; // accepted, never answered
      const upstream = connect(Number(this.target.port), this.target.hostname);
      upstream.on("error", () => socket.destroy());
      socket.on("error", () => upstream.destroy());
      this.sockets.add(upstream);
      upstream.on("close", () => this.sockets.delete(upstream));
      this.sent.set(socket, []);
      socket.on("data", (chunk: Buffer) => this.sent.get(socket)?.push(chunk));
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drop open connections so kept-alive ones do not bypass the new mode. */
  private cut(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  stall(on: boolean): void {
    this.stalled = on;
    this.cut();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

let relay: Relay;
let externalKey: { KeyId: string; Arn: string };
let boundKey: { keyId: string; arn: string };

beforeAll(async () => {
  gateway = (await startTestWorker({ vars: gatewayVars, persist })) as TestWorker;
  await client().send(new CreateBucketCommand({ Bucket: bucket }));
  relay = new Relay(new URL(endpoint()));
  await relay.start();
  // The external key: a customer key of tenant B on the other gateway instance.
  const created = await kmsCall("adminB", "CreateKey", { Description: "external root for tenant A on another gateway" }, endpoint());
  expect(created.status).toBe(200);
  externalKey = created.body["KeyMetadata"] as { KeyId: string; Arn: string };
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await gateway?.dispose();
  rmSync(stateRoot, { recursive: true, force: true });
});

function bindBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    description: "rooted in X",
    endpoint: relay.url,
    region: "us-east-1",
    externalKeyId: externalKey.Arn,
    accessKeyId: IDENTITIES.adminB.accessKeyId,
    secretAccessKey: IDENTITIES.adminB.secretAccessKey,
    ...overrides,
  };
}

describe("external key roots: another gateway instance as the external KMS", () => {
  it("binds a tenant CMK (admin API); DescribeKey shows it as a key in an external key store; credentials never shown or stored in the clear", async () => {
    const before = await externalCalls();
    const r = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, bindBody());
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    boundKey = { keyId: r.body["keyId"] as string, arn: r.body["arn"] as string };
    expect(r.body).toMatchObject({ origin: "EXTERNAL_KEY_STORE", external: { endpoint: relay.url, region: "us-east-1", externalKeyId: externalKey.Arn, credentials: "sealed" } });
    // One external GenerateDataKey made the first version's root.
    expect(sum(await externalCalls()) - sum(before)).toBe(1);

    const described = await kmsCall("adminA", "DescribeKey", { KeyId: boundKey.keyId }, gateway.endpoint);
    expect(described.body["KeyMetadata"]).toMatchObject({
      KeyId: boundKey.keyId,
      Arn: `arn:aws:kms:us-east-1:${adminA.tenantId}:key/${boundKey.keyId}`,
      Origin: "EXTERNAL_KEY_STORE",
      KeyManager: "CUSTOMER",
      KeyState: "Enabled",
      XksKeyConfiguration: { Id: externalKey.Arn },
    });
    expect((described.body["KeyMetadata"] as Record<string, unknown>)["CustomKeyStoreId"]).toMatch(/^cks-[0-9a-f]{17}$/);
    const shown = await admin("GET", `/kms/keys/${boundKey.keyId}/external`);
    expect(shown.status).toBe(200);
    expect(JSON.stringify(shown.body)).not.toContain(IDENTITIES.adminB.secretAccessKey);
    // Nothing in the gateway's local state (D1, R2) holds the external secret in the clear.
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    walk(gateway.persist);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(readFileSync(file).includes(Buffer.from(IDENTITIES.adminB.secretAccessKey)), file).toBe(false);
    // Rotation is the external KMS's business, as for AWS keys in a custom key store.
    expect((await kmsCall("adminA", "RotateKeyOnDemand", { KeyId: boundKey.keyId }, gateway.endpoint)).body["__type"]).toBe("UnsupportedOperationException");
  });

  it("npm run admin -- kms external create / show / calls (the secret from the environment)", async () => {
    const cli = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ["scripts/admin.mjs", "--endpoint", gateway.endpoint, "--token", gateway.adminToken, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
          resolve({ code: error ? 1 : 0, stdout, stderr }),
        );
      });
    const created = await cli(
      ["--json", "kms", "external", "create", adminA.tenantId, "--kms-endpoint", relay.url, "--kms-region", "us-east-1", "--external-key-id", externalKey.Arn, "--access-key-id", IDENTITIES.adminB.accessKeyId, "--description", "via cli"],
      { EXTERNAL_KMS_SECRET_ACCESS_KEY: IDENTITIES.adminB.secretAccessKey },
    );
    expect(created.code, created.stderr).toBe(0);
    const made = JSON.parse(created.stdout) as { keyId: string; origin: string };
    expect(made.origin).toBe("EXTERNAL_KEY_STORE");
    const shown = await cli(["kms", "external", "show", made.keyId]);
    expect(shown.stdout).toContain(externalKey.Arn);
    expect(shown.stdout).toContain("sealed under the master secret");
    const calls = await cli(["kms", "external", "calls"]);
    expect(calls.stdout).toMatch(/GenerateDataKey\s+\d+/);
    // Without the secret in the environment the CLI refuses before calling anything.
    const missingSecret = await cli(["kms", "external", "create", adminA.tenantId, "--kms-endpoint", relay.url, "--kms-region", "us-east-1", "--external-key-id", externalKey.Arn, "--access-key-id", "X"], { EXTERNAL_KMS_SECRET_ACCESS_KEY: "" });
    expect(missingSecret.code).toBe(1);
  });

  it("credentials from named Worker secrets; rotating credentials (checked first)", async () => {
    const r = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, {
      endpoint: relay.url,
      region: "us-east-1",
      externalKeyId: externalKey.Arn,
      credentialsSecret: "XKMS",
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body["external"]).toMatchObject({ credentials: "secret:XKMS" });
    const keyId = r.body["keyId"] as string;
    await put("by-secret.txt", "named secrets", keyId);
    expect(await get("by-secret.txt")).toBe("named secrets");

    // Credentials rotated: wrong ones are refused before they replace anything…
    const wrong = await admin("PUT", `/kms/keys/${keyId}/external/credentials`, { accessKeyId: IDENTITIES.adminB.accessKeyId, secretAccessKey: "wrong-secret" });
    expect([wrong.status, wrong.body["code"]]).toEqual([502, "AccessDenied"]);
    expect((await admin("GET", `/kms/keys/${keyId}/external`)).body["external"]).toMatchObject({ credentials: "secret:XKMS" });
    expect((await admin("PUT", `/kms/keys/${keyId}/external/credentials`, { credentialsSecret: "NOPE" })).status).toBe(400);
    // …good ones are sealed and used from the next external call on.
    const sealed = await admin("PUT", `/kms/keys/${keyId}/external/credentials`, { accessKeyId: IDENTITIES.adminB.accessKeyId, secretAccessKey: IDENTITIES.adminB.secretAccessKey });
    expect([sealed.status, (sealed.body["external"] as Record<string, unknown>)["credentials"]]).toEqual([200, "sealed"]);
    await sleep(CACHE_SECONDS * 1000 + 300);
    expect(await get("by-secret.txt")).toBe("named secrets");
  });

  it("refuses wrong credentials and unknown external keys at binding, storing nothing", async () => {
    const listed = async () => ((await kmsCall("adminA", "ListKeys", {}, gateway.endpoint)).body["Keys"] as unknown[]).length;
    const count = await listed();
    const wrongSecret = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, bindBody({ secretAccessKey: "not-the-secret" }));
    expect([wrongSecret.status, wrongSecret.body["code"]]).toEqual([502, "AccessDenied"]);
    expect(JSON.stringify(wrongSecret.body)).not.toContain("not-the-secret");
    const wrongKey = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, bindBody({ externalKeyId: "00000000-0000-4000-8000-000000000000" }));
    expect([wrongKey.status, wrongKey.body["code"]]).toEqual([502, "KMS.NotFoundException"]);
    const invalid = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, bindBody({ endpoint: "ftp://x" }));
    expect(invalid.status).toBe(400);
    expect(await listed()).toBe(count);
  });

  it("round trips single and multipart objects; the KMS API's Encrypt/Decrypt work under the external root", async () => {
    await put("single.txt", "rooted elsewhere", boundKey.keyId);
    expect(await get("single.txt")).toBe("rooted elsewhere");
    const head = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: "single.txt" }));
    expect([head.ServerSideEncryption, head.SSEKMSKeyId]).toEqual(["aws:kms", boundKey.arn]);

    const big = new Uint8Array(11 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    await new Upload({ client: client(), params: { Bucket: bucket, Key: "multi.bin", Body: big, ServerSideEncryption: "aws:kms", SSEKMSKeyId: boundKey.arn }, partSize: 5 * 1024 * 1024, queueSize: 2 }).done();
    const back = await (await client().send(new GetObjectCommand({ Bucket: bucket, Key: "multi.bin" }))).Body!.transformToByteArray();
    expect(back.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(big))).toBe(0);

    const enc = await kmsCall("adminA", "Encrypt", { KeyId: boundKey.keyId, Plaintext: Buffer.from("client side").toString("base64") }, gateway.endpoint);
    expect(enc.status).toBe(200);
    const dec = await kmsCall("adminA", "Decrypt", { CiphertextBlob: enc.body["CiphertextBlob"] }, gateway.endpoint);
    expect(Buffer.from(dec.body["Plaintext"] as string, "base64").toString()).toBe("client side");
  }, 60_000);

  it("bucket keys: a bucket's first writes make its bucket key with one external GenerateDataKey whose context names tenant, bucket, CMK and version; each bucket its own", async () => {
    const [b1, b2] = [uniqueBucket("extbk1"), uniqueBucket("extbk2")];
    for (const b of [b1, b2]) await client().send(new CreateBucketCommand({ Bucket: b }));
    relay.takeRequests();
    const before = await externalCalls();
    // Concurrent first writes share one external call (one isolate here; across isolates
    // the first stored row wins and the others use it).
    await Promise.all(Array.from({ length: 8 }, (_, i) => put(`first-${i}`, `b1 ${i}`, boundKey.keyId, client(), b1)));
    await put("first", "b2", boundKey.keyId, client(), b2);
    const after = await externalCalls();
    expect((after["GenerateDataKey"] ?? 0) - (before["GenerateDataKey"] ?? 0)).toBe(2);
    // What the external KMS was asked, as it went over the wire.
    const generated = relay.takeRequests().filter((r) => r.operation === "GenerateDataKey");
    expect(generated.map((r) => r.body)).toEqual([
      { KeyId: externalKey.Arn, KeySpec: "AES_256", EncryptionContext: bucketContext(b1) },
      { KeyId: externalKey.Arn, KeySpec: "AES_256", EncryptionContext: bucketContext(b2) },
    ]);
    for (let i = 0; i < 8; i++) expect(await get(`first-${i}`, client(), b1)).toBe(`b1 ${i}`);
    expect(await get("first", client(), b2)).toBe("b2");

    // D1 holds one wrapped bucket key per bucket; the envelopes say their KEK came from it.
    const state = await localState(boundKey.keyId, [[b1, "first-0"], [b2, "first"]]);
    const rows = state.bucketKeys.filter((k) => k.bucket === b1 || k.bucket === b2).sort((x, y) => (x.bucket < y.bucket ? -1 : 1));
    expect(rows.map((k) => [k.bucket, k.version])).toEqual([[b1, 1], [b2, 1]]);
    expect(envelopeOf(state, b1, "first-0")).toMatchObject({ k: boundKey.arn, kv: 1, bk: 1 });
    expect(envelopeOf(state, b2, "first")).toMatchObject({ k: boundKey.arn, kv: 1, bk: 1 });
    // The external KMS bound each bucket key to its context: another bucket's, or one
    // without the bucket, does not decrypt it.
    const blob = (b: string) => Buffer.from(rows.find((k) => k.bucket === b)!.blob, "hex").toString("base64");
    const decrypt = (b: string, context: Record<string, string>) => kmsCall("adminB", "Decrypt", { CiphertextBlob: blob(b), EncryptionContext: context });
    expect((await decrypt(b1, bucketContext(b1))).status).toBe(200);
    expect((await decrypt(b1, bucketContext(b2))).body["__type"]).toBe("InvalidCiphertextException");
    const { ["s3-sse-gw:bucket"]: _bucket, ...withoutBucket } = bucketContext(b2);
    expect((await decrypt(b2, withoutBucket)).body["__type"]).toBe("InvalidCiphertextException");
  }, 60_000);

  it("bucket keys and CopyObject: within the bucket the wrapped data key is kept; into another bucket it is re-wrapped under that bucket's key", async () => {
    const other = uniqueBucket("extbkcopy");
    await client().send(new CreateBucketCommand({ Bucket: other }));
    await put("copy-src.txt", "copied", boundKey.keyId);
    const copy = (b: string, k: string) =>
      client().send(new CopyObjectCommand({ Bucket: b, Key: k, CopySource: `${bucket}/copy-src.txt`, ServerSideEncryption: "aws:kms", SSEKMSKeyId: boundKey.keyId }));
    await copy(bucket, "copy-same.txt");
    await copy(other, "copy-other.txt");
    expect(await get("copy-same.txt")).toBe("copied");
    expect(await get("copy-other.txt", client(), other)).toBe("copied");
    const state = await localState(boundKey.keyId, [[bucket, "copy-src.txt"], [bucket, "copy-same.txt"], [other, "copy-other.txt"]]);
    const [src, same, moved] = [envelopeOf(state, bucket, "copy-src.txt"), envelopeOf(state, bucket, "copy-same.txt"), envelopeOf(state, other, "copy-other.txt")];
    expect([src["bk"], same["bk"], moved["bk"]]).toEqual([1, 1, 1]);
    expect(same["w"]).toBe(src["w"]);
    expect(moved["w"]).not.toBe(src["w"]);
    expect(state.bucketKeys.filter((k) => k.bucket === other)).toHaveLength(1);
  }, 60_000);

  it("objects written under the CMK version's root (before bucket keys: no bk) still read", async () => {
    // Such an object, made from a current one by a writer that follows FORMAT.md alone: the
    // data key re-wrapped from the bucket KEK to the version KEK, bk dropped, the MAC redone.
    await put("legacy.txt", "written before bucket keys", boundKey.keyId);
    const state = await localState(boundKey.keyId, [[bucket, "legacy.txt"]]);
    const meta = state.objects[`${bucket}/legacy.txt`]!;
    const env = JSON.parse(meta["sse-envelope"]!) as Record<string, unknown> & { m: string; k: string; kv: number; mv: number; n: number; w: string; s: string; e: string };
    expect(env["bk"]).toBe(1);
    const plain = async (blobHex: string, context: Record<string, string>) => {
      const r = await kmsCall("adminB", "Decrypt", { CiphertextBlob: Buffer.from(blobHex, "hex").toString("base64"), EncryptionContext: context });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return Buffer.from(r.body["Plaintext"] as string, "base64");
    };
    const b64 = (s: string) => Buffer.from(s, "base64");
    const master = Buffer.from(TEST_MASTER_KEYS.MASTER_KEY_V1, "base64");
    const bucketKey = await plain(state.bucketKeys.find((k) => k.bucket === bucket && k.version === 1)!.blob, bucketContext(bucket));
    const material = await plain(state.versions["1"]!, { "s3-sse-gw:tenant": adminA.tenantId, "s3-sse-gw:cmk": boundKey.arn, "s3-sse-gw:version": "1" });
    const bucketKek = await hkdf(master, bucketKey, info("s3-sse-gw/v1/bucket-kek", env.k, bucket, u32(env.kv), u32(env.mv)), "AES-KW", ["unwrapKey"]);
    const versionKek = await hkdf(master, material, info("s3-sse-gw/v1/kek", env.k, u32(env.kv), u32(env.mv)), "AES-KW", ["wrapKey"]);
    const dk = await crypto.subtle.unwrapKey("raw", b64(env.w), bucketKek, "AES-KW", { name: "AES-GCM" }, true, ["encrypt"]);
    const wrapped = Buffer.from(await crypto.subtle.wrapKey("raw", dk, versionKek, "AES-KW"));
    const macKey = await hkdf(new Uint8Array(await crypto.subtle.exportKey("raw", dk)), new Uint8Array(0), info("s3-sse-gw/v1/mac"), { name: "HMAC", hash: "SHA-256" }, ["sign"]);
    const h = (env["h"] ?? {}) as Record<string, string>;
    expect(env["lm"]).toBeUndefined();
    // FORMAT.md §6 without field 19 (bk): no user metadata, trailer record present.
    const fields: Array<string | Uint8Array> = [
      "s3-sse-gw/v1/object-mac", bucket, "legacy.txt", "1", env.m, env.k, String(env.kv), String(env.mv), wrapped, String(env.n),
      "single", b64(env.s), (env["c"] as string | undefined) ?? "", env["b"] === 1 ? "1" : "0", b64(env.e),
      h["ct"] ?? "", h["ce"] ?? "", h["cd"] ?? "", h["cl"] ?? "", h["cc"] ?? "", h["ex"] ?? "", "0",
      ...(env["r"] === 1 ? ["r", "1"] : []),
    ];
    const macInput = Buffer.concat(fields.flatMap((f) => (typeof f === "string" ? te.encode(f) : f)).flatMap((b) => [u32(b.byteLength), b]));
    const legacy: Record<string, unknown> = { ...env, w: wrapped.toString("base64"), t: Buffer.from(await crypto.subtle.sign("HMAC", macKey, macInput)).toString("base64") };
    delete legacy["bk"];
    const setEnvelope = async (envelope: Record<string, unknown>) => {
      const set = await runWith("adminA", "python3", [join(here, "support", "external_state.py"), gateway.persist, "set-meta", `${bucket}/legacy.txt`, JSON.stringify({ ...meta, "sse-envelope": JSON.stringify(envelope) })]);
      expect(set.stdout.trim(), set.stderr).toBe('{"updated": 1}');
    };
    // First only bk dropped (the data key still wrapped for the bucket): the version KEK does
    // not unwrap it, so the gateway refuses the object — and so reads what R2 now holds.
    const { bk: _bk, ...flagDropped } = env;
    await setEnvelope(flagDropped);
    expect(await failure(get("legacy.txt", once()))).toMatchObject({ code: "InternalError", status: 500 });
    await setEnvelope(legacy);
    expect(await get("legacy.txt")).toBe("written before bucket keys");
    const head = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: "legacy.txt" }));
    expect(head.SSEKMSKeyId).toBe(boundKey.arn);
  }, 60_000);

  it("external calls: at most one Decrypt per cache period, however many PUTs and GETs; warm latency vs a local CMK", async () => {
    const local = (await kmsCall("adminA", "CreateKey", { Description: "local for comparison" }, gateway.endpoint)).body["KeyMetadata"] as { KeyId: string };
    const timed = async (n: number, f: (i: number) => Promise<unknown>) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await f(i);
        ms.push(performance.now() - t);
      }
      return ms.sort((a, b) => a - b)[Math.floor(n / 2)]!;
    };
    await put("warm-local", "w", local.KeyId);
    await put("warm-ext", "w", boundKey.keyId);
    const before = await externalCalls();
    const started = Date.now();
    const N = 100;
    const putExt = await timed(N, (i) => put(`ext-${i}`, `body ${i}`, boundKey.keyId));
    const getExt = await timed(N, (i) => get(`ext-${i}`));
    const elapsed = Date.now() - started;
    const after = await externalCalls();
    const calls = sum(after) - sum(before);
    // The bucket already has its bucket key: refreshing it is a Decrypt, never a new key.
    expect((after["GenerateDataKey"] ?? 0) - (before["GenerateDataKey"] ?? 0)).toBe(0);
    const putLocal = await timed(N, (i) => put(`local-${i}`, `body ${i}`, local.KeyId));
    const getLocal = await timed(N, (i) => get(`local-${i}`));
    // One refresh per cache period at most (plus the one in flight at the start).
    const bound = Math.floor(elapsed / (CACHE_SECONDS * 1000)) + 1;
    console.log(
      JSON.stringify({
        event: "external-kms-calls",
        puts: N,
        gets: N,
        externalCalls: calls,
        elapsedMs: elapsed,
        cacheSeconds: CACHE_SECONDS,
        // 1000 sequential PUTs at this median take putExternal seconds; each 300 s (default cache) needs one Decrypt.
        callsPer1000PutsAtDefaultCache: Math.ceil((putExt * 1000) / 300_000),
        medianMs: { putExternal: putExt, putLocal, getExternal: getExt, getLocal },
      }),
    );
    expect(calls).toBeLessThanOrEqual(bound);
  }, 180_000);
});

describe("external key roots: revocation and failure", () => {
  it("DisableKey at the external KMS: reads and writes fail with KMS.DisabledException within the cache period; EnableKey restores", async () => {
    const fresh = uniqueBucket("extbkrevoked");
    await client().send(new CreateBucketCommand({ Bucket: fresh }));
    await put("revoke.txt", "revocable", boundKey.keyId);
    const warmed = Date.now();
    expect(await get("revoke.txt")).toBe("revocable");
    expect((await kmsCall("adminB", "DisableKey", { KeyId: externalKey.KeyId }, endpoint())).status).toBe(200);
    // Inside the period the cached root still serves (the documented trade-off)…
    const stillCached = await get("revoke.txt").then(
      () => true,
      () => false,
    );
    if (Date.now() - warmed < CACHE_SECONDS * 1000 - 200) expect(stillCached).toBe(true);
    // …and after it nothing does.
    await sleep(CACHE_SECONDS * 1000 + 300);
    const [onGet, onPut, onHead] = await Promise.all([
      failure(get("revoke.txt")),
      failure(put("revoke-2.txt", "x", boundKey.keyId)),
      failure(client().send(new HeadObjectCommand({ Bucket: bucket, Key: "revoke.txt" }))),
    ]);
    expect(onGet).toMatchObject({ code: "KMS.DisabledException", status: 400 });
    expect(onPut).toMatchObject({ code: "KMS.DisabledException", status: 400 });
    expect(onHead.status).toBe(400);
    // A bucket's first write needs a new bucket key: the external GenerateDataKey refuses it too.
    expect(await failure(put("first.txt", "x", boundKey.keyId, client(), fresh))).toMatchObject({ code: "KMS.DisabledException", status: 400 });
    expect((await localState(boundKey.keyId)).bucketKeys.some((k) => k.bucket === fresh)).toBe(false);
    expect((await kmsCall("adminA", "Encrypt", { KeyId: boundKey.keyId, Plaintext: "eA==" }, gateway.endpoint)).body["__type"]).toBe("DisabledException");
    expect((await failure(client().send(new HeadObjectCommand({ Bucket: bucket, Key: "revoke-2.txt" })))).status).toBe(404);

    expect((await kmsCall("adminB", "EnableKey", { KeyId: externalKey.KeyId }, endpoint())).status).toBe(200);
    // A refused answer is not cached: the next request asks again and succeeds.
    expect(await get("revoke.txt")).toBe("revocable");
  }, 60_000);

  it("ScheduleKeyDeletion at the external KMS: KMS.KMSInvalidStateException; cancel + enable restores", async () => {
    expect((await kmsCall("adminB", "ScheduleKeyDeletion", { KeyId: externalKey.KeyId, PendingWindowInDays: 7 }, endpoint())).status).toBe(200);
    await sleep(CACHE_SECONDS * 1000 + 300);
    expect(await failure(get("revoke.txt"))).toMatchObject({ code: "KMS.KMSInvalidStateException", status: 400 });
    expect(await failure(put("pending.txt", "x", boundKey.keyId))).toMatchObject({ code: "KMS.KMSInvalidStateException", status: 400 });
    expect((await kmsCall("adminB", "CancelKeyDeletion", { KeyId: externalKey.KeyId }, endpoint())).status).toBe(200);
    expect((await kmsCall("adminB", "EnableKey", { KeyId: externalKey.KeyId }, endpoint())).status).toBe(200);
    expect(await get("revoke.txt")).toBe("revocable");
  }, 60_000);

  it("a slow external KMS: 503 ServiceUnavailable with Retry-After after the bounded timeout, nothing written; recovers", async () => {
    await put("slow.txt", "v1", boundKey.keyId);
    relay.stall(true);
    try {
      await sleep(CACHE_SECONDS * 1000 + 300);
      const t = Date.now();
      const onPut = await failure(put("slow.txt", "v2", boundKey.keyId, once()));
      const took = Date.now() - t;
      expect(onPut).toMatchObject({ code: "ServiceUnavailable", status: 503, retryAfter: "5" });
      expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
      expect(took).toBeLessThan(TIMEOUT_MS + 5000);
      expect(await failure(get("slow.txt", once()))).toMatchObject({ code: "ServiceUnavailable", status: 503, retryAfter: "5" });
      // The KMS API's name for the same failure.
      const viaKms = await kmsCall("adminA", "Encrypt", { KeyId: boundKey.keyId, Plaintext: "eA==" }, gateway.endpoint);
      expect([viaKms.status, viaKms.body["__type"]]).toEqual([503, "DependencyTimeoutException"]);
    } finally {
      relay.stall(false);
    }
    // The failed PUT stored nothing: the old version is there, readable again.
    expect(await get("slow.txt")).toBe("v1");
  }, 60_000);

  it("the external KMS stopped mid-run: 503 with Retry-After at once (connection refused); back when it is", async () => {
    await put("stopped.txt", "before", boundKey.keyId);
    const port = relay.port;
    await relay.stop();
    try {
      await sleep(CACHE_SECONDS * 1000 + 300);
      const t = Date.now();
      expect(await failure(get("stopped.txt", once()))).toMatchObject({ code: "ServiceUnavailable", status: 503, retryAfter: "5" });
      expect(Date.now() - t).toBeLessThan(TIMEOUT_MS + 5000);
      expect(await failure(put("stopped-2.txt", "x", boundKey.keyId, once()))).toMatchObject({ code: "ServiceUnavailable", status: 503 });
      // The encryption audit names the cause instead of calling the objects tampered.
      const problems: Array<{ key: string; reason: string }> = [];
      for (let cursor: string | undefined, page = 0; page < 50; page++) {
        const audit = await admin("GET", `/buckets/${bucket}/audit?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
        problems.push(...(audit.body["problems"] as typeof problems));
        cursor = audit.body["cursor"] as string | undefined;
        if (!audit.body["truncated"] || !cursor) break;
      }
      expect(problems.find((p) => p.key === "stopped.txt")).toMatchObject({ reason: "external-key" });
      expect(problems.some((p) => p.reason === "tampered")).toBe(false);
    } finally {
      await relay.start(port);
    }
    expect(await get("stopped.txt")).toBe("before");
    expect((await failure(client().send(new HeadObjectCommand({ Bucket: bucket, Key: "stopped-2.txt" })))).status).toBe(404);
  }, 60_000);
});

describe("external key roots: the master-secret rewrap job and bucket keys", () => {
  interface Failure {
    r2Key: string;
    reason: string;
    blocking: boolean;
  }

  /** Runs a rewrap pass to its end through the admin API; its record and every failure. */
  async function rewrapPass(): Promise<{ latest: Record<string, unknown>; failures: Failure[] }> {
    for (let i = 0; ; i++) {
      const r = await admin("POST", "/master/rewrap", { start: i === 0, maxObjects: 1000, maxSeconds: 20 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      if (r.body["outcome"] === "completed") break;
      expect(i).toBeLessThan(50);
    }
    const latest = (await admin("GET", "/master/rewrap")).body["latest"] as Record<string, unknown>;
    const failures = (await admin("GET", `/master/rewrap/${String(latest["id"])}/failures?limit=1000`)).body["failures"] as Failure[];
    return { latest, failures };
  }

  it("moves bucket-key objects to the new master version under the same bucket key; while the external key is disabled they are blocking external-key failures", async () => {
    // G again on the same state, with a second master secret: new writes use v2.
    await gateway.dispose();
    gateway = (await startTestWorker({ vars: { ...gatewayVars, MASTER_KEY_V2: Buffer.from("e2e-master-key-version-two-32byt").toString("base64") }, persist })) as TestWorker;
    const keysBefore = (await localState(boundKey.keyId)).bucketKeys.length;

    expect((await kmsCall("adminB", "DisableKey", { KeyId: externalKey.KeyId }, endpoint())).status).toBe(200);
    let refused: Awaited<ReturnType<typeof rewrapPass>>;
    try {
      refused = await rewrapPass();
    } finally {
      expect((await kmsCall("adminB", "EnableKey", { KeyId: externalKey.KeyId }, endpoint())).status).toBe(200);
    }
    expect(refused.latest).toMatchObject({ status: "completed", targetVersion: 2 });
    // Objects under the external CMK, with a bucket key (single.txt) or the version root
    // (legacy.txt), cannot be opened: intact, blocking, never "tampered".
    for (const key of ["single.txt", "legacy.txt", "multi.bin"]) {
      expect(refused.failures.find((f) => f.r2Key === `${bucket}/${key}`), key).toMatchObject({ reason: "external-key", blocking: true });
    }
    expect(refused.failures.filter((f) => f.reason !== "external-key")).toEqual([]);

    // Refusals are not cached: with the key enabled again a new pass moves everything.
    const before = await externalCalls();
    const moved = await rewrapPass();
    expect(moved.latest).toMatchObject({ status: "completed", targetVersion: 2, failed: 0 });
    expect(moved.failures).toEqual([]);
    // No new bucket key: the same one, for another master version.
    expect(((await externalCalls())["GenerateDataKey"] ?? 0) - (before["GenerateDataKey"] ?? 0)).toBe(0);
    const state = await localState(boundKey.keyId, [[bucket, "single.txt"], [bucket, "legacy.txt"]]);
    expect(state.bucketKeys).toHaveLength(keysBefore);
    expect(envelopeOf(state, bucket, "single.txt")).toMatchObject({ mv: 2, bk: 1 });
    expect(envelopeOf(state, bucket, "legacy.txt")).toMatchObject({ mv: 2 });
    expect(envelopeOf(state, bucket, "legacy.txt")["bk"]).toBeUndefined();
    expect(await get("single.txt")).toBe("rooted elsewhere");
    expect(await get("legacy.txt")).toBe("written before bucket keys");
  }, 180_000);
});

// ---- moto: protocol compatibility with a KMS that is not this code base ----------------

const given = process.env.EXTERNAL_KMS_ENDPOINT;
const noMoto = given ? false : missing("external-kms.test.ts › moto", "moto");

describe.skipIf(noMoto)("external key roots: moto_server as the external KMS", () => {
  let moto: ChildProcess | undefined;
  let motoEndpoint = given ?? "";

  beforeAll(async () => {
    if (!given) {
      const free = createServer();
      await new Promise<void>((resolve) => free.listen(0, "127.0.0.1", resolve));
      const port = (free.address() as { port: number }).port;
      await new Promise<void>((resolve) => free.close(() => resolve()));
      moto = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      motoEndpoint = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 100; i++) {
        const up = await fetch(`${motoEndpoint}/moto-api/`).then(
          () => true,
          () => false,
        );
        if (up) break;
        await sleep(200);
      }
    }
  }, 60_000);

  afterAll(() => {
    moto?.kill();
  });

  it("binds, round-trips single and multipart objects, and fails closed (503) once moto is gone", async () => {
    const created = await kmsCall("adminA", "CreateKey", { Description: "moto root" }, motoEndpoint);
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const motoKey = created.body["KeyMetadata"] as { KeyId: string; Arn: string };
    const r = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, {
      endpoint: motoEndpoint,
      region: "us-east-1",
      externalKeyId: motoKey.KeyId,
      accessKeyId: "testing",
      secretAccessKey: "testing-secret",
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const keyId = r.body["keyId"] as string;
    await put("moto.txt", "via moto", keyId);
    await sleep(CACHE_SECONDS * 1000 + 300); // the next read asks moto to Decrypt
    expect(await get("moto.txt")).toBe("via moto");
    const big = new Uint8Array(6 * 1024 * 1024).map((_, i) => i % 253);
    await new Upload({ client: client(), params: { Bucket: bucket, Key: "moto.bin", Body: big, ServerSideEncryption: "aws:kms", SSEKMSKeyId: keyId }, partSize: 5 * 1024 * 1024 }).done();
    const back = await (await client().send(new GetObjectCommand({ Bucket: bucket, Key: "moto.bin" }))).Body!.transformToByteArray();
    expect(Buffer.compare(Buffer.from(back), Buffer.from(big))).toBe(0);

    // moto enforces key states only in part (revocation is tested against the other gateway
    // above); an error it does return is refused: a key it does not have fails the binding.
    const unknown = await admin("POST", `/tenants/${adminA.tenantId}/external-keys`, {
      endpoint: motoEndpoint,
      region: "us-east-1",
      externalKeyId: "00000000-0000-4000-8000-000000000000",
      accessKeyId: "testing",
      secretAccessKey: "testing-secret",
    });
    expect([unknown.status, unknown.body["code"]]).toEqual([502, "KMS.NotFoundException"]);

    if (moto) {
      moto.kill();
      await sleep(CACHE_SECONDS * 1000 + 300);
      expect(await failure(get("moto.txt", once()))).toMatchObject({ code: "ServiceUnavailable", status: 503, retryAfter: "5" });
    }
  }, 120_000);
});
