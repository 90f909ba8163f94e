/**
 * Bucket policies: AWS IAM policy language, parsed and evaluated by the worker because
 * R2 has none. Pure: no HTTP, no storage. See each module for the semantics it owns.
 */
export { ALL_ACTIONS, S3_ACTIONS, actionLevel, bucketArn, isS3Action, objectArn } from "./actions";
export type { ActionLevel, S3Action } from "./actions";
export { getCompiledPolicy, invalidatePolicy, MAX_CACHED_POLICIES } from "./cache";
export type { CompiledPolicy, CompiledStatement } from "./compiled";
export { buildConditionContext } from "./context";
export type { RequestFacts } from "./context";
export { authorize, evaluate } from "./evaluate";
export { userArn } from "./principal";
export type { AuthorizeInput } from "./evaluate";
export { MAX_POLICY_BYTES, parsePolicy } from "./parse";
export { isPublic } from "./public";
export type { ConditionContext, ConditionValue, Decision, PolicyPrincipal, PolicyRequest, TenantPrincipal } from "./types";
