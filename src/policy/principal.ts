/**
 * Principal / NotPrincipal. Tenants play the role of AWS accounts: a tenant id (32
 * characters here, 12 digits on AWS) or `arn:aws:iam::<tenant>:root` names every
 * principal of that tenant; `arn:aws:iam::<tenant>:user/<name>` names one user.
 * Only `"*"` / `{"AWS": "*"}` match anonymous requests, as on AWS.
 */
import { Glob, hasWildcard } from "./glob";
import { malformed } from "./malformed";
import type { ConditionValue, PolicyPrincipal } from "./types";

export interface CompiledPrincipal {
  /** "*" somewhere: everyone, anonymous included. */
  readonly everyone: boolean;
  /** Patterns over the tenant id (from account ids, `:root` ARNs and CanonicalUser). */
  readonly accounts: readonly Glob[];
  /** Patterns over the caller's user ARN. */
  readonly arns: readonly Glob[];
  /** Some entry is a wildcard pattern (matters to isPublic). */
  readonly wildcard: boolean;
}

const ACCOUNT = /^([0-9]{12}|[A-Za-z0-9]{32})$/;
const ACCOUNT_PATTERN = /^[A-Za-z0-9*?]{1,64}$/;
const IAM_ARN = /^arn:aws:(iam|sts)::([^:]+):(.+)$/;
const ARN_RESOURCE = /^(root|user\/.+|role\/.+|assumed-role\/.+|federated-user\/.+|[^/]*[*?].*)$/;

export function compilePrincipal(raw: unknown): CompiledPrincipal {
  const invalid = (what: unknown): never => {
    throw malformed(`Invalid principal in policy: ${JSON.stringify(what)}`);
  };
  const accounts: Glob[] = [];
  const arns: Glob[] = [];
  let everyone = false;
  let wildcard = false;
  if (raw === "*") return { everyone: true, accounts, arns, wildcard: true };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return invalid(raw);
  const entries = Object.entries(raw);
  if (entries.length === 0) invalid(raw);
  for (const [type, value] of entries) {
    const list = Array.isArray(value) ? value : [value];
    if (list.length === 0 || list.some((v) => typeof v !== "string" || v === "")) invalid({ [type]: value });
    for (const v of list as string[]) {
      if (type === "AWS") {
        if (v === "*") {
          everyone = wildcard = true;
          continue;
        }
        const arn = IAM_ARN.exec(v);
        if (arn) {
          const [, service, account, resource] = arn as unknown as [string, string, string, string];
          if (!ACCOUNT_PATTERN.test(account) || !ARN_RESOURCE.test(resource)) invalid(v);
          if (service === "iam" && resource === "root") accounts.push(Glob.of(account));
          else arns.push(Glob.of(v));
        } else if (ACCOUNT.test(v) || (hasWildcard(v) && ACCOUNT_PATTERN.test(v))) {
          accounts.push(Glob.of(v));
        } else {
          invalid(v);
        }
        wildcard ||= hasWildcard(v);
      } else if (type === "CanonicalUser") {
        // A tenant's canonical id is its tenant id.
        if (v === "*") everyone = true;
        else if (ACCOUNT_PATTERN.test(v) || /^[0-9a-f]{64}$/.test(v)) accounts.push(Glob.of(v));
        else invalid(v);
        wildcard ||= hasWildcard(v);
      } else if (type === "Service" || type === "Federated") {
        // Valid on AWS; no request to this endpoint is ever made by one, so they match nothing.
      } else {
        invalid({ [type]: value });
      }
    }
  }
  return { everyone, accounts, arns, wildcard };
}

export function userArn(tenantId: string, userName: string): string {
  return `arn:aws:iam::${tenantId}:user/${userName}`;
}

export function principalMatches(p: CompiledPrincipal, who: PolicyPrincipal): boolean {
  if (p.everyone) return true;
  if (who === "anonymous") return false;
  for (const a of p.accounts) if (a.test(who.tenantId)) return true;
  if (p.arns.length === 0) return false;
  const arn = userArn(who.tenantId, who.userName);
  for (const a of p.arns) if (a.test(arn)) return true;
  return false;
}

/** The aws:Principal* / aws:username / aws:userid keys for a caller. */
export function principalKey(key: string, who: PolicyPrincipal): ConditionValue {
  if (key === "aws:principaltype") return who === "anonymous" ? "Anonymous" : "User";
  if (who === "anonymous") return undefined;
  switch (key) {
    case "aws:principalaccount":
      return who.tenantId;
    case "aws:principalarn":
      return userArn(who.tenantId, who.userName);
    case "aws:username":
      return who.userName;
    case "aws:userid":
      return who.userId;
    default:
      return undefined;
  }
}
