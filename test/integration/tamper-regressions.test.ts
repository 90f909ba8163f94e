/**
 * Deterministic replays of failures the tamper campaign (test/fuzz/tamper-campaign.test.ts)
 * found, kept so they stay fixed whatever the campaign's random draw.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, expectError, rawGet, rawPut, readFully, seedIdentities, send, uniqueBucket, type RawObject } from "../support/s3-harness";

const bucket = uniqueBucket("tamper-regr");

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
});

describe("tamper campaign regressions", () => {
  it("a tampered empty object is refused with an S3 error (the runtime used to fail the request outright)", async () => {
    for (const mode of ["AES256", "aws:kms"]) {
      const key = `empty-${mode}`;
      expect((await send("adminA", { method: "PUT", bucket, key, body: new Uint8Array(0), headers: { "x-amz-server-side-encryption": mode } })).status).toBe(200);
      const raw = (await rawGet(bucket, key))!;
      for (const offset of [0, 20, 40]) {
        const body = raw.body.slice();
        body[offset]! ^= 0x01;
        await rawPut(bucket, key, { ...raw, body });
        await expectError(send("adminA", { method: "GET", bucket, key }), 500, "InternalError");
      }
      await rawPut(bucket, key, raw);
      const r = await send("adminA", { method: "GET", bucket, key });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-length")).toBe("0");
      expect((await r.arrayBuffer()).byteLength).toBe(0);
    }
  });

  /** The object with its envelope JSON edited. */
  const withEnvelope = (raw: RawObject, edit: (e: Record<string, unknown>) => void): RawObject => {
    const e = JSON.parse(raw.customMetadata["sse-envelope"]!) as Record<string, unknown>;
    edit(e);
    return { ...raw, customMetadata: { ...raw.customMetadata, "sse-envelope": JSON.stringify(e) } };
  };

  /** Unused low bits of the last base64 character set: the same bytes, spelled differently. */
  const respell = (b64: unknown): string => {
    const text = String(b64);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const at = text.length - (text.endsWith("==") ? 2 : 1) - 1;
    return text.slice(0, at) + alphabet[alphabet.indexOf(text[at]!) ^ 1] + text.slice(at + 1);
  };

  it("envelope edits the MAC does not cover are refused, not ignored (they used to be served)", async () => {
    const key = "lax-envelope";
    const body = new Uint8Array(1000).fill(7);
    const context = btoa(JSON.stringify({ app: "x" }));
    expect((await send("adminA", { method: "PUT", bucket, key, body, headers: { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-context": context } })).status).toBe(200);
    const raw = (await rawGet(bucket, key))!;
    const edits: Array<[string, (e: Record<string, unknown>) => void]> = [
      ["an unknown field", (e) => (e["x"] = null)],
      ["an unknown field named like a prototype", (e) => void Object.defineProperty(e, "__proto__", { value: 1, enumerable: true })],
      ["bucket key flag null", (e) => (e["b"] = null)],
      ["bucket key flag 0", (e) => (e["b"] = 0)],
      ["bucket key flag true", (e) => (e["b"] = true)],
      ["an empty encryption context", (e) => (e["c"] = "")],
      ["HTTP metadata as an array", (e) => (e["h"] = [])],
      ["an unknown HTTP metadata field", (e) => (e["h"] = { zz: "1" })],
      ["wrapped key in non-canonical base64", (e) => (e["w"] = respell(e["w"]))],
      ["salt in non-canonical base64", (e) => (e["s"] = respell(e["s"]))],
      ["MAC in non-canonical base64", (e) => (e["t"] = respell(e["t"]))],
    ];
    for (const [name, edit] of edits) {
      const edited = withEnvelope(raw, edit);
      expect(edited.customMetadata["sse-envelope"], name).not.toBe(raw.customMetadata["sse-envelope"]);
      await rawPut(bucket, key, edited);
      await expectError(send("adminA", { method: "GET", bucket, key }), 500, "InternalError");
      expect((await send("adminA", { method: "HEAD", bucket, key })).status, name).toBe(500);
    }
    // Field order is free (FORMAT.md §4): the same values in another order still read.
    await rawPut(bucket, key, withEnvelope(raw, (e) => {
      const entries = Object.entries(e).reverse();
      for (const k of Object.keys(e)) delete e[k];
      for (const [k, v] of entries) e[k] = v;
    }));
    const r = await send("adminA", { method: "GET", bucket, key });
    expect(r.status).toBe(200);
    expect((await readFully(r)).bytes).toEqual(body);
  });

  it("an empty HTTP metadata value reads as absent, as the MAC encodes it (an edit could switch them undetected)", async () => {
    const key = "empty-http-values";
    const body = new Uint8Array(100).fill(1);
    expect((await send("adminA", { method: "PUT", bucket, key, body, headers: { "cache-control": "" } })).status).toBe(200);
    const raw = (await rawGet(bucket, key))!;
    const spellings: Array<[string, (e: Record<string, unknown>) => void]> = [
      ["as stored", () => {}],
      ["the empty value dropped", (e) => delete e["h"]],
      ["an empty Content-Type added", (e) => (e["h"] = { ...(e["h"] as object), ct: "" })],
      ["an empty Content-Disposition added", (e) => (e["h"] = { ...(e["h"] as object), cd: "" })],
    ];
    for (const [name, edit] of spellings) {
      await rawPut(bucket, key, withEnvelope(raw, edit));
      for (const method of ["GET", "HEAD"]) {
        const r = await send("adminA", { method, bucket, key });
        expect(r.status, `${name}: ${method}`).toBe(200);
        expect(r.headers.get("content-type"), name).toBe("binary/octet-stream");
        expect(r.headers.has("cache-control"), name).toBe(false);
        expect(r.headers.has("content-disposition"), name).toBe(false);
        if (method === "GET") expect((await readFully(r)).bytes).toEqual(body);
      }
    }
  });
});

