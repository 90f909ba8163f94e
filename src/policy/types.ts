/** Shapes shared by the parser, the evaluator and callers. */

/** An authenticated caller: a user of a tenant (the tenant id is the "account"). */
export interface TenantPrincipal {
  /** 32 characters; plays the role of the AWS account id. */
  readonly tenantId: string;
  readonly userName: string;
  readonly userId: string;
  readonly isTenantAdmin: boolean;
}

export type PolicyPrincipal = "anonymous" | TenantPrincipal;

export type ConditionValue = string | readonly string[] | undefined;

/** Condition keys (lowercase) → request values; absent or undefined means "not in the request". */
export type ConditionContext = Readonly<Record<string, ConditionValue>>;

export interface PolicyRequest {
  /** e.g. "s3:PutObject" (one of S3_ACTIONS). */
  readonly action: string;
  /** `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`. */
  readonly resource: string;
  readonly principal: PolicyPrincipal;
  readonly context: ConditionContext;
}

export type Decision = "Allow" | "Deny" | "NoMatch";

/** Reads a condition key (lowercase) for the request being evaluated. */
export type Lookup = (key: string) => ConditionValue;
