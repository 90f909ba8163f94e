import type { Env } from "../env";
import { timingSafeEqualStrings } from "../util/bytes";

/** The admin API is enabled only when ADMIN_TOKEN is set; callers send it as a Bearer token. */
export function adminAuthorized(request: Request, env: Env): boolean {
  const token = env.ADMIN_TOKEN;
  if (!token) return false;
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header);
  return match !== null && timingSafeEqualStrings(match[1]!.trim(), token);
}
