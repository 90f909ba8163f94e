/**
 * IAM wildcard matching (`*` any run, `?` one character).
 *
 * Patterns are compiled once into literal segments split at `*` and matched with
 * startsWith/indexOf, greedy-leftmost. That is O(pattern × subject) in the worst case.
 * Translating to a RegExp would be shorter, but V8's backtracking engine is polynomial
 * in the number of stars (`*a*a*a*a*b` against a 1 KiB key is ~n^5 steps), and policy
 * text is tenant-controlled: a single policy could burn a request's CPU budget.
 */

/** A pattern token: literal text, or one of the two wildcards. */
export const STAR = 0;
export const ANY = 1;
export type GlobToken = string | typeof STAR | typeof ANY;

/** `*` and `?` are wildcards; everything else is literal. */
export function tokenize(pattern: string): GlobToken[] {
  const out: GlobToken[] = [];
  let lit = "";
  for (const ch of pattern) {
    if (ch === "*" || ch === "?") {
      if (lit) out.push(lit);
      lit = "";
      out.push(ch === "*" ? STAR : ANY);
    } else {
      lit += ch;
    }
  }
  if (lit) out.push(lit);
  return out;
}

export function hasWildcard(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

/** A run of characters between stars; `any[i]` marks a `?` at offset i. */
interface Segment {
  readonly text: string;
  readonly any: readonly boolean[] | null;
}

export class Glob {
  /** The segments between stars; length 1 means the pattern has no `*`. */
  private readonly segs: readonly Segment[];
  private readonly minLength: number;

  constructor(
    tokens: readonly GlobToken[],
    private readonly ignoreCase = false,
  ) {
    const segs: Segment[] = [];
    let text = "";
    let any: boolean[] | null = null;
    const flush = () => {
      segs.push({ text, any });
      text = "";
      any = null;
    };
    for (const t of tokens) {
      if (t === STAR) {
        flush();
      } else if (t === ANY) {
        any ??= new Array<boolean>(text.length).fill(false);
        any.push(true);
        // Placeholder char; never compared because any[i] is set.
        text += "?";
      } else {
        const s = ignoreCase ? t.toLowerCase() : t;
        if (any) for (let i = 0; i < s.length; i++) any.push(false);
        text += s;
      }
    }
    flush();
    this.segs = segs;
    this.minLength = segs.reduce((n, s) => n + s.text.length, 0);
  }

  static of(pattern: string, ignoreCase = false): Glob {
    return new Glob(tokenize(pattern), ignoreCase);
  }

  test(subject: string): boolean {
    const s = this.ignoreCase ? subject.toLowerCase() : subject;
    const segs = this.segs;
    if (s.length < this.minLength) return false;
    const first = segs[0] as Segment;
    if (segs.length === 1) return s.length === first.text.length && matchAt(s, 0, first);
    if (!matchAt(s, 0, first)) return false;
    const last = segs[segs.length - 1] as Segment;
    const end = s.length - last.text.length;
    if (!matchAt(s, end, last)) return false;
    // Middle segments: leftmost placement is optimal because each is followed by a star.
    let pos = first.text.length;
    for (let i = 1; i < segs.length - 1; i++) {
      const seg = segs[i] as Segment;
      const at = find(s, seg, pos, end);
      if (at < 0) return false;
      pos = at + seg.text.length;
    }
    return true; // find() kept every middle segment before the last one
  }

  /**
   * Can some string starting with `prefix` match this pattern? Used by validation to
   * ask "could this resource pattern name an object in this bucket?". NFA simulation
   * over the pattern's characters; any state alive after the prefix can still reach
   * the end, since the remaining pattern only constrains characters we may choose.
   */
  canMatchPrefix(prefix: string): boolean {
    const items: (string | typeof STAR | typeof ANY)[] = [];
    this.segs.forEach((seg, i) => {
      if (i > 0) items.push(STAR);
      for (let j = 0; j < seg.text.length; j++) items.push(seg.any?.[j] ? ANY : (seg.text[j] as string));
    });
    const p = this.ignoreCase ? prefix.toLowerCase() : prefix;
    let states = closure(items, new Set([0]));
    for (let k = 0; k < p.length; k++) {
      const ch = p[k];
      const next = new Set<number>();
      for (const i of states) {
        const it = items[i];
        if (it === STAR) next.add(i);
        else if (it === ANY || it === ch) next.add(i + 1);
      }
      states = closure(items, next);
      if (states.size === 0) return false;
    }
    return true;
  }
}

function closure(items: readonly (string | number)[], states: Set<number>): Set<number> {
  for (const i of states) if (items[i] === STAR) states.add(i + 1); // Set iteration visits additions
  return states;
}

function matchAt(s: string, pos: number, seg: Segment): boolean {
  if (!seg.any) return s.startsWith(seg.text, pos);
  if (pos + seg.text.length > s.length) return false;
  for (let i = 0; i < seg.text.length; i++) {
    if (!seg.any[i] && s.charCodeAt(pos + i) !== seg.text.charCodeAt(i)) return false;
  }
  return true;
}

/** Leftmost position >= from where seg matches and ends at or before `end`. */
function find(s: string, seg: Segment, from: number, end: number): number {
  const last = end - seg.text.length;
  if (!seg.any) {
    const at = s.indexOf(seg.text, from);
    return at >= 0 && at <= last ? at : -1;
  }
  for (let i = from; i <= last; i++) if (matchAt(s, i, seg)) return i;
  return -1;
}
