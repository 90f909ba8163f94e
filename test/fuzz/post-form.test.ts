/**
 * Fuzzing POST Object (browser form uploads): multipart/form-data bodies built here part
 * by part from a valid SigV4-signed form, then changed — random boundaries (and a
 * Content-Type header that disagrees), header shapes (Content-Disposition variants,
 * filename*, case, extra parameters, LF line endings), field order (fields after the
 * file), missing and duplicated fields, preamble and epilogue junk, truncation and byte
 * edits anywhere.
 *
 * Properties: never a 5xx, every refusal a proper S3 error; an accepted upload stores
 * exactly the file (the form carries the file's CRC32, so an edited file cannot pass)
 * under a key the signed policy allows ("post-target/…"); an intact form is accepted; the
 * sentinel is never touched.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { amzDate, encodePolicy, signV4, v4Fields } from "../support/post-form";
import { CREDENTIALS, HOST, crc32Base64, createBucket, fetchWorker, sameBytes, seedIdentities, send, uniqueBucket, utf8 } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";
import { applyByteEdit, byteEdit, checkResponse, concatBytes, expectOnlyKeys, fraction, fuzz, md5Base64Of, nastyString, rawKeys, writeSentinel, type ByteEdit, type Sentinel } from "./support";

const bucket = uniqueBucket("fz-post");
const PREFIX = "post-target/";
let sentinel: Sentinel;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  sentinel = await writeSentinel(bucket);
});

afterAll(async () => {
  await sentinel.check();
  await expectOnlyKeys(bucket, (k) => k === sentinel.key || k.startsWith(PREFIX));
});

interface FormPart {
  name: string;
  value: Uint8Array;
  filename?: string;
  contentType?: string;
  /** Replaces the whole Content-Disposition line when set. */
  disposition?: string;
}

interface Shape {
  boundary: string;
  headerBoundary: "same" | "quoted" | "other" | "missing" | "uppercase-type";
  eol: "\r\n" | "\n";
  preamble: string;
  epilogue: string;
  closing: boolean;
}

function encodeForm(parts: FormPart[], s: Shape): { body: Uint8Array; contentType: string } {
  const chunks: Uint8Array[] = [utf8(s.preamble)];
  for (const p of parts) {
    let head = `--${s.boundary}${s.eol}`;
    head += p.disposition ?? `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ""}`;
    head += s.eol;
    if (p.contentType) head += `Content-Type: ${p.contentType}${s.eol}`;
    chunks.push(utf8(head + s.eol), p.value, utf8(s.eol));
  }
  if (s.closing) chunks.push(utf8(`--${s.boundary}--${s.eol}`));
  chunks.push(utf8(s.epilogue));
  const contentType = {
    same: `multipart/form-data; boundary=${s.boundary}`,
    quoted: `multipart/form-data; boundary="${s.boundary}"`,
    other: `multipart/form-data; boundary=${s.boundary}x`,
    missing: "multipart/form-data",
    "uppercase-type": `Multipart/Form-Data; BOUNDARY=${s.boundary}; charset=utf-8`,
  }[s.headerBoundary];
  return { body: concatBytes(...chunks), contentType };
}

/** A valid signed form for `key` with `file`; the policy pins the key prefix and every field. */
async function validForm(key: string, file: Uint8Array, contentType: string): Promise<FormPart[]> {
  const { accessKeyId, secretAccessKey } = CREDENTIALS.adminA;
  const date = amzDate();
  const sig = v4Fields(accessKeyId, date);
  const conditions = [
    { bucket },
    ["starts-with", "$key", PREFIX],
    ["starts-with", "$Content-Type", ""],
    ["starts-with", "$x-amz-meta-note", ""],
    ["starts-with", "$success_action_status", ""],
    ["eq", "$x-amz-checksum-crc32", crc32Base64(file)],
    ["content-length-range", 0, 1_000_000],
    ...Object.entries(sig).map(([k, v]) => ({ [k]: v })),
  ];
  const policy = encodePolicy(conditions);
  const signature = await signV4(policy, secretAccessKey, date);
  const field = (name: string, value: string): FormPart => ({ name, value: utf8(value) });
  return [
    field("key", key),
    field("Content-Type", contentType),
    field("x-amz-meta-note", "fuzzed form"),
    field("success_action_status", "201"),
    field("x-amz-checksum-crc32", crc32Base64(file)),
    ...Object.entries(sig).map(([k, v]) => field(k, v)),
    field("Policy", policy),
    field("X-Amz-Signature", signature),
    { name: "file", value: file, filename: "upload.bin", contentType: "application/octet-stream" },
  ];
}

type Change =
  | { kind: "move"; from: number; to: number }
  | { kind: "drop"; at: number }
  | { kind: "duplicate"; at: number; value: string | null }
  | { kind: "rename"; at: number; how: "upper" | "lower" | "junk" }
  | { kind: "disposition"; at: number; text: string }
  | { kind: "field-value"; at: number; value: string }
  | { kind: "filename"; value: string }
  | { kind: "extra-field"; name: string; value: string };

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant("move" as const), from: fraction, to: fraction }).map((c) => c as unknown as Change),
  fc.record({ kind: fc.constant("drop" as const), at: fraction }).map((c) => c as unknown as Change),
  fc.record({ kind: fc.constant("duplicate" as const), at: fraction, value: fc.option(nastyString(20), { nil: null }) }).map((c) => c as unknown as Change),
  fc.record({ kind: fc.constant("rename" as const), at: fraction, how: fc.constantFrom("upper" as const, "lower" as const, "junk" as const) }).map((c) => c as unknown as Change),
  fc
    .record({
      kind: fc.constant("disposition" as const),
      at: fraction,
      text: fc.constantFrom(
        "Content-Disposition: form-data",
        "Content-Disposition: form-data; name=key",
        "content-disposition: FORM-DATA; NAME=\"key\"",
        "Content-Disposition: attachment; name=\"file\"",
        "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%98%83.txt",
        "Content-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"",
        "Content-Disposition: form-data; name=\"\"",
        "Content-Disposition: form-data; name=\"key\"; name=\"file\"",
        "Content-Disposition: form-data; name=\"x\"\r\nContent-Type: text/plain; charset=utf-16",
        "X-Other: 1",
        "",
      ),
    })
    .map((c) => c as unknown as Change),
  fc.record({ kind: fc.constant("field-value" as const), at: fraction, value: fc.oneof(nastyString(40), fc.constantFrom(`${PREFIX}\${filename}`, `${PREFIX}a/b`, "other/x", PREFIX, "", "200", "303", "http://a.example/ok")) }).map((c) => c as unknown as Change),
  fc.record({ kind: fc.constant("filename" as const), value: fc.oneof(nastyString(30), fc.constantFrom("C:\\x\\y.txt", "a/b/c.txt", "", "\u0000", "😀.bin")) }).map((c) => c as unknown as Change),
  fc.record({ kind: fc.constant("extra-field" as const), name: fc.oneof(fc.constantFrom("x-ignore-me", "acl", "x-amz-server-side-encryption", "AWSAccessKeyId", "signature", "redirect", "tagging", "x-amz-meta-extra"), nastyString(12)), value: nastyString(20) }).map((c) => c as unknown as Change),
);

function applyChanges(parts: FormPart[], changes: readonly Change[]): FormPart[] {
  const out = parts.map((p) => ({ ...p }));
  const index = (f: number) => Math.min(out.length - 1, Math.floor(f * out.length));
  for (const c of changes) {
    if (out.length === 0) break;
    switch (c.kind) {
      case "move": {
        const [p] = out.splice(index(c.from), 1);
        out.splice(Math.min(out.length, Math.floor(c.to * (out.length + 1))), 0, p!);
        break;
      }
      case "drop":
        out.splice(index(c.at), 1);
        break;
      case "duplicate": {
        const p = out[index(c.at)]!;
        out.splice(index(c.at) + 1, 0, { ...p, ...(c.value !== null ? { value: utf8(c.value) } : {}) });
        break;
      }
      case "rename": {
        const p = out[index(c.at)]!;
        p.name = c.how === "upper" ? p.name.toUpperCase() : c.how === "lower" ? p.name.toLowerCase() : `${p.name}\u00e9"`;
        break;
      }
      case "disposition":
        out[index(c.at)]!.disposition = c.text;
        break;
      case "field-value": {
        const p = out[index(c.at)]!;
        if (p.name !== "file") p.value = utf8(c.value);
        break;
      }
      case "filename":
        for (const p of out) if (p.name === "file") p.filename = c.value.replace(/"/g, "");
        break;
      case "extra-field":
        out.splice(0, 0, { name: c.name.replace(/["\r\n]/g, ""), value: utf8(c.value) });
        break;
    }
  }
  return out;
}

const shape: fc.Arbitrary<Shape> = fc.record({
  boundary: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("----WebKitFormBoundary7MA4YWxkTrZu0gW", "xYzZY", "a", "-", "--", "=_-'()+,./:?") },
    { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(..."abcXYZ019'()+_,-./:=? "), minLength: 1, maxLength: 70 }).map((b) => b.trimEnd() || "b") },
    { weight: 1, arbitrary: fc.constantFrom("x".repeat(71), "x".repeat(200), "bound ary", "\u00e9t\u00e9", "") },
  ),
  headerBoundary: fc.oneof({ weight: 8, arbitrary: fc.constant("same" as const) }, { weight: 1, arbitrary: fc.constantFrom("quoted" as const, "other" as const, "missing" as const, "uppercase-type" as const) }),
  eol: fc.oneof({ weight: 8, arbitrary: fc.constant("\r\n" as const) }, { weight: 1, arbitrary: fc.constant("\n" as const) }),
  preamble: fc.oneof({ weight: 8, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom("preamble\r\n", "\r\n", "--\r\n") }),
  epilogue: fc.oneof({ weight: 8, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom("epilogue", "\r\n--x--\r\n", "\u0000") }),
  closing: fc.oneof({ weight: 10, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

const intactShape: Shape = { boundary: "----FuzzBoundary", headerBoundary: "same", eol: "\r\n", preamble: "", epilogue: "", closing: true };

const dotSegments = (key: string) => key.split("/").some((s) => s === "." || s === "..");

interface Sent {
  status: number;
  code: string | null;
}

async function sendForm(parts: FormPart[], s: Shape, edits: readonly ByteEdit[], pieces: boolean): Promise<Sent> {
  const form = encodeForm(parts, s);
  let body = form.body;
  for (const e of edits) body = applyByteEdit(body, e);
  const before = new Set(await rawKeys(bucket));
  const r = await fetchWorker(`http://${HOST}/${bucket}`, {
    method: "POST",
    headers: { "content-type": form.contentType, "content-length": String(body.byteLength) },
    body: pieces ? new Blob([body]).stream() : body,
    redirect: "manual",
  });
  const c = await checkResponse(r, "POST", `form with boundary ${JSON.stringify(s.boundary)} and ${parts.length} parts`);
  const file = parts.find((p) => p.name.toLowerCase() === "file");
  const added = (await rawKeys(bucket)).filter((k) => !before.has(k));
  if (c.status < 300 || c.status === 303) {
    // Exactly the key the form named (with ${filename} filled in) now holds exactly the file.
    const key = new TextDecoder().decode(parts.find((p) => p.name.toLowerCase() === "key")?.value ?? new Uint8Array());
    expect(key.startsWith(PREFIX) || key.includes("${filename}"), `accepted key ${JSON.stringify(key)} outside the policy`).toBe(true);
    const stored = (await rawKeys(bucket)).filter((k) => k.startsWith(PREFIX));
    expect(stored.length).toBeGreaterThan(0);
    for (const k of added) {
      if (dotSegments(k)) {
        // "post-target/.." (a filename of "../..") is a valid S3 key, but no URL can name it:
        // URL parsing resolves the dots. Check its size in a listing instead.
        const list = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix: k } });
        const text = await list.text();
        expect(text).toContain(`<Key>${k}</Key>`);
        expect(text).toContain(`<Size>${file!.value.byteLength}</Size>`);
        continue;
      }
      const get = await send("adminA", { method: "GET", bucket, key: k });
      const bytes = new Uint8Array(await get.arrayBuffer());
      expect(get.status).toBe(200);
      expect(file && sameBytes(bytes, file.value), `stored ${k} differs from the file sent`).toBe(true);
    }
  } else {
    expect(added, "a refused form stored something").toEqual([]);
  }
  // Keep the bucket small: what a case wrote goes again (DeleteObjects names any key).
  if (added.length > 0) {
    const xml = `<Delete>${added.map((k) => `<Object><Key>${k.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</Key></Object>`).join("")}</Delete>`;
    const del = await send("adminA", { method: "POST", bucket, query: { delete: "" }, body: xml, headers: { "content-md5": await md5Base64Of(xml) } });
    expect(del.status).toBe(200);
    await del.arrayBuffer();
  }
  return c;
}

describe("POST Object forms", () => {
  it("structural changes to a valid form (order, missing/duplicate fields, dispositions, boundaries, line endings)", async () => {
    let accepted = 0;
    await fuzz(
      "post/form-structure",
      fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.array(change, { maxLength: 3 }), shape, fc.boolean()),
      async ([size, changes, s, pieces]) => {
        const file = pseudoRandom(size, size + 1);
        const parts = applyChanges(await validForm(`${PREFIX}\${filename}`, file, "application/octet-stream"), changes);
        const c = await sendForm(parts, s, [], pieces);
        if (c.status < 300) accepted++;
      },
      2,
    );
    console.log(`[fuzz] post/form-structure: ${accepted} accepted`);
    expect(accepted).toBeGreaterThan(0);
    await sentinel.check();
  }, 1_800_000);

  it("an intact form is accepted; byte edits and truncation anywhere store the exact file or nothing", async () => {
    await fuzz(
      "post/form-bytes",
      fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.array(byteEdit, { maxLength: 3 }), fc.boolean()),
      async ([size, edits, pieces]) => {
        const file = pseudoRandom(size, size + 7);
        const parts = await validForm(`${PREFIX}k-${size}`, file, "text/plain");
        const c = await sendForm(parts, intactShape, edits, pieces);
        if (edits.length === 0) expect(c.status, `an intact form was refused: ${c.code}`).toBe(201);
      },
      2,
    );
    await sentinel.check();
  }, 1_800_000);
});
