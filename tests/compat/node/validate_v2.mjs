// Validates MCP 2026-07-28 tasks-extension payloads with the official validators of
// @modelcontextprotocol/ext-tasks (core/v2, Zod schemas), for tests/schema_v2.py.
// Protocol: one JSON request per line on stdin, {"def": "<Name>", "value": <json>};
// one JSON reply per line on stdout, {"ok": true} or {"ok": false, "error": "<issues>"}.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as readline from "node:readline";

// The package exports its is*V2 predicates; its Zod schemas (which say why a value fails)
// live in dist/core/v2/schemas.js, beside the exported core/v2 entry point.
const entry = fileURLToPath(import.meta.resolve("@modelcontextprotocol/ext-tasks/core/v2"));
const schemas = await import(pathToFileURL(join(dirname(entry), "schemas.js")).href);
const pkg = join(dirname(entry), "..", "..", "..", "package.json");
const version = JSON.parse(readFileSync(pkg, "utf8")).version;

const rl = readline.createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ready: true, version }) + "\n");
for await (const line of rl) {
  let reply;
  try {
    const { def, value } = JSON.parse(line);
    const schema = schemas[`${def}V2Schema`];
    if (!schema) {
      reply = { ok: false, error: `no schema ${def}V2Schema in ext-tasks ${version}` };
    } else {
      const r = schema.safeParse(value);
      reply = r.success
        ? { ok: true }
        : {
            ok: false,
            error: r.error.issues
              .map((i) => `at ${i.path.join(".") || "$"}: ${i.message}`)
              .join("; "),
          };
    }
  } catch (e) {
    reply = { ok: false, error: `bad request: ${e}` };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
