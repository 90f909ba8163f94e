/**
 * The page's JSON request bodies: small objects (a file name, a receipt, a part number),
 * read with a hard byte limit so a client cannot make the worker buffer an unbounded body.
 */

/** Every JSON body the page takes is far below this. */
export const MAX_JSON_BODY_BYTES = 16 * 1024;

/** An error the page answers as JSON `{error, code}` with this status. */
export class PageError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 500 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "PageError";
  }
}

const tooLarge = () => new PageError(413, "RequestTooLarge", `The request body is larger than ${MAX_JSON_BODY_BYTES} bytes.`);

/** Reads a JSON object body of at most `limit` bytes; stops reading (and cancels) past it. */
export async function readJsonObject(request: Request, limit = MAX_JSON_BODY_BYTES): Promise<Record<string, unknown>> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new PageError(400, "MalformedJSON", "The request body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new PageError(400, "MalformedJSON", "The request body must be a JSON object.");
  return parsed as Record<string, unknown>;
}
