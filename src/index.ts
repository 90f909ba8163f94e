import { Hono } from "hono";
import type { Env } from "./env";

const app = new Hono<{ Bindings: Env }>();
app.all("*", (c) => c.text("not yet", 501));

export default app;
