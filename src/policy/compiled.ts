/** The compiled form a policy is evaluated in: everything parsed, normalised, precompiled. */
import type { S3Action } from "./actions";
import type { CompiledCondition } from "./conditions";
import type { Glob } from "./glob";
import type { CompiledPrincipal } from "./principal";
import type { PatternMatcher } from "./variables";

export interface CompiledStatement {
  readonly sid: string | undefined;
  readonly effect: "Allow" | "Deny";
  readonly principal: CompiledPrincipal;
  /** NotPrincipal: the statement applies to everyone the principal does NOT match. */
  readonly notPrincipal: boolean;
  /**
   * The implemented actions the statement covers, resolved at parse time so evaluation
   * is one Set lookup (already complemented for NotAction).
   */
  readonly actions: ReadonlySet<S3Action>;
  /** The Action/NotAction patterns as written (case-insensitive), for any other action name. */
  readonly actionPatterns: readonly Glob[];
  readonly notAction: boolean;
  readonly resources: readonly PatternMatcher[];
  readonly notResource: boolean;
  /** ANDed. */
  readonly conditions: readonly CompiledCondition[];
}

export interface CompiledPolicy {
  readonly version: "2012-10-17" | "2008-10-17";
  readonly id: string | undefined;
  readonly statements: readonly CompiledStatement[];
}
