import { openBody } from "../../auth/body";
import { concatBytes } from "../../util/bytes";
import type { S3Context } from "../context";
import { Errors } from "../../errors";
import { MAX_XML_BYTES, parseXmlDocument } from "../xml";

/**
 * Reads a small request body (XML or JSON documents) through the verified body source, so
 * its SHA-256, Content-MD5 and checksums are checked like any object body's.
 */
export async function readBodyText(ctx: S3Context, limit: number): Promise<string> {
  const body = openBody(ctx.request, ctx.verified, { computeMd5: false });
  if (body.length !== null && body.length > limit) {
    await body.cancel();
    throw Errors.MaxMessageLengthExceeded();
  }
  const pieces: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const piece = await body.read(64 * 1024);
    if (piece.byteLength === 0) break;
    total += piece.byteLength;
    if (total > limit) {
      await body.cancel();
      throw Errors.MaxMessageLengthExceeded();
    }
    pieces.push(piece);
  }
  return new TextDecoder().decode(concatBytes(pieces));
}

export async function readBodyXml(ctx: S3Context, root: string): Promise<Record<string, unknown>> {
  return parseXmlDocument(await readBodyText(ctx, MAX_XML_BYTES), root);
}

/** DeleteObjects and similar APIs insist on an integrity header (Content-MD5 or a checksum). */
export function requireIntegrityHeader(headers: Headers): void {
  if (headers.has("content-md5")) return;
  for (const [name] of headers) if (name.startsWith("x-amz-checksum-") || name === "x-amz-trailer") return;
  throw Errors.InvalidRequest({}, "Missing required header for this request: Content-MD5");
}
