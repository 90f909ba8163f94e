import { env } from "cloudflare:workers";
import { expect, it } from "vitest";

it("has R2 and D1 bindings with migrations applied", async () => {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM tenants").first<{ n: number }>();
  expect(row?.n).toBe(0);
  await env.OBJECTS.put("smoke", "x");
  expect(await (await env.OBJECTS.get("smoke"))?.text()).toBe("x");
});
