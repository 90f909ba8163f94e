/**
 * Evaluation within one bucket policy, and the combined decision with ownership.
 * AWS's order: an explicit Deny anywhere wins; else an explicit Allow; else no match
 * (the implicit deny, which the bucket owner's own users do not need to overcome).
 */
import { isS3Action } from "./actions";
import type { CompiledPolicy, CompiledStatement } from "./compiled";
import { conditionHolds } from "./conditions";
import { keyDefinedFor } from "./keys";
import { principalKey, principalMatches } from "./principal";
import type { Decision, Lookup, PolicyRequest } from "./types";

export function evaluate(policy: CompiledPolicy | null, request: PolicyRequest): Decision {
  if (!policy) return "NoMatch";
  const lookup = lookupFor(request);
  let allowed = false;
  for (const st of policy.statements) {
    // Once allowed, only a Deny can still change the answer.
    if (allowed && st.effect === "Allow") continue;
    if (!statementMatches(st, request, lookup)) continue;
    if (st.effect === "Deny") return "Deny";
    allowed = true;
  }
  return allowed ? "Allow" : "NoMatch";
}

export interface AuthorizeInput {
  readonly policy: CompiledPolicy | null;
  readonly request: PolicyRequest;
  /** The caller belongs to the tenant that owns the bucket. */
  readonly isOwner: boolean;
  /**
   * The object is SSE-KMS encrypted: OBS never lets a bucket policy grant another tenant
   * (or anonymous) access to such an object, so only the owner can pass.
   */
  readonly ownerOnly?: boolean;
}

/**
 * The owner's users are allowed unless a Deny matches; everyone else needs an explicit
 * Allow and no Deny.
 */
export function authorize({ policy, request, isOwner, ownerOnly = false }: AuthorizeInput): boolean {
  const decision = evaluate(policy, request);
  if (decision === "Deny") return false;
  if (isOwner) return true;
  return !ownerOnly && decision === "Allow";
}

function statementMatches(st: CompiledStatement, req: PolicyRequest, lookup: Lookup): boolean {
  // Cheapest tests first: action (a Set lookup), resource, principal, then conditions.
  if (!actionMatches(st, req.action)) return false;
  let resource = false;
  for (const r of st.resources) {
    if (r.test(req.resource, lookup)) {
      resource = true;
      break;
    }
  }
  if (resource === st.notResource) return false;
  if (principalMatches(st.principal, req.principal) === st.notPrincipal) return false;
  for (const c of st.conditions) if (!conditionHolds(c, lookup)) return false;
  return true;
}

function actionMatches(st: CompiledStatement, action: string): boolean {
  if (isS3Action(action)) return st.actions.has(action);
  // An action name outside the implemented list: fall back to the patterns as written.
  const hit = st.actionPatterns.some((g) => g.test(action));
  return hit !== st.notAction;
}

/**
 * Condition keys from the request's context; principal keys fall back to the request's
 * principal so a caller that forgot them cannot make aws:username conditions vacuous.
 * A key AWS does not define for the request's action is absent (keys.ts), as on AWS.
 */
function lookupFor(req: PolicyRequest): Lookup {
  const ctx = req.context;
  return (key) => {
    if (!keyDefinedFor(key, req.action)) return undefined;
    const v = ctx[key];
    return v !== undefined ? v : principalKey(key, req.principal);
  };
}
