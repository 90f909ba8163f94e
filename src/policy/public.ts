/**
 * GetBucketPolicyStatus: is the policy "public"? AWS's definition (S3 Block Public
 * Access, "The meaning of public"): a policy is public unless every Allow statement
 * grants only to fixed (no wildcard, no policy variable) values of a principal, or is
 * restricted by a condition on one of a few keys with fixed values — aws:SourceIp with a
 * CIDR that is not too broad, aws:SourceVpc(e), aws:SourceArn/Account/Owner,
 * aws:PrincipalAccount/Arn/OrgID, aws:userid, s3:DataAccessPoint*.
 */
import type { CompiledPolicy, CompiledStatement } from "./compiled";
import type { CompiledCondition } from "./conditions";
import { parseCidr } from "./ip";

const RESTRICTING_KEYS = new Set([
  "aws:sourceip",
  "aws:sourcevpc",
  "aws:sourcevpce",
  "aws:sourcearn",
  "aws:sourceaccount",
  "aws:sourceowner",
  "aws:principalaccount",
  "aws:principalarn",
  "aws:principalorgid",
  "aws:userid",
  "s3:dataaccesspointarn",
  "s3:dataaccesspointaccount",
]);

/** Operators that only pass for a request carrying one of the listed values. */
const RESTRICTING_OPERATORS = new Set(["StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "IpAddress"]);

/**
 * AWS treats a very wide aws:SourceIp range as public (its example is 0.0.0.0/1); we
 * draw the line at IPv4 /8 and IPv6 /32, the widest ranges handed to one organisation.
 */
const MIN_PREFIX = { 4: 8, 16: 32 } as Record<number, number>;

/** Per compiled policy: RestrictPublicBuckets asks on every request of a restricted bucket. */
const verdicts = new WeakMap<CompiledPolicy, boolean>();

export function isPublic(policy: CompiledPolicy | null): boolean {
  if (policy === null) return false;
  let verdict = verdicts.get(policy);
  if (verdict === undefined) {
    verdict = policy.statements.some(grantsPublicly);
    verdicts.set(policy, verdict);
  }
  return verdict;
}

function grantsPublicly(st: CompiledStatement): boolean {
  if (st.effect !== "Allow") return false;
  // NotPrincipal in an Allow grants to everyone not listed: public.
  const open = st.notPrincipal || st.principal.everyone || st.principal.wildcard;
  return open && !st.conditions.some(restricts);
}

function restricts(c: CompiledCondition): boolean {
  // IfExists and ForAllValues pass when the key is absent (and RESTRICTING_OPERATORS has
  // no negated operator, which would too), so they restrict nothing for a caller who
  // simply does not send the key.
  if (c.ifExists || c.qualifier === "all") return false;
  if (!RESTRICTING_OPERATORS.has(c.base) || !RESTRICTING_KEYS.has(c.key) || c.variable) return false;
  if (c.kind === "ip") {
    return c.values.every((v) => {
      const cidr = parseCidr(v.trim());
      return cidr !== null && cidr.prefix >= (MIN_PREFIX[cidr.bytes.length] ?? Infinity);
    });
  }
  return true;
}
