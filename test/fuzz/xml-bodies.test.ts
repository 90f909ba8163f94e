/**
 * Fuzzing every XML body the endpoint accepts: CompleteMultipartUpload, Delete
 * (DeleteObjects), CORSConfiguration, ServerSideEncryptionConfiguration, the bucket settings
 * (LifecycleConfiguration, Tagging, PublicAccessBlockConfiguration, OwnershipControls) and
 * CreateBucketConfiguration. Documents are random trees over each schema's vocabulary
 * (well-formed but wrong: missing, repeated, misplaced and extra elements, odd values),
 * random bytes, and the classics: deep nesting, internal and external entities (billion
 * laughs, XXE), CDATA, comments, processing instructions, BOMs and foreign encodings,
 * documents over the size limit.
 *
 * Properties: never a 5xx, every refusal a proper S3 error; a document that is accepted
 * leaves the endpoint consistent (its configuration reads back as XML, a completed
 * upload reads back as the parts' bytes); the sentinel object is never touched and no
 * key appears that the property does not expect.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUpload, uploadPart } from "../support/multipart";
import { HOST, createBucket, fetchWorker, readFully, sameBytes, seedIdentities, send, uniqueBucket, utf8 } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";
import { checkResponse, expectOnlyKeys, fuzz, junkBytes, md5Base64Of, nastyString, sendRaw, signedRequest, writeSentinel, type Sentinel } from "./support";

const bucket = uniqueBucket("fz-xml");
let sentinel: Sentinel;
const MPU_KEY = "mpu/target";
const SCRATCH = "scratch/encryption-default";

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  sentinel = await writeSentinel(bucket);
});

afterAll(async () => {
  await sentinel.check();
  await expectOnlyKeys(bucket, (k) => k === sentinel.key || k === MPU_KEY || k === SCRATCH || k.startsWith("victim/"));
});

// ---- documents -----------------------------------------------------------------------------

interface XmlNode {
  name: string;
  attrs: string;
  children: Array<XmlNode | { text: string; raw: boolean }>;
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function serialize(n: XmlNode): string {
  const inner = n.children.map((c) => ("name" in c ? serialize(c) : c.raw ? c.text : escape(c.text))).join("");
  return `<${n.name}${n.attrs}>${inner}</${n.name}>`;
}

/** Random trees whose element names come mostly from the schema, with text values from `values`. */
function documents(root: string, names: string[], values: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const name = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: fc.constantFrom("Foo", "x:Part", "part", "_", "a-b", "Ω") });
  const text = fc.record({ text: fc.oneof({ weight: 4, arbitrary: values }, { weight: 1, arbitrary: nastyString(30) }), raw: fc.constant(false) });
  const raw = fc.constantFrom("<![CDATA[1]]>", "<!-- c -->", "<?pi x?>", "&amp;", "&#x31;", "&#0;", "&#x110000;", "&unknown;", "&lt;Part&gt;", " ", "\n").map((t) => ({ text: t, raw: true }));
  const attrs = fc.oneof({ weight: 6, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom(' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', ' a="1"', " xmlns:x=\"urn:x\"", ' a="1" a="2"') });
  const { node } = fc.letrec<{ node: XmlNode }>((tie) => ({
    node: fc.record({
      name,
      attrs,
      children: fc.array(fc.oneof({ depthSize: "small", withCrossShrink: true }, text, raw, tie("node")), { maxLength: 5 }),
    }),
  }));
  const rootArb = fc.oneof({ weight: 9, arbitrary: fc.constant(root) }, { weight: 1, arbitrary: fc.constantFrom("Foo", root.toLowerCase(), `x:${root}`) });
  const ns = fc.constantFrom(' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', "", ' xmlns="urn:other"');
  const decl = fc.constantFrom("", '<?xml version="1.0" encoding="UTF-8"?>\n', '<?xml version="1.0" encoding="UTF-16"?>', '<?xml version="1.1"?>', "\ufeff", '<?xml version="1.0"?><!-- c -->');
  return fc.tuple(decl, rootArb, ns, fc.array(node, { maxLength: 6 }), fc.constantFrom("", "", "", " ", "<x/>", "trailing")).map(
    ([d, r, n, children, after]) => `${d}${serialize({ name: r, attrs: n, children })}${after}`,
  );
}

/** Documents every XML parser must survive, for any root. */
function classics(root: string): fc.Arbitrary<string | Uint8Array> {
  const ns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
  return fc.oneof(
    fc.integer({ min: 30, max: 20_000 }).map((depth) => `<${root}${ns}>${"<a>".repeat(depth)}x${"</a>".repeat(depth)}</${root}>`),
    fc.integer({ min: 1, max: 9 }).map((levels) => {
      let entities = '<!ENTITY e0 "lol">';
      for (let i = 1; i <= levels; i++) entities += `<!ENTITY e${i} "${`&e${i - 1};`.repeat(10)}">`;
      return `<?xml version="1.0"?><!DOCTYPE ${root} [${entities}]><${root}${ns}><Key>&e${levels};</Key></${root}>`;
    }),
    fc.constantFrom(
      `<?xml version="1.0"?><!DOCTYPE ${root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><${root}${ns}><Key>&xxe;</Key></${root}>`,
      `<?xml version="1.0"?><!DOCTYPE ${root} SYSTEM "http://example.invalid/x.dtd"><${root}${ns}/>`,
      `<${root}${ns}><![CDATA[<Part><PartNumber>1</PartNumber></Part>]]></${root}>`,
      `<${root}${ns}>`,
      `</${root}>`,
      `<${root}${ns}/>`,
      `<${root}${ns}></${root}><${root}${ns}></${root}>`,
      "",
      " ",
      "null",
      "{}",
    ),
    fc.integer({ min: 2 * 1024 * 1024 - 64, max: 2 * 1024 * 1024 + 64 }).map((n) => `<${root}${ns}>${" ".repeat(Math.max(0, n - 2 * root.length - 60))}</${root}>`),
    junkBytes([`<${root}>`, "<?xml", "<", "\ufeff<", `<${root}${ns}><`], 300),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => {
      // Invalid UTF-8 inside an otherwise fine document.
      const head = utf8(`<${root}${ns}><Key>`);
      const tail = utf8(`</Key></${root}>`);
      const out = new Uint8Array(head.byteLength + b.byteLength + tail.byteLength);
      out.set(head);
      out.set(b.map((x) => x | 0x80), head.byteLength);
      out.set(tail, head.byteLength + b.byteLength);
      return out;
    }),
  );
}

const bodyOf = (root: string, names: string[], values: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 5, arbitrary: documents(root, names, values) }, { weight: 2, arbitrary: classics(root) });

async function sendXml(method: string, target: { bucket?: string; key?: string; rawPath?: string }, query: Record<string, string>, body: string | Uint8Array, md5: boolean): Promise<Response> {
  const bytes = typeof body === "string" ? utf8(body) : body;
  const headers: Record<string, string> = { "content-type": "application/xml" };
  if (md5) headers["content-md5"] = await md5Base64Of(bytes);
  return sendRaw(await signedRequest("adminA", { method, ...target, query, headers, body: bytes }));
}

/** `<name>value</name>` with the value escaped. */
const el = (name: string, value: string) => `<${name}>${escape(value)}</${name}>`;
const S3NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';

const label = (b: string | Uint8Array) => JSON.stringify((typeof b === "string" ? b : `<${b.byteLength} bytes>`).slice(0, 300));

// ---- CompleteMultipartUpload ------------------------------------------------------------------

describe("CompleteMultipartUpload", () => {
  let upload: { id: string; etags: string[] } | null = null;
  const partBodies = [pseudoRandom(1000, 21), pseudoRandom(1500, 22)];

  async function freshUpload() {
    const id = await createUpload("adminA", bucket, MPU_KEY);
    const etags = [await uploadPart("adminA", bucket, MPU_KEY, id, 1, partBodies[0]!), await uploadPart("adminA", bucket, MPU_KEY, id, 2, partBodies[1]!)];
    upload = { id, etags };
  }

  it("random documents against a live upload (with its real part ETags in the vocabulary)", async () => {
    await freshUpload();
    let completed = 0;
    const values = fc.oneof(
      fc.constantFrom("1", "2", "3", "0", "-1", "10000", "10001", "99999", "1.0", " 1 ", "0x1", "", "COMPOSITE", "FULL_OBJECT", "AAAAAA==", "true"),
      fc.constantFrom(0, 1).map((i) => upload!.etags[i]!),
      fc.constantFrom(0, 1).map((i) => upload!.etags[i]!.replace(/"/g, "")),
      fc.constantFrom(0, 1).map((i) => `&quot;${upload!.etags[i]!.replace(/"/g, "")}&quot;`),
    );
    const names = ["Part", "PartNumber", "ETag", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ChecksumCRC64NVME", "ChecksumType"];
    // Part lists that look right, so the checks past the parser run too.
    const plausible = fc
      .array(fc.tuple(fc.constantFrom(1, 2, 3, 0, 10001), fc.constantFrom(0, 1, 2)), { minLength: 1, maxLength: 3 })
      .map((ps) => `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${ps.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${upload!.etags[e] ?? '"0000"'}</ETag></Part>`).join("")}</CompleteMultipartUpload>`);
    await fuzz(
      "xml/complete-multipart",
      fc.oneof({ weight: 3, arbitrary: bodyOf("CompleteMultipartUpload", names, values) }, { weight: 2, arbitrary: plausible }),
      async (body) => {
        const c = await checkResponse(await sendXml("POST", { bucket, key: MPU_KEY }, { uploadId: upload!.id }, body, false), "POST", label(body));
        if (c.status !== 200) return;
        // A completion: the object is some ascending selection of the parts (the last may be small).
        completed++;
        const get = await send("adminA", { method: "GET", bucket, key: MPU_KEY });
        const { bytes, errored } = await readFully(get);
        expect(get.status).toBe(200);
        expect(errored).toBe(false);
        const options = [partBodies[0]!, partBodies[1]!];
        expect(options.some((o) => sameBytes(o, bytes)), `completed object of ${bytes.byteLength} bytes is not a listed part`).toBe(true);
        await freshUpload();
      },
      1,
    );
    console.log(`[fuzz] xml/complete-multipart: ${completed} completions`);
    await send("adminA", { method: "DELETE", bucket, key: MPU_KEY, query: { uploadId: upload!.id } });
    await sentinel.check();
  }, 900_000);
});

// ---- DeleteObjects -------------------------------------------------------------------------

describe("DeleteObjects", () => {
  it("random Delete documents never remove the sentinel; listed victims are the only keys removed", async () => {
    for (const k of ["victim/a", "victim/b"]) expect((await send("adminA", { method: "PUT", bucket, key: k, body: "v" })).status).toBe(200);
    const values = fc.oneof(
      fc.constantFrom("victim/a", "victim/b", "victim/", "victim", "null", "true", "false", "TRUE", "1", "", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"),
      nastyString(30).filter((s) => !s.startsWith("sentinel")),
    );
    const names = ["Object", "Key", "VersionId", "Quiet", "ETag", "LastModifiedTime", "Size"];
    const object = fc.tuple(values, fc.option(values, { nil: undefined })).map(([k, v]) => `<Object>${el("Key", k)}${v !== undefined ? el("VersionId", v) : ""}</Object>`);
    const plausible = fc
      .tuple(fc.option(values, { nil: undefined }), fc.oneof(fc.array(object, { maxLength: 5 }), fc.constantFrom(1000, 1001).map((n) => Array.from({ length: n }, (_, i) => `<Object>${el("Key", `victim/${i}`)}</Object>`))))
      .map(([quiet, objects]) => `<Delete${S3NS}>${quiet !== undefined ? el("Quiet", quiet) : ""}${objects.join("")}</Delete>`);
    await fuzz(
      "xml/delete-objects",
      fc.tuple(fc.oneof({ weight: 3, arbitrary: plausible }, { weight: 2, arbitrary: bodyOf("Delete", names, values) }), fc.integer({ min: 0, max: 9 }).map((n) => n < 8)),
      async ([body, md5]) => {
        const c = await checkResponse(await sendXml("POST", { bucket }, { delete: "" }, body, md5), "POST", label(body));
        if (c.status === 200) {
          // Restore whatever was deleted, so later cases have victims again.
          for (const k of ["victim/a", "victim/b"]) if ((await send("adminA", { method: "HEAD", bucket, key: k })).status === 404) await send("adminA", { method: "PUT", bucket, key: k, body: "v" });
        }
        const head = await send("adminA", { method: "HEAD", bucket, key: sentinel.key });
        expect(head.status, "the sentinel was deleted").toBe(200);
      },
      1,
    );
    await sentinel.check();
  }, 900_000);
});

// ---- bucket configuration documents ------------------------------------------------------------

describe("bucket configuration documents", () => {
  it("CORSConfiguration: refused properly, or stored and read back as a document; preflights keep working", async () => {
    const values = fc.constantFrom(
      "*", "http://a.example", "https://*.example.com", "http://*.*.x", "**", "null", "GET", "PUT", "POST", "DELETE", "HEAD", "get", "PATCH", "OPTIONS", "",
      "Authorization", "x-amz-*", "*-*", "ETag", "0", "3000", "-1", "4294967296", "1e3", "rule-1", "x".repeat(256),
    );
    const names = ["CORSRule", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader", "MaxAgeSeconds", "ID"];
    const many = (name: string, min: number, max: number) => fc.array(values, { minLength: min, maxLength: max }).map((vs) => vs.map((v) => el(name, v)).join(""));
    const rule = fc
      .tuple(many("ID", 0, 1), many("AllowedOrigin", 0, 2), many("AllowedMethod", 0, 2), many("AllowedHeader", 0, 2), many("ExposeHeader", 0, 1), many("MaxAgeSeconds", 0, 1))
      .map((parts) => `<CORSRule>${parts.join("")}</CORSRule>`);
    const plausible = fc
      .oneof(fc.array(rule, { minLength: 1, maxLength: 3 }), fc.constantFrom(100, 101).map((n) => Array.from({ length: n }, () => "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>")))
      .map((rules) => `<CORSConfiguration${S3NS}>${rules.join("")}</CORSConfiguration>`);
    await fuzz(
      "xml/cors",
      fc.tuple(fc.oneof({ weight: 3, arbitrary: plausible }, { weight: 2, arbitrary: bodyOf("CORSConfiguration", names, values) }), fc.constantFrom("http://a.example", "https://b.example.com", "null", ""), fc.constantFrom("GET", "PUT", "PATCH", "")),
      async ([body, origin, method]) => {
        const c = await checkResponse(await sendXml("PUT", { bucket }, { cors: "" }, body, true), "PUT", label(body));
        if (c.status === 200) {
          const get = await checkResponse(await send("adminA", { method: "GET", bucket, query: { cors: "" } }), "GET");
          expect(get.status).toBe(200);
          expect(new TextDecoder().decode(get.bytes)).toContain("<CORSConfiguration");
        }
        const headers: Record<string, string> = { ...(origin ? { origin } : {}), ...(method ? { "access-control-request-method": method } : {}) };
        await checkResponse(await fetchWorker(`http://${HOST}/${bucket}/${encodeURIComponent("any key")}`, { method: "OPTIONS", headers }), "OPTIONS", "preflight");
      },
      1.5,
    );
    await send("adminA", { method: "DELETE", bucket, query: { cors: "" } });
    await sentinel.check();
  }, 900_000);

  it("ServerSideEncryptionConfiguration: refused properly, or stored and applied to the next write", async () => {
    const values = fc.constantFrom(
      "AES256", "aws:kms", "aws:kms:dsse", "aes256", "AWS:KMS", "", "true", "false", "TRUE", "1",
      "alias/aws/s3", "alias/does-not-exist", "00000000-0000-0000-0000-000000000000", "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000",
      "arn:aws:kms:eu-west-1:000000000000:alias/x", "arn:aws:s3:::x", "alias/", "x".repeat(2000),
    );
    const names = ["Rule", "ApplyServerSideEncryptionByDefault", "SSEAlgorithm", "KMSMasterKeyID", "BucketKeyEnabled", "BlockedEncryptionTypes", "EncryptionType"];
    // fc.option's freq: one case in `freq` is the nil value.
    const opt = (name: string, v: fc.Arbitrary<string> = values) => fc.option(v.map((x) => el(name, x)), { nil: "", freq: 4 });
    const algorithm = fc.oneof({ weight: 4, arbitrary: fc.constantFrom("AES256", "aws:kms") }, { weight: 1, arbitrary: values });
    const keyId = fc.oneof({ weight: 2, arbitrary: fc.constantFrom("alias/aws/s3", "alias/does-not-exist") }, { weight: 1, arbitrary: values });
    const rule = fc
      .tuple(opt("SSEAlgorithm", algorithm), fc.option(keyId.map((x) => el("KMSMasterKeyID", x)), { nil: "", freq: 2 }), opt("BucketKeyEnabled", fc.constantFrom("true", "false", "TRUE", "1")), fc.integer({ min: 0, max: 5 }).map((n) => n > 0))
      .map(([alg, key, bk, wrapped]) => `<Rule>${wrapped ? `<ApplyServerSideEncryptionByDefault>${alg}${key}</ApplyServerSideEncryptionByDefault>` : alg + key}${bk}</Rule>`);
    const plausible = fc.oneof({ weight: 4, arbitrary: rule.map((r) => [r]) }, { weight: 1, arbitrary: fc.array(rule, { minLength: 0, maxLength: 2 }) }).map((rules) => `<ServerSideEncryptionConfiguration${S3NS}>${rules.join("")}</ServerSideEncryptionConfiguration>`);
    await fuzz(
      "xml/encryption",
      fc.oneof({ weight: 3, arbitrary: plausible }, { weight: 2, arbitrary: bodyOf("ServerSideEncryptionConfiguration", names, values) }),
      async (body) => {
        const c = await checkResponse(await sendXml("PUT", { bucket }, { encryption: "" }, body, false), "PUT", label(body));
        if (c.status !== 200) return;
        const get = await checkResponse(await send("adminA", { method: "GET", bucket, query: { encryption: "" } }), "GET");
        expect(get.status).toBe(200);
        const put = await checkResponse(await send("adminA", { method: "PUT", bucket, key: SCRATCH, body: "default encryption" }), "PUT", `after ${label(body)}`);
        expect(put.status, `a write under the accepted configuration ${label(body)} failed: ${put.code}`).toBe(200);
      },
      1.5,
    );
    await send("adminA", { method: "DELETE", bucket, query: { encryption: "" } });
    await sentinel.check();
  }, 900_000);

  /**
   * A stored setting reads back as a document that, sent again, is accepted and reads back
   * identically (the bucket settings of README "Bucket settings").
   */
  async function roundTrips(query: Record<string, string>, body: string | Uint8Array): Promise<void> {
    const get = await checkResponse(await send("adminA", { method: "GET", bucket, query }), "GET");
    // An empty TagSet removes the tags, as on AWS.
    if (get.code === "NoSuchTagSet" && "tagging" in query) return;
    expect(get.status, `after ${label(body)}`).toBe(200);
    const text = new TextDecoder().decode(get.bytes);
    const again = await checkResponse(await sendXml("PUT", { bucket }, query, text, true), "PUT", `read-back ${label(text)}`);
    expect(again.status, `the read-back document of ${label(body)} was refused: ${again.code}`).toBeLessThan(300);
    const twice = await checkResponse(await send("adminA", { method: "GET", bucket, query }), "GET");
    expect(new TextDecoder().decode(twice.bytes)).toBe(text);
  }

  it("LifecycleConfiguration: refused properly, or stored and read back as a document that round-trips", async () => {
    const values = fc.constantFrom(
      "Enabled", "Disabled", "enabled", "", "0", "1", "30", "-1", "2147483648", "1e3", " 7 ", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00.000Z", "2030-01-01",
      "2030-01-01T01:00:00Z", "not a date", "true", "false", "logs/", "a&b", "k", "v", "GLACIER", "x".repeat(256),
    );
    const names = ["Rule", "ID", "Status", "Filter", "Prefix", "Tag", "Key", "Value", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "Expiration", "Days", "Date",
      "ExpiredObjectDeleteMarker", "AbortIncompleteMultipartUpload", "DaysAfterInitiation", "NoncurrentVersionExpiration", "NoncurrentDays", "Transition", "StorageClass"];
    const opt = (a: fc.Arbitrary<string>) => fc.option(a, { nil: "", freq: 6 });
    const good = (...vs: string[]) => fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...vs) }, { weight: 1, arbitrary: values });
    const tag = fc.tuple(values, values).map(([k, v]) => `<Tag>${el("Key", k)}${el("Value", v)}</Tag>`);
    const predicate = fc.oneof(
      values.map((v) => el("Prefix", v)),
      tag,
      values.map((v) => el("ObjectSizeGreaterThan", v)),
      values.map((v) => el("ObjectSizeLessThan", v)),
      fc.array(fc.oneof(values.map((v) => el("Prefix", v)), tag, values.map((v) => el("ObjectSizeGreaterThan", v))), { maxLength: 3 }).map((ps) => `<And>${ps.join("")}</And>`),
    );
    const selection = fc.oneof(
      { weight: 4, arbitrary: fc.array(predicate, { maxLength: 2 }).map((ps) => `<Filter>${ps.join("")}</Filter>`) },
      { weight: 1, arbitrary: values.map((v) => el("Prefix", v)) },
      { weight: 1, arbitrary: fc.constant("") },
    );
    const action = fc.oneof(
      fc.array(fc.tuple(fc.constantFrom("Days", "Date", "ExpiredObjectDeleteMarker"), good("1", "30", "2030-01-01T00:00:00Z", "true")), { minLength: 1, maxLength: 2 }).map((es) => `<Expiration>${es.map(([n, v]) => el(n, v)).join("")}</Expiration>`),
      good("1", "7").map((v) => `<AbortIncompleteMultipartUpload>${el("DaysAfterInitiation", v)}</AbortIncompleteMultipartUpload>`),
      good("3").map((v) => `<NoncurrentVersionExpiration>${el("NoncurrentDays", v)}</NoncurrentVersionExpiration>`),
    );
    const rule = fc
      .tuple(opt(values.map((v) => el("ID", v))), selection, opt(good("Enabled", "Disabled").map((v) => el("Status", v))), fc.array(action, { minLength: 1, maxLength: 2 }))
      .map(([id, sel, status, actions]) => `<Rule>${id}${sel}${status}${actions.join("")}</Rule>`);
    const plausible = fc.array(rule, { minLength: 1, maxLength: 3 }).map((rules) => `<LifecycleConfiguration${S3NS}>${rules.join("")}</LifecycleConfiguration>`);
    let stored = 0;
    await fuzz(
      "xml/lifecycle",
      fc.oneof({ weight: 3, arbitrary: plausible }, { weight: 2, arbitrary: bodyOf("LifecycleConfiguration", names, values) }),
      async (body) => {
        const c = await checkResponse(await sendXml("PUT", { bucket }, { lifecycle: "" }, body, true), "PUT", label(body));
        if (c.status !== 200) return;
        stored++;
        await roundTrips({ lifecycle: "" }, body);
        // Objects still answer with whatever x-amz-expiration the rules give.
        await checkResponse(await send("adminA", { method: "HEAD", bucket, key: sentinel.key }), "HEAD", `after ${label(body)}`);
      },
      1.5,
    );
    console.log(`[fuzz] xml/lifecycle: ${stored} configurations stored`);
    await send("adminA", { method: "DELETE", bucket, query: { lifecycle: "" } });
    await sentinel.check();
  }, 900_000);

  it("Tagging, PublicAccessBlockConfiguration, OwnershipControls: refused properly, or stored and read back as a document that round-trips", async () => {
    const values = fc.constantFrom("true", "false", "TRUE", " true ", "", "k", "v", "aws:x", "a b", "ä", "x".repeat(129), "BucketOwnerEnforced", "ObjectWriter", "a&b", "=+-.@_:/");
    const kinds: Array<{ query: Record<string, string>; root: string; names: string[]; plausible: fc.Arbitrary<string> }> = [
      { query: { tagging: "" }, root: "Tagging", names: ["TagSet", "Tag", "Key", "Value"], plausible: fc.array(fc.tuple(values, values), { maxLength: 4 }).map((ts) => `<Tagging${S3NS}><TagSet>${ts.map(([k, v]) => `<Tag>${el("Key", k)}${el("Value", v)}</Tag>`).join("")}</TagSet></Tagging>`) },
      {
        query: { publicAccessBlock: "" },
        root: "PublicAccessBlockConfiguration",
        names: ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"],
        plausible: fc.array(fc.tuple(fc.constantFrom("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), values), { maxLength: 4 }).map((es) => `<PublicAccessBlockConfiguration${S3NS}>${es.map(([n, v]) => el(n, v)).join("")}</PublicAccessBlockConfiguration>`),
      },
      { query: { ownershipControls: "" }, root: "OwnershipControls", names: ["Rule", "ObjectOwnership"], plausible: fc.array(values, { maxLength: 2 }).map((vs) => `<OwnershipControls${S3NS}>${vs.map((v) => `<Rule>${el("ObjectOwnership", v)}</Rule>`).join("")}</OwnershipControls>`) },
    ];
    await fuzz(
      "xml/bucket-settings",
      fc.oneof(...kinds.map((k) => fc.tuple(fc.constant(k.query), fc.oneof({ weight: 3, arbitrary: k.plausible }, { weight: 2, arbitrary: bodyOf(k.root, k.names, values) })))),
      async ([query, body]) => {
        const c = await checkResponse(await sendXml("PUT", { bucket }, query, body, true), "PUT", label(body));
        if (c.status < 300) await roundTrips(query, body);
      },
      1.5,
    );
    for (const query of kinds.map((k) => k.query)) await send("adminA", { method: "DELETE", bucket, query });
    await sentinel.check();
  }, 900_000);

  it("CreateBucketConfiguration: refused properly, or the bucket is created (and removed again)", async () => {
    const values = fc.constantFrom("us-east-1", "", "EU", "eu-west-1", "us-gov-west-1", "mars-1", "US", "us-east-1 ", "Directory", "SingleAvailabilityZone", "usw2-az1", "AvailabilityZone");
    const names = ["LocationConstraint", "Location", "Name", "Type", "Bucket", "DataRedundancy", "Tags", "Tag"];
    const plausible = fc.array(fc.tuple(fc.constantFrom(...names), values), { maxLength: 2 }).map((els) => `<CreateBucketConfiguration${S3NS}>${els.map(([n, v]) => el(n, v)).join("")}</CreateBucketConfiguration>`);
    let n = 0;
    await fuzz(
      "xml/create-bucket",
      fc.oneof({ weight: 2, arbitrary: plausible }, { weight: 2, arbitrary: bodyOf("CreateBucketConfiguration", names, values) }),
      async (body) => {
        const name = `${bucket}-nb${n++}`.slice(0, 63);
        const c = await checkResponse(await sendXml("PUT", { rawPath: `/${name}` }, {}, body, false), "PUT", label(body));
        if (c.status === 200) expect((await send("adminA", { method: "DELETE", bucket: name })).status).toBe(204);
        else expect((await send("adminA", { method: "HEAD", bucket: name })).status, "a refused CreateBucket created the bucket").toBe(404);
      },
      1,
    );
  }, 900_000);
});
