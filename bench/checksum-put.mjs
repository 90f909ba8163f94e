// Stored-checksum benchmark (issue 13 item 1): what keeping a checksum costs a PUT and a GET.
//
//   bench/run.mjs imports run() with its worker (npm run bench); not run by the tests.
//
// PUT, 16 MiB objects, interleaved, same gateway, SSE-KMS:
//   - "trailer": the AWS SDK v3 with its defaults and a stream body — aws-chunked, unsigned
//     chunks, a CRC32 trailer the gateway verifies and seals into the trailer record;
//   - "plain": a presigned PUT with no checksum — the gateway computes CRC64NVME itself;
//   - "passthrough": the bare R2 route, for the ratio the other rows are read against.
// GET of the same object with and without x-amz-checksum-mode: ENABLED (one more R2 read,
// of the last 52 bytes, in parallel with the body).
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Readable } from "node:stream";
import { getStream, median, MiB, putStream } from "./lib/measure.mjs";

const SIZE = 16 * MiB;
const ROUNDS = 7;
const mbps = (bytes, seconds) => bytes / seconds / 1e6;

function body(size) {
  const piece = Buffer.alloc(MiB, 0x5a);
  return Readable.from((function* () {
    for (let left = size; left > 0; left -= MiB) yield left >= MiB ? piece : piece.subarray(0, left);
  })());
}

export async function run({ endpoint, s3, bucket, passthrough }) {
  const sdk = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" } });
  const seconds = { trailer: [], plain: [], passthrough: [], get: [], getChecksum: [] };
  for (let round = 0; round < ROUNDS; round++) {
    let t = performance.now();
    await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: "sum-trailer", Body: body(SIZE), ContentLength: SIZE, ServerSideEncryption: "aws:kms" }));
    seconds.trailer.push((performance.now() - t) / 1000);

    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "sum-plain", ServerSideEncryption: "aws:kms" }), { expiresIn: 3600 });
    const plain = await putStream(url, SIZE, { "x-amz-server-side-encryption": "aws:kms" });
    if (plain.status !== 200) throw new Error(`plain PUT: ${plain.status} ${plain.body}`);
    seconds.plain.push(plain.seconds);

    const pass = await putStream(`${passthrough}/sum-pass`, SIZE);
    if (pass.status !== 200) throw new Error(`passthrough PUT: ${pass.status}`);
    seconds.passthrough.push(pass.seconds);

    // x-amz-checksum-mode must be signed (a presigned request with an unsigned x-amz-*
    // header is refused, as S3 does): presign it, and the SDK puts it in the query.
    const getUrls = {
      get: await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "sum-trailer" }), { expiresIn: 3600 }),
      getChecksum: await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "sum-trailer", ChecksumMode: "ENABLED" }), { expiresIn: 3600 }),
    };
    // Alternate which goes first: the second GET of the same object in a round is not
    // alike (measured: a fixed order showed a 40% gap that 12 alternating pairs did not).
    for (const kind of round % 2 ? ["getChecksum", "get"] : ["get", "getChecksum"]) {
      t = performance.now();
      const r = await getStream(getUrls[kind]);
      if (r.status !== 200) throw new Error(`GET ${kind}: ${r.status}`);
      seconds[kind].push((performance.now() - t) / 1000);
    }
  }
  const rate = (kind) => mbps(SIZE, median(seconds[kind]));
  return {
    objectSize: "16MiB",
    rounds: ROUNDS,
    putTrailerMBps: rate("trailer"),
    putPlainDefaultCrc64MBps: rate("plain"),
    putPassthroughMBps: rate("passthrough"),
    putTrailerRatio: rate("trailer") / rate("passthrough"),
    putPlainRatio: rate("plain") / rate("passthrough"),
    getMBps: rate("get"),
    getWithChecksumModeMBps: rate("getChecksum"),
  };
}
