/**
 * Model-based test of the S3 API (fast-check's command model): random sequences of
 * PUT / POST form / Copy / multipart / GET / HEAD / range / Delete / DeleteObjects / List /
 * bucket encryption and policy changes, each by a random principal (adminA, memberA,
 * adminB, memberB, anonymous), in a fresh world of three buckets (two of tenant A, one of
 * tenant B) with random default encryption and policy templates. model.ts predicts every
 * answer; a disagreement fails and is shrunk to a minimal sequence.
 *
 * `npm test` runs a smoke sample; `npm run model` a large one (MODEL_RUNS, MODEL_COMMANDS;
 * MODEL_SEED replays a failure). It prints the commands executed and the response mix.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, expect, it } from "vitest";
import { uniqueBucket } from "../support/s3-harness";
import { Stats, commandArbitraries, initialWorld, type Real } from "./commands";
import type { BucketModel, Model, Tenant } from "./model";
import { encryptionDocument, policyDocument, request, seedWorld } from "./world";

const vars = env as unknown as { MODEL_RUNS?: string; MODEL_SEED?: string; MODEL_COMMANDS?: string; MODEL_EXCLUDE?: string; MODEL_MIN_COMMANDS?: string };
const numberVar = (raw: string | undefined) => (raw && Number.isFinite(Number(raw)) && Number(raw) > 0 ? Number(raw) : null);

/** Smoke sample inside `npm test`: 30 runs of up to 15 commands. */
const RUNS = numberVar(vars.MODEL_RUNS) ?? 30;
const MAX_COMMANDS = numberVar(vars.MODEL_COMMANDS) ?? (vars.MODEL_RUNS ? 40 : 15);
/** `npm run model` insists on a large run (20,000 commands): fewer executed is a failure. */
const MIN_COMMANDS = numberVar(vars.MODEL_MIN_COMMANDS) ?? 0;
const SEED = vars.MODEL_SEED ? Number(vars.MODEL_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;

/** Command kinds to leave out (commands.ts COMMANDS names), only to look past a known disagreement. */
const EXCLUDE = (vars.MODEL_EXCLUDE ?? "").split(",").filter(Boolean);

const OWNERS: Tenant[] = ["A", "A", "B"];

beforeAll(async () => {
  await seedWorld();
});

/** A fresh world: three new buckets, configured by their owner's admin. */
async function freshWorld(init: Array<{ encryption: BucketModel["defaultEncryption"]; policy: BucketModel["policy"]; sseC: boolean }>): Promise<Model> {
  const buckets: BucketModel[] = [];
  for (const [i, owner] of OWNERS.entries()) {
    const admin = owner === "A" ? "adminA" : "adminB";
    const name = uniqueBucket(`model${i}`);
    const created = await request(admin, { method: "PUT", bucket: name });
    if (created.status !== 200) throw new Error(`create ${name}: ${created.status} ${await created.text()}`);
    // The templates are public policies by design: lift Block Public Access (on for new buckets) first, as their owner would.
    expect((await request(admin, { method: "DELETE", bucket: name, query: { publicAccessBlock: "" } })).status).toBe(204);
    const { policy, sseC } = init[i]!;
    // New buckets block SSE-C; its owner unblocks it in some (with the default made explicit).
    const encryption = sseC ? (init[i]!.encryption ?? "AES256") : init[i]!.encryption;
    if (encryption) expect((await request(admin, { method: "PUT", bucket: name, query: { encryption: "" }, body: encryptionDocument(encryption, sseC ? "allow" : undefined) })).status).toBe(200);
    const doc = policyDocument(policy, name);
    if (doc) expect((await request(admin, { method: "PUT", bucket: name, query: { policy: "" }, body: doc })).status).toBe(204);
    buckets.push({ name, owner, defaultEncryption: encryption, sseCBlocked: !sseC, policy, objects: new Map() });
  }
  return { buckets, uploads: [] };
}

it(
  "the worker answers every request as the reference model predicts",
  async () => {
    const stats = new Stats();
    const started = Date.now();
    let runs = 0;
    let failed = true;
    try {
      await fc.assert(
        fc.asyncProperty(initialWorld, fc.commands(commandArbitraries(EXCLUDE), { maxCommands: MAX_COMMANDS, size: "max" }), async (init, cmds) => {
          runs++;
          const real: Real = { stats };
          await fc.asyncModelRun(async () => ({ model: await freshWorld(init), real }), cmds);
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: false },
      );
      failed = false;
      expect(stats.commands, "commands executed").toBeGreaterThanOrEqual(MIN_COMMANDS);
    } finally {
      console.log(
        `[model] ${runs} runs (incl. shrinking), ${stats.commands} commands in ${Date.now() - started} ms, seed ${SEED}${EXCLUDE.length ? `, without ${EXCLUDE.join(", ")}` : ""}${failed ? ` FAILED — replay with MODEL_SEED=${SEED}` : ""}\n` +
          `[model] response mix per command:\n${stats.report()}`,
      );
    }
  },
  3_600_000,
);
