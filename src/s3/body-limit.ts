/**
 * Cloudflare's request body limit, in S3's words.
 *
 * A deployed worker only receives request bodies up to the zone plan's limit (100 MB on
 * Free and Pro, 200 MB Business, 500 MB or more on Enterprise); above it Cloudflare answers
 * 413 with an HTML page before the worker runs, and an S3 client reports an unparseable
 * error. MAX_REQUEST_BODY_BYTES is that limit. An upload whose body exceeds it is refused
 * here with EntityTooLarge (ProposedSize, MaxSizeAllowed, and a message naming multipart
 * upload), before a byte is read — identically in local dev, where no edge stands in front.
 *
 * The limit is on the HTTP body as sent, so Content-Length counts, aws-chunked framing
 * included. A body without Content-Length (Transfer-Encoding: chunked) cannot be judged up
 * front: an aws-chunked one is refused when its x-amz-decoded-content-length alone
 * exceeds the limit (the wire body is larger still); any other is left to the handler
 * (PutObject/UploadPart require a length anyway, MissingContentLength) and, deployed, to
 * Cloudflare, which cuts it off at the limit.
 */
import { Errors } from "../errors";

export function refuseOversizedBody(request: Request, limit: number): void {
  const size = bodySizeAtLeast(request.headers);
  if (size === null || size <= limit) return;
  // The body is left untouched (not even locked by a reader): after the response the
  // runtime drains it, so the client, still sending, gets to read this error. Cancelling
  // it instead closes the connection under the client, which then reports a broken pipe
  // (rclone), an unparseable response (SDK v3) or a 500 from wrangler's dev proxy (aws-cli)
  // — seen in test/e2e/body-limit.test.ts. Deployed, Cloudflare bounds what is drained.
  throw Errors.EntityTooLarge(
    { ProposedSize: String(size), MaxSizeAllowed: String(limit) },
    `Your proposed upload exceeds the maximum allowed size: this endpoint accepts request bodies of at most ${limit} bytes. ` +
      "Upload larger objects with multipart upload, in parts smaller than that (aws-cli, boto3 and the SDKs' upload managers do so by default; " +
      "rclone: --s3-upload-cutoff and --s3-chunk-size; s3cmd: --multipart-chunk-size-mb).",
  );
}

/** The body's size as declared, or a lower bound of it; null when nothing declares it. */
function bodySizeAtLeast(headers: Headers): number | null {
  for (const name of ["content-length", "x-amz-decoded-content-length"]) {
    const raw = headers.get(name);
    if (raw !== null && /^\d+$/.test(raw.trim())) return Number(raw.trim());
  }
  return null;
}
