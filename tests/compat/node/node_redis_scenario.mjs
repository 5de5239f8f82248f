// The compatibility scenario through node-redis (the npm package `redis`).
//   node node_redis_scenario.mjs <package> [<createClient options as JSON>]
// <package> is an alias from ../package.json (redis6, redis5). The server comes from
// TASKSTORE_PORT (and TASKSTORE_PASSWORD). Prints one JSON object: every reply, encoded.
import { scenario, packageVersion, withId, encode, settle, waitFor, connectionSettings } from './common.mjs';

const pkg = process.argv[2];
const extra = JSON.parse(process.argv[3] || '{}');
const { createClient, ErrorReply, MultiErrorReply } = await import(pkg);
const { host, port, password } = connectionSettings();
const auth = password ? `default:${encodeURIComponent(password)}@` : '';
const options = { url: `redis://${auth}${host}:${port}`, ...extra };

const out = { library: 'node-redis', package: pkg, version: packageVersion(pkg), options: extra };
const clientErrors = [];
const messages = [];

const client = createClient(options);
client.on('error', (err) => clientErrors.push(String(err)));
await client.connect();

// pub/sub: a second connection, as node-redis requires for subscribing
const subscriber = client.duplicate();
subscriber.on('error', (err) => clientErrors.push(String(err)));
await subscriber.connect();
await subscriber.subscribe(scenario.channel, (message) => messages.push(message));

const send = (command) => settle(client.sendCommand(command), ErrorReply);

out.create = await send(scenario.create);
const id = JSON.parse(out.create.value).taskId;
out.steps = {};
for (const [name, command] of scenario.steps) {
  out.steps[name] = await send(withId(command, id));
}

// pagination: more tasks, then pages of page_size until there is no nextCursor
for (let i = 0; i < scenario.list_tasks; i++) await send(scenario.create);
out.pages = [];
let cursor;
do {
  const command = ['TASK.LIST', 'LIMIT', String(scenario.page_size)];
  if (cursor) command.push('CURSOR', cursor);
  const page = await send(command);
  out.pages.push(page);
  cursor = page.value === undefined ? undefined : JSON.parse(page.value).nextCursor;
} while (cursor && out.pages.length < 20);

out.cancel = await send(withId(scenario.cancel, id));

// a pipeline: node-redis pipelines the commands issued in the same tick
out.pipeline = await Promise.all(
  scenario.batch.map((command) => send(withId(command, scenario.pipeline_id)))
);

// MULTI/EXEC: exec() rejects with MultiErrorReply when an element is an error reply
const multi = client.multi();
for (const command of scenario.batch) multi.addCommand(withId(command, scenario.multi_id));
try {
  out.multi = { replies: encode(await multi.exec(), ErrorReply).value };
} catch (err) {
  out.multi = {
    thrown: encode(err, MultiErrorReply).error,
    replies: Array.isArray(err.replies) ? err.replies.map((r) => encode(r, ErrorReply)) : null,
  };
}

await waitFor(messages, scenario.messages);
out.messages = messages.map(String);
await subscriber.unsubscribe(scenario.channel);

// the library's own command methods, as a first try would use them
out.ping = await settle(client.ping(), ErrorReply);
out.info = await settle(client.info('server'), ErrorReply);

await subscriber.close();
await client.close();
out.clientErrors = clientErrors;
process.stdout.write(JSON.stringify(out) + '\n');
