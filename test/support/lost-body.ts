/** A request body that breaks off: the check both PUT and POST Object tests make of its answer. */
import { expect, vi } from "vitest";
import { expectError } from "./s3-harness";

/**
 * Sends the request (`send`) with the worker's console captured and checks S3's answer to a
 * body that broke off: 400 IncompleteBody, logged as request-body-lost when the worker saw
 * the stream fail itself (`inProcess`), never as an internal error.
 */
export async function expectIncompleteBody(send: () => Response | Promise<Response>, inProcess: boolean): Promise<void> {
  const logged: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void logged.push(a.join(" ")));
  const errors = vi.spyOn(console, "error");
  try {
    await expectError(await send(), 400, "IncompleteBody");
    if (inProcess) expect(logged.some((l) => l.includes('"event":"request-body-lost"'))).toBe(true);
    expect(errors.mock.calls.map((c) => c.join(" ")).filter((l) => l.includes("internal-error"))).toEqual([]);
  } finally {
    log.mockRestore();
    errors.mockRestore();
  }
}
