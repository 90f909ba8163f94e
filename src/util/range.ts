/**
 * Range header semantics as S3 applies them: one `bytes=` range; syntactically invalid or
 * multi-range headers are ignored (the whole object is returned); a syntactically valid
 * range that starts past the end is 416 InvalidRange.
 */
export type RangeRequest = { kind: "bounded"; first: number; last: number } | { kind: "open"; first: number } | { kind: "suffix"; length: number };

export function parseRange(header: string | null | undefined): RangeRequest | null {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null;
  const [, a, b] = m;
  if (a === "" && b === "") return null;
  if (a === "") return { kind: "suffix", length: Number(b) };
  const first = Number(a);
  if (b === "") return { kind: "open", first };
  const last = Number(b);
  if (last < first) return null;
  return { kind: "bounded", first, last };
}

/** Inclusive byte span of an object of `size` bytes, or "unsatisfiable". */
export function resolveRange(range: RangeRequest, size: number): { first: number; last: number } | "unsatisfiable" {
  if (size === 0) return "unsatisfiable";
  switch (range.kind) {
    case "bounded":
      return range.first >= size ? "unsatisfiable" : { first: range.first, last: Math.min(range.last, size - 1) };
    case "open":
      return range.first >= size ? "unsatisfiable" : { first: range.first, last: size - 1 };
    case "suffix":
      return range.length === 0 ? "unsatisfiable" : { first: Math.max(0, size - range.length), last: size - 1 };
  }
}
