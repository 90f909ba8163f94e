import type { Gate } from "../../objects/object-info";
import { statObjectPart } from "../../objects/read";
import { evaluateConditions, type ConditionHeaders } from "../conditions";
import type { S3Context } from "../context";
import { Errors } from "../../errors";
import { applyResponseOverrides, objectResponseHeaders } from "../object-headers";
import type { Bucket } from "../../store/buckets";
import { setExpiration, setTaggingCount } from "./object-read-headers";

/**
 * GET/HEAD ?partNumber=N: 1..10000, and never together with a Range header. The part is
 * served like a range of the object (206, Content-Range), with x-amz-mp-parts-count for
 * multipart objects; an object uploaded in one piece has one part, the whole object.
 */
export function partNumberParam(query: URLSearchParams, headers: Headers): number | undefined {
  const raw = query.get("partNumber");
  if (raw === null) return undefined;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 10_000) {
    throw Errors.InvalidArgument({ ArgumentName: "partNumber", ArgumentValue: raw }, "Part number must be an integer between 1 and 10000, inclusive");
  }
  if (headers.has("range")) throw Errors.InvalidRequest({}, "Cannot specify both Range header and partNumber query parameter");
  return Number(raw);
}

export async function headPart(ctx: S3Context, bucket: Bucket, key: string, partNumber: number, gate: Gate, conditions: ConditionHeaders): Promise<Response> {
  const part = await statObjectPart(ctx.services.objects, bucket, key, partNumber, gate);
  evaluateConditions(conditions, part.info);
  const out = objectResponseHeaders(part.info, false);
  // Object-level, as on a GET of the part.
  await setTaggingCount(ctx, bucket, part.info, out);
  setExpiration(out, bucket, key, part.info.size, part.info.lastModified);
  applyResponseOverrides(out, ctx.url.searchParams, ctx.principal === null);
  if (part.partsCount !== undefined) out.set("x-amz-mp-parts-count", String(part.partsCount));
  if (!part.span) {
    out.set("Content-Length", "0");
    return new Response(null, { status: 200, headers: out });
  }
  out.set("Content-Range", `bytes ${part.span.first}-${part.span.last}/${part.info.size}`);
  out.set("Content-Length", String(part.span.last - part.span.first + 1));
  return new Response(null, { status: 206, headers: out });
}
