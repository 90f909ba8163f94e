/**
 * Builds the condition context from request facts, so the HTTP layer passes what it
 * knows (headers, peer address, TLS, time, principal, query) and never spells keys.
 *
 * Policy conditions see the request's own headers (as on AWS): a bucket's default
 * encryption applied later does not make s3:x-amz-server-side-encryption present.
 */
import { principalKey } from "./principal";
import type { ConditionContext, ConditionValue, PolicyPrincipal } from "./types";

type StringMap = Readonly<Record<string, string | undefined>>;

export interface RequestFacts {
  /** Request headers; for POST Object, pass the form fields here as well. */
  readonly headers?: Headers | StringMap;
  /** The client address (CF-Connecting-IP). */
  readonly sourceIp?: string;
  readonly secureTransport?: boolean;
  /** Defaults to now. */
  readonly now?: Date;
  /** Override the User-Agent / Referer headers. */
  readonly userAgent?: string;
  readonly referer?: string;
  readonly principal?: PolicyPrincipal;
  /** Query parameters; prefix, delimiter and max-keys become s3: keys when present. */
  readonly query?: URLSearchParams | StringMap;
  readonly authType?: "REST-HEADER" | "REST-QUERY-STRING" | "POST";
  readonly signatureVersion?: "AWS4-HMAC-SHA256" | "AWS";
  /** Milliseconds since the request was signed. */
  readonly signatureAgeMs?: number;
  /** "1.2", "1.3", or Cloudflare's "TLSv1.3". */
  readonly tlsVersion?: string;
  readonly existingObjectTags?: StringMap;
  readonly requestObjectTags?: StringMap;
  readonly requestTags?: StringMap;
  /** Anything else, or overrides (e.g. the resolved KMS key ARN); names any case. */
  readonly extra?: Readonly<Record<string, ConditionValue>>;
}

const QUERY_KEYS = ["prefix", "delimiter", "max-keys"] as const;

export function buildConditionContext(f: RequestFacts): ConditionContext {
  const ctx: Record<string, ConditionValue> = {};
  const set = (k: string, v: ConditionValue) => {
    if (v !== undefined) ctx[k] = v;
  };

  // Every x-amz-* header is visible as s3:x-amz-*; only the names AWS defines can be
  // referenced by a validated policy, so the rest are inert.
  for (const [name, value] of entries(f.headers)) {
    const n = name.toLowerCase();
    if (n.startsWith("x-amz-")) set(`s3:${n}`, value);
  }
  set("aws:useragent", f.userAgent ?? header(f.headers, "user-agent"));
  set("aws:referer", f.referer ?? header(f.headers, "referer"));

  set("aws:sourceip", f.sourceIp);
  if (f.secureTransport !== undefined) set("aws:securetransport", String(f.secureTransport));
  const now = f.now ?? new Date();
  // AWS formats aws:CurrentTime without milliseconds.
  set("aws:currenttime", now.toISOString().replace(/\.\d{3}Z$/, "Z"));
  set("aws:epochtime", String(Math.floor(now.getTime() / 1000)));

  if (f.principal) {
    for (const k of ["aws:principaltype", "aws:principalaccount", "aws:principalarn", "aws:username", "aws:userid"]) {
      set(k, principalKey(k, f.principal));
    }
  }

  for (const q of QUERY_KEYS) set(`s3:${q}`, param(f.query, q));
  set("s3:authtype", f.authType);
  set("s3:signatureversion", f.signatureVersion);
  if (f.signatureAgeMs !== undefined) set("s3:signatureage", String(f.signatureAgeMs));
  if (f.tlsVersion !== undefined) set("s3:tlsversion", f.tlsVersion.replace(/^TLSv/i, ""));

  tags(ctx, "s3:existingobjecttag/", f.existingObjectTags);
  const requestTagKeys = tags(ctx, "s3:requestobjecttag/", f.requestObjectTags);
  if (requestTagKeys) ctx["s3:requestobjecttagkeys"] = requestTagKeys;
  const bucketTagKeys = tags(ctx, "aws:requesttag/", f.requestTags);
  if (bucketTagKeys) ctx["aws:tagkeys"] = bucketTagKeys;

  for (const [k, v] of Object.entries(f.extra ?? {})) {
    if (v === undefined) delete ctx[k.toLowerCase()];
    else ctx[k.toLowerCase()] = v;
  }
  return ctx;
}

/** Tag keys are folded to lowercase with the rest of the key name (IAM keys are case-insensitive). */
function tags(ctx: Record<string, ConditionValue>, family: string, map: StringMap | undefined): string[] | undefined {
  if (!map) return undefined;
  const keys: string[] = [];
  for (const [k, v] of Object.entries(map)) {
    if (v === undefined) continue;
    ctx[family + k.toLowerCase()] = v;
    keys.push(k);
  }
  return keys;
}

function entries(h: Headers | StringMap | undefined): [string, string][] {
  if (!h) return [];
  if (h instanceof Headers) return [...h.entries()];
  return Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined);
}

function header(h: Headers | StringMap | undefined, name: string): string | undefined {
  if (!h) return undefined;
  if (h instanceof Headers) return h.get(name) ?? undefined;
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function param(q: URLSearchParams | StringMap | undefined, name: string): string | undefined {
  if (!q) return undefined;
  if (q instanceof URLSearchParams) return q.get(name) ?? undefined;
  return q[name];
}
