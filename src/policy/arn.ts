/**
 * ArnEquals/ArnLike matching: AWS compares the six colon-separated ARN components one
 * by one, so a `*` in the account component cannot swallow the region or resource.
 * The sixth component (resource) keeps any further colons.
 */
import { Glob, type GlobToken } from "./glob";

const COMPONENTS = 6;

export class ArnGlob {
  private readonly parts: readonly Glob[] | null;
  /** Values that are not six-component ARNs (e.g. "*") match the whole string. */
  private readonly whole: Glob | null;

  constructor(tokens: readonly GlobToken[]) {
    const comps: GlobToken[][] = [[]];
    const push = (t: GlobToken) => (comps[comps.length - 1] as GlobToken[]).push(t);
    for (const t of tokens) {
      if (typeof t !== "string" || comps.length === COMPONENTS) {
        push(t);
        continue;
      }
      let rest = t;
      for (let i = rest.indexOf(":"); i >= 0 && comps.length < COMPONENTS; i = rest.indexOf(":")) {
        if (i > 0) push(rest.slice(0, i));
        comps.push([]);
        rest = rest.slice(i + 1);
      }
      if (rest) push(rest);
    }
    this.parts = comps.length === COMPONENTS ? comps.map((c) => new Glob(c)) : null;
    this.whole = this.parts ? null : new Glob(tokens);
  }

  test(arn: string): boolean {
    if (this.whole) return this.whole.test(arn);
    const parts = this.parts as readonly Glob[];
    let start = 0;
    for (let i = 0; i < COMPONENTS - 1; i++) {
      const colon = arn.indexOf(":", start);
      if (colon < 0 || !(parts[i] as Glob).test(arn.slice(start, colon))) return false;
      start = colon + 1;
    }
    return (parts[COMPONENTS - 1] as Glob).test(arn.slice(start));
  }
}
