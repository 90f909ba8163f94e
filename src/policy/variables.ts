/**
 * Policy variables (`${aws:username}`, `${*}`, `${key, 'default'}`) in Resource and in
 * string/ARN condition values. AWS substitutes them only for Version 2012-10-17; under
 * 2008-10-17 or no Version the text is literal, and so it is here.
 *
 * A substituted value is always literal: a user named `a*` must not become a wildcard.
 */
import { Glob, STAR, tokenize, type GlobToken } from "./glob";
import { canonicalKey } from "./keys";
import { malformed } from "./malformed";
import type { Lookup } from "./types";

type Part =
  | { readonly kind: "text"; readonly text: string }
  /** `${*}`, `${?}`, `${$}`: the literal character. */
  | { readonly kind: "char"; readonly ch: string }
  | { readonly kind: "var"; readonly key: string; readonly fallback: string | undefined };

const VARIABLE = /\$\{([^}]*)\}/g;
const BODY = /^\s*([A-Za-z0-9:/_.+=@-]+)\s*(?:,\s*'([^']*)'\s*)?$/;

export class Template {
  private constructor(
    private readonly parts: readonly Part[],
    /** The text as written, for messages and for isPublic's "fixed value" test. */
    readonly source: string,
  ) {}

  get hasVariables(): boolean {
    return this.parts.some((p) => p.kind !== "text");
  }

  static parse(source: string, allowVariables: boolean): Template {
    if (!allowVariables || !source.includes("${")) return new Template([{ kind: "text", text: source }], source);
    const parts: Part[] = [];
    let last = 0;
    for (const m of source.matchAll(VARIABLE)) {
      if (m.index > last) parts.push({ kind: "text", text: source.slice(last, m.index) });
      last = m.index + m[0].length;
      const body = (m[1] as string).trim();
      if (body === "*" || body === "?" || body === "$") {
        parts.push({ kind: "char", ch: body });
        continue;
      }
      const b = BODY.exec(body);
      const key = b ? canonicalKey(b[1] as string) : null;
      if (!b || !key) throw malformed(`Policy has an invalid policy variable: ${m[0]}`);
      parts.push({ kind: "var", key, fallback: b[2] });
    }
    if (last < source.length) parts.push({ kind: "text", text: source.slice(last) });
    return new Template(parts, source);
  }

  /** The value with variables substituted (wildcards literal), or undefined if one is missing. */
  resolveString(lookup: Lookup): string | undefined {
    let out = "";
    for (const p of this.parts) {
      if (p.kind === "text") out += p.text;
      else if (p.kind === "char") out += p.ch;
      else {
        const v = variableValue(p, lookup);
        if (v === undefined) return undefined;
        out += v;
      }
    }
    return out;
  }

  /** Glob tokens with variables substituted as literals, or undefined if one is missing. */
  resolveTokens(lookup: Lookup): GlobToken[] | undefined {
    const out: GlobToken[] = [];
    for (const p of this.parts) {
      if (p.kind === "text") out.push(...tokenize(p.text));
      else if (p.kind === "char") out.push(p.ch);
      else {
        const v = variableValue(p, lookup);
        if (v === undefined) return undefined;
        out.push(v);
      }
    }
    return out;
  }

  /** Tokens with every variable widened to `*`: what the pattern could match for some request. */
  widenedTokens(): GlobToken[] {
    return this.parts.flatMap((p): GlobToken[] =>
      p.kind === "text" ? tokenize(p.text) : p.kind === "char" ? [p.ch] : [STAR],
    );
  }

  /** The variable values this template depends on, as a cache key. */
  variableKey(lookup: Lookup): string | undefined {
    let key = "";
    for (const p of this.parts) {
      if (p.kind !== "var") continue;
      const v = variableValue(p, lookup);
      if (v === undefined) return undefined;
      key += `${v}\u0000`;
    }
    return key;
  }
}

/** A variable needs exactly one value; a multi-valued key cannot be substituted. */
function variableValue(p: Extract<Part, { kind: "var" }>, lookup: Lookup): string | undefined {
  const v = lookup(p.key);
  if (typeof v === "string") return v;
  if (v && v.length === 1) return v[0];
  return p.fallback;
}

/** Tests a subject against a wildcard pattern that may contain variables. */
export interface PatternMatcher {
  readonly source: string;
  readonly hasVariables: boolean;
  test(subject: string, lookup: Lookup): boolean;
}

/** Bounds the per-pattern cache of substituted globs (one entry per distinct user, say). */
const MAX_RESOLVED = 64;

export function patternMatcher(
  template: Template,
  build: (tokens: GlobToken[]) => { test(s: string): boolean },
): PatternMatcher {
  if (!template.hasVariables) {
    const fixed = build(template.widenedTokens());
    return { source: template.source, hasVariables: false, test: (s) => fixed.test(s) };
  }
  const resolved = new Map<string, { test(s: string): boolean }>();
  return {
    source: template.source,
    hasVariables: true,
    test(subject, lookup) {
      const key = template.variableKey(lookup);
      if (key === undefined) return false;
      let m = resolved.get(key);
      if (!m) {
        if (resolved.size >= MAX_RESOLVED) resolved.clear();
        m = build(template.resolveTokens(lookup) as GlobToken[]);
        resolved.set(key, m);
      }
      return m.test(subject);
    },
  };
}

/** A plain wildcard matcher (Resource, StringLike). */
export function globMatcher(template: Template, ignoreCase = false): PatternMatcher {
  return patternMatcher(template, (tokens) => new Glob(tokens, ignoreCase));
}
