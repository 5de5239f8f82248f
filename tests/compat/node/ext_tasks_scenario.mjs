// The official TypeScript requester of MCP tasks (@modelcontextprotocol/ext-tasks, its client
// entry: createTaskSessionFromClient) with @modelcontextprotocol/client 2.x against taskstore's
// demo server (python -m taskstore.mcp.demo), 2026-07-28 framing, for
// tests/client/test_ext_tasks_node.py.
//
//   node tests/compat/node/ext_tasks_scenario.mjs http://127.0.0.1:<port>/mcp
//
// Calls each demo tool through the task session and settles the executions (count_to, ask_name
// with its elicitation answered by the session's input handler, fail_with), cancels a long
// count_to, and prints one JSON line: {"versions": …, "outcomes": {…}, "events": {…}}.
// Exit status 0 when every step ran (the test judges the outcomes), 1 on an exception (printed
// as {"error": …}).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import {
  createTaskSessionFromClient,
  taskViewFromExecutionEvent,
} from "@modelcontextprotocol/ext-tasks/client";
import {
  CancelTaskResultV2Schema,
  CreateTaskResultV2Schema,
  GetTaskResultV2Schema,
  UpdateTaskResultV2Schema,
} from "@modelcontextprotocol/ext-tasks/core/v2";

const PROTOCOL_VERSION = "2026-07-28";
const CLIENT_INFO = { name: "taskstore-ext-tasks-scenario", version: "1.0.0" };
const CLIENT_CAPABILITIES = { elicitation: { form: {} } };
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const STEP_TIMEOUT_MS = Number(process.env.EXT_TASKS_STEP_TIMEOUT_MS ?? 60000);

function packageVersion(name, entry) {
  // the packages' exports do not include package.json: find it above a resolved entry point
  let dir = dirname(fileURLToPath(import.meta.resolve(entry)));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      if (pkg.name === name) return pkg.version;
    } catch {
      // keep climbing
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * The host-owned request coordinator ext-tasks needs for a 2026-07-28 tasks server
 * (`rawDispatch`): the SDK Client's codecs reject `resultType: "task"` answers, so tools/call
 * and tasks/* go through a second Streamable HTTP transport of the same SDK (which sets the
 * MCP-Protocol-Version / Mcp-Method / Mcp-Name headers from the framed request) and come back
 * as the raw JSON-RPC response.
 */
async function rawDispatcher(url) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const pending = new Map();
  let nextId = 0;
  const seen = [];
  transport.onmessage = (message) => {
    const waiter = pending.get(message.id);
    if (waiter === undefined) return; // a notification or a stray response
    pending.delete(message.id);
    waiter.resolve(message);
  };
  transport.onerror = (error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  await transport.start();
  async function dispatch(request, options = {}) {
    const id = `ext-tasks-${++nextId}`;
    const message = { jsonrpc: "2.0", id, ...request };
    const answered = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    const headers = options.context?.headers;
    await transport.send(message, {
      ...(headers === undefined ? {} : { headers }),
      ...(options.signal === undefined ? {} : { requestSignal: options.signal }),
    });
    const response = await answered;
    seen.push({ method: request.method, response });
    if (response.error === undefined) validate(request.method, response.result);
    if (response.error !== undefined) return { kind: "error", error: response.error };
    return { kind: "result", result: response.result };
  }
  // every task payload on the wire, checked with the package's own (Zod) schemas
  const validation = { checked: 0, invalid: [] };
  function validate(method, result) {
    const schema =
      method === "tools/call"
        ? result?.resultType === "task"
          ? CreateTaskResultV2Schema
          : undefined
        : {
            "tasks/get": GetTaskResultV2Schema,
            "tasks/update": UpdateTaskResultV2Schema,
            "tasks/cancel": CancelTaskResultV2Schema,
          }[method];
    if (schema === undefined) return;
    validation.checked += 1;
    const parsed = schema.safeParse(result);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `at ${i.path.join(".") || "$"}: ${i.message}`);
      validation.invalid.push({ method, issues: issues.join("; "), result });
    }
  }
  return { dispatch, seen, validation, close: () => transport.close() };
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeOutcome(outcome) {
  const out = { status: outcome.status };
  if (outcome.status === "completed") {
    const result = outcome.result;
    out.isError = result.isError === true;
    out.text = (result.content ?? [])
      .filter((block) => block.type === "text")
      .map((block) => block.text)
      .join("");
  } else if (outcome.status === "failed") {
    out.code = outcome.error.code ?? null;
    out.message = outcome.error.message;
    if (outcome.error.data !== undefined) out.data = outcome.error.data;
  }
  if (outcome.task !== undefined) out.taskStatus = outcome.task.status;
  return out;
}

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error("usage: node ext_tasks_scenario.mjs <demo URL>");
  const report = {
    versions: {
      "@modelcontextprotocol/ext-tasks": packageVersion(
        "@modelcontextprotocol/ext-tasks",
        "@modelcontextprotocol/ext-tasks/client",
      ),
      "@modelcontextprotocol/client": packageVersion(
        "@modelcontextprotocol/client",
        "@modelcontextprotocol/client",
      ),
      node: process.versions.node,
    },
    outcomes: {},
    events: {},
    inputRequests: [],
  };

  const client = new Client(CLIENT_INFO, {
    capabilities: CLIENT_CAPABILITIES,
    versionNegotiation: { mode: { pin: PROTOCOL_VERSION } },
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  report.protocol = {
    era: client.getProtocolEra(),
    version: client.getNegotiatedProtocolVersion(),
    tasksExtension: client.getServerCapabilities()?.extensions?.["io.modelcontextprotocol/tasks"] ?? null,
  };
  const raw = await rawDispatcher(url);
  const session = createTaskSessionFromClient(client, {
    endpointId: `taskstore-demo ${url}`,
    rawDispatch: raw.dispatch,
    v2RequestFraming: {
      protocolVersion: PROTOCOL_VERSION,
      clientInfo: CLIENT_INFO,
      clientCapabilities: CLIENT_CAPABILITIES,
    },
    onInputRequest: async (request, context) => {
      report.inputRequests.push({
        kind: request.kind,
        message: request.params?.message ?? null,
        requestedSchema: request.params?.requestedSchema ?? null,
        scope: context.scope,
        delivery: context.delivery,
        taskId: context.taskId ?? null,
        inputId: context.inputId ?? null,
      });
      if (request.kind !== "elicitation") throw new Error(`unexpected input request ${request.kind}`);
      return { action: "accept", content: { name: "Ada" } };
    },
  });
  report.capabilities = session.capabilities;

  // one execution: call, record its kind/task id and every status seen, settle
  async function run(key, tool, args, { cancelWhen } = {}) {
    const statuses = [];
    const execution = await withTimeout(session.callTool(tool, args), `${key}: tools/call`);
    const info = { kind: execution.kind, taskId: execution.handle?.taskId ?? null };
    let cancelled = null;
    const settled = execution.settle({
      onEvent: async (event) => {
        const task = taskViewFromExecutionEvent(event);
        if (task !== undefined) {
          const last = statuses.at(-1);
          const entry = task.statusMessage ? `${task.status}: ${task.statusMessage}` : task.status;
          if (last !== entry) statuses.push(entry);
          if (cancelWhen !== undefined && cancelled === null && cancelWhen(task)) {
            cancelled = execution.cancel().then(
              () => "ok",
              (error) => `error: ${error}`,
            );
          }
        }
      },
    });
    const { outcome } = await withTimeout(settled, `${key}: settle`);
    report.outcomes[key] = { ...info, ...describeOutcome(outcome) };
    if (cancelled !== null) report.outcomes[key].cancelCall = await cancelled;
    report.events[key] = statuses;
    if (cancelWhen !== undefined && info.taskId !== null) {
      // ext-tasks settles `cancelled` on the server's tasks/cancel ack (cancellation is
      // cooperative, the task may never get there): ask the server where the task ended
      report.outcomes[key].serverStatus = await withTimeout(
        finalStatus(info.taskId),
        `${key}: tasks/get until terminal`,
      );
    }
  }

  async function finalStatus(taskId) {
    const controller = session.task(taskId);
    for (;;) {
      const view = await controller.snapshot();
      if (TERMINAL.has(view.status)) return view.status;
      await new Promise((resolve) => setTimeout(resolve, view.suggestedPollIntervalMs ?? 100));
    }
  }

  try {
    await run("count_to", "count_to", { n: 3, delay_ms: 50 });
    await run("ask_name", "ask_name", {});
    await run("fail_with", "fail_with", { code: -32042, message: "demo failure" });
    // cancel once the tool is seen counting (working with a status message)
    await run("cancel", "count_to", { n: 1000, delay_ms: 100 }, {
      cancelWhen: (task) => task.status === "working" && /^counted \d+ of 1000$/.test(task.statusMessage ?? ""),
    });
  } finally {
    report.rawMethods = raw.seen.map((entry) => entry.method);
    report.validation = raw.validation;
    await session.close();
    await raw.close();
    await client.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }) + "\n");
    process.exit(1);
  },
);
