/**
 * Bindings that count what the worker asks of its control plane: D1 statements (each
 * first/run/all/raw, and every statement of a batch) and R2 calls by operation. They wrap
 * the real local bindings, so the answers are the real ones; pass them per request with
 * `send(..., { env: { DB: counted.db, OBJECTS: counted.r2 } })`.
 */
import { env } from "cloudflare:workers";

export interface Counted {
  db: D1Database;
  r2: R2Bucket;
  /** Statements and R2 calls since the last reset. */
  counts(): { d1: number; r2: Record<string, number> };
  reset(): void;
}

const R2_OPS = ["head", "get", "put", "delete", "list", "createMultipartUpload", "resumeMultipartUpload"] as const;

export function countingBindings(): Counted {
  let d1 = 0;
  let r2: Record<string, number> = {};
  const wrapStatement = (stmt: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(stmt, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === "bind") return (...args: unknown[]) => wrapStatement((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args));
        if (prop === "first" || prop === "run" || prop === "all" || prop === "raw") {
          return (...args: unknown[]) => {
            d1++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrapStatement(target.prepare(sql));
      if (prop === "batch") return (stmts: D1PreparedStatement[]) => ((d1 += stmts.length), target.batch(stmts));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const bucket = new Proxy(env.OBJECTS, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== "function") return value;
      const name = String(prop);
      return (...args: unknown[]) => {
        if ((R2_OPS as readonly string[]).includes(name)) r2[name] = (r2[name] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    db,
    r2: bucket,
    counts: () => ({ d1, r2: { ...r2 } }),
    reset() {
      d1 = 0;
      r2 = {};
    },
  };
}
