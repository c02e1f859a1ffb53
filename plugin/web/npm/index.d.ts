// Types of the typed wrapper (typed.mjs) over the raw bindings, whose own types wasm-bindgen writes
// to dist/triage_web.d.ts (`triage-web/raw`). The shapes are those `triage route` and
// `triage eval --json` print; see the repository's README.

export type ApiFormatName = "openai_chat" | "openai_responses" | "anthropic_messages";

/** A plugin config as the filter gets it: JSON text or the parsed object; empty or null: defaults. */
export type ConfigInput = string | object | null | undefined;

/** A request body: JSON text (sent byte for byte) or an object (sent as JSON.stringify gives it). */
export type BodyInput = string | object;

export interface MarginSide {
  tier: string;
  /** How far the score is from the boundary with that tier. */
  by: number;
}

export interface Contribution {
  feature: string;
  /** Contribution to the calibrated logit, as x-triage-reason spells it (two decimals). */
  contribution: number;
}

export interface Decision {
  format: ApiFormatName;
  tier: string;
  /** The calibrated score; null when a rule, an explicit model or a fail-open decided. */
  score: number | null;
  /** The model the upstream receives. */
  model: string | null;
  /** As x-triage-reason spells them: "simple_task-1.49", or one cause ("rule: proofs"). */
  reasons: string[];
  margin: { down: MarginSide | null; up: MarginSide | null } | null;
  /** The scored reasons, parsed; empty when the decision was not scored. */
  contributions: Contribution[];
  /** The scorer's feature values by name; null when the body does not parse. */
  features: Record<string, number> | null;
}

export interface TierShare {
  tier: string;
  share: number;
}

export interface Causes {
  scored: number;
  rule: number;
  explicit_model: number;
  fail_open: number;
}

export interface Policy {
  name: string;
  quality: number;
  cost_usd: number;
  /** Relative to always-top-tier; null when that reference is 0. */
  quality_vs_top: number | null;
  cost_vs_top: number | null;
}

export interface SweepPoint {
  share_strong: number;
  quality: number;
  cost: number;
}

export interface Curves {
  router: SweepPoint[];
  prompt_length: SweepPoint[];
  random: [SweepPoint, SweepPoint];
}

/** `triage eval --json`'s report of one dataset (plugin/learn/src/eval.rs). */
export interface Report {
  dataset: string;
  rows: number;
  shares: TierShare[];
  decisions: Causes;
  top_tier: string;
  /** "router", "always-<tier>", the random and length baselines, "oracle". */
  policies: Policy[];
  random_share_strong: number;
  sweep: Record<string, unknown>;
  other_models_reference: Record<string, unknown> | null;
  within_budget: Record<string, unknown>;
}

export interface Evaluation {
  rows: number;
  shares: TierShare[];
  decisions: Causes;
  rows_without_outcomes: number;
  /** Null unless every row has outcomes. */
  report: Report | null;
  curves: Curves | null;
}

export interface Attempt {
  tier: string | null;
  cluster: string;
  model: unknown;
}

export interface Exchange {
  /** The request the route table sent on; null when the client was answered before. */
  upstream: Attempt | null;
  /** Escalated calls, in order. */
  calls: Attempt[];
  response: { status: number; headers: Record<string, string> };
  /** The decision record the access log would get. */
  record: Record<string, unknown> | null;
}

/** A tier's answer: `"reset"` or `{status?, content_type?, headers?, body?}`. */
export type TierReply =
  | "reset"
  | { status?: number; content_type?: string; headers?: Record<string, string>; body?: unknown };

export interface Triage {
  /** Throws on a refused config (the filter's message) or an unknown format name. */
  decide(config: ConfigInput, body: BodyInput, format?: ApiFormatName | null): Decision;
  /** Null when accepted, else `triage config refused: <field>: <why>`. */
  validateConfig(config: ConfigInput): string | null;
  /** The format a request path names, as the filter reads paths; null off the three endpoints. */
  formatOfPath(path: string): ApiFormatName | null;
  /** JSON lines of routing-dataset rows. */
  evaluate(config: ConfigInput, jsonl: string): Evaluation;
  /** `answers`: every tier of the config by name. */
  exchange(
    config: ConfigInput,
    body: BodyInput,
    format: ApiFormatName | null | undefined,
    answers: string | Record<string, TierReply>,
  ): Exchange;
}

/**
 * Node: resolves at once (the module is instantiated at import). Browser: fetches the .wasm from
 * beside the package's files, or from `wasm` (a URL, bytes, a Response or a compiled module).
 */
export function load(wasm?: unknown): Promise<Triage>;
