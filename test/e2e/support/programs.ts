/**
 * The external programs the end-to-end tests drive, found in one place.
 *
 * global-setup.ts runs `detectPrograms()` once, in vitest's main process, and hands the
 * result to every test file (`inject("programs")`). A test group that needs a program
 * declares it with `missing(...)`:
 *
 *   describe.skipIf(missing("rclone.test.ts › rclone", "rclone"))("rclone", () => { ... });
 *
 * When a program is absent the group is SKIPPED with one line naming the program and the
 * command that installs it, and the run ends with a summary of everything skipped. Under
 * CI=true an absent program is an error instead, so CI never skips silently.
 * TEST_HIDE_PROGRAMS=rclone,s3cmd pretends programs are absent (to try the skip path).
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { inject } from "vitest";

export type ProgramName = "rclone" | "s3cmd" | "chromium" | "aws-cli-v1" | "aws-cli-v2" | "python3" | "boto3" | "moto";

export interface ProgramStatus {
  /** What to run (absolute path for chromium, the command name otherwise); "" when absent. */
  path: string;
  /** What was found, e.g. "rclone v1.60.1", or why it does not count. */
  detail: string;
  /** The command that installs it on Debian / with the machine's Python. */
  install: string;
}

export type Programs = Record<ProgramName, ProgramStatus>;

declare module "vitest" {
  export interface ProvidedContext {
    programs: Programs;
    /** File the test workers append skipped groups to; global-setup prints the summary. */
    skipLog: string;
  }
}

/** First line of a command's output, or undefined when it cannot run or fails. */
function probe(command: string, args: string[]): string | undefined {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 20_000 });
  if (r.error || r.status !== 0) return undefined;
  return `${r.stdout}\n${r.stderr}`.trim().split("\n")[0] ?? "";
}

function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, probe("sh", ["-c", "command -v chromium"]), "/usr/bin/chromium"];
  return candidates.find((p): p is string => !!p && existsSync(p));
}

/** Looks for every program once (about a second). Runs in vitest's main process. */
export function detectPrograms(hidden = process.env.TEST_HIDE_PROGRAMS ?? ""): Programs {
  const hide = new Set(hidden.split(",").map((s) => s.trim()).filter(Boolean));
  const check = (name: ProgramName, install: string, find: () => { path: string; detail: string } | string | undefined): ProgramStatus => {
    if (hide.has(name)) return { path: "", detail: "hidden by TEST_HIDE_PROGRAMS", install };
    const found = find();
    if (found === undefined) return { path: "", detail: "not found", install };
    return typeof found === "string" ? { path: "", detail: found, install } : { ...found, install };
  };
  const version = (command: string, args: string[]) => {
    const line = probe(command, args);
    return line === undefined ? undefined : { path: command, detail: line };
  };
  return {
    rclone: check("rclone", "apt-get install rclone", () => version("rclone", ["version"])),
    s3cmd: check("s3cmd", "apt-get install s3cmd", () => version("s3cmd", ["--version"])),
    chromium: check("chromium", "apt-get install chromium (or set CHROMIUM_PATH)", () => {
      const path = chromiumPath();
      return path ? { path, detail: path } : undefined;
    }),
    // The suites were written against aws-cli v1 (botocore's --debug log, its defaults);
    // Debian's `awscli` package is v2 and does not count.
    "aws-cli-v1": check("aws-cli-v1", "python3 -m pip install awscli (v1; Debian's awscli package is v2)", () => {
      const line = probe("aws", ["--version"]);
      if (line === undefined) return undefined;
      return /^aws-cli\/1\./.test(line) ? { path: "aws", detail: line } : `aws is ${line.split(" ")[0]}, these tests drive aws-cli v1`;
    }),
    // Debian's awscli package (v2), wherever it is; AWS_CLI_V2 names another binary.
    "aws-cli-v2": check("aws-cli-v2", "apt-get install awscli (Debian's package is v2)", () => {
      for (const path of [process.env.AWS_CLI_V2, "/usr/bin/aws", "/usr/local/bin/aws"]) {
        if (!path || !existsSync(path)) continue;
        const line = probe(path, ["--version"]);
        if (line !== undefined && /^aws-cli\/2\./.test(line)) return { path, detail: line };
      }
      return undefined;
    }),
    python3: check("python3", "apt-get install python3", () => version("python3", ["--version"])),
    boto3: check("boto3", "python3 -m pip install boto3 pytest (Debian: apt-get install python3-boto3 python3-pytest)", () => {
      const line = probe("python3", ["-c", "import boto3, pytest; print('boto3', boto3.__version__, 'pytest', pytest.__version__)"]);
      return line === undefined ? undefined : { path: "python3", detail: line };
    }),
    // An AWS KMS-protocol server for the external-key suite (unless EXTERNAL_KMS_ENDPOINT names one).
    moto: check("moto", "python3 -m pip install 'moto[server]'", () => {
      const path = probe("sh", ["-c", "command -v moto_server"]);
      const line = probe("python3", ["-c", "import moto; print('moto', moto.__version__)"]);
      return path && line ? { path, detail: line } : undefined;
    }),
  };
}

function programs(): Programs {
  return inject("programs");
}

/** The command or path to run for a program the caller has checked with `missing`. */
export function programPath(name: ProgramName): string {
  return programs()[name].path;
}

/**
 * True when one of `names` is absent: prints one line per absent program for `what` (the
 * test group) and records it for the end-of-run summary. Under CI=true it throws, which
 * fails the test file. Call it while the file is collected (in `describe.skipIf(...)`).
 */
export function missing(what: string, ...names: ProgramName[]): boolean {
  const all = programs();
  const absent = names.filter((n) => !all[n].path);
  if (absent.length === 0) return false;
  const lines = absent.map((n) => `${n} (${all[n].detail}) — install: ${all[n].install}`);
  if (process.env.CI === "true" || process.env.CI === "1") {
    throw new Error(`CI=true: ${what} needs ${lines.join("; ")}. CI installs these in .ci/run; it never skips.`);
  }
  for (const line of lines) console.warn(`[e2e] SKIPPED ${what}: missing ${line}`);
  appendFileSync(inject("skipLog"), absent.map((n) => JSON.stringify({ what, program: n, install: all[n].install }) + "\n").join(""));
  return true;
}

/** The end-of-run line: every program that made a group skip, with its install command. */
export function skipSummary(log: string): string | undefined {
  const entries = log
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { what: string; program: ProgramName; install: string });
  if (entries.length === 0) return undefined;
  const byProgram = new Map<string, { install: string; groups: Set<string> }>();
  for (const e of entries) {
    const p = byProgram.get(e.program) ?? { install: e.install, groups: new Set() };
    p.groups.add(e.what);
    byProgram.set(e.program, p);
  }
  const programsLine = [...byProgram].map(([name, p]) => `${name} — ${p.install}`).join("; ");
  const groups = [...new Set(entries.map((e) => e.what))];
  return `e2e: skipped (missing programs): ${programsLine}\n     ${groups.length} test group(s) skipped: ${groups.join(", ")}`;
}
