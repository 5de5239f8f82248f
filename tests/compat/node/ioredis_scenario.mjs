// The compatibility scenario through ioredis.
//   node ioredis_scenario.mjs <package> [<constructor options as JSON>]
// <package> is an alias from ../package.json (ioredis6, ioredis5). The server comes from
// TASKSTORE_PORT (and TASKSTORE_PASSWORD). Prints one JSON object: every reply, encoded.
import { scenario, packageVersion, withId, encode, settle, waitFor, connectionSettings } from './common.mjs';

const pkg = process.argv[2];
const extra = JSON.parse(process.argv[3] || '{}');
const { default: Redis } = await import(pkg);
const { ReplyError } = Redis;
const { host, port, password } = connectionSettings();
const options = { host, port, ...(password ? { password } : {}), ...extra };

const out = { library: 'ioredis', package: pkg, version: packageVersion(pkg), options: extra };
const clientErrors = [];
const messages = [];

const client = new Redis(options);
client.on('error', (err) => clientErrors.push(String(err)));

// pub/sub: a connection in subscriber mode
const subscriber = new Redis(options);
subscriber.on('error', (err) => clientErrors.push(String(err)));
subscriber.on('message', (channel, message) => messages.push(message));
await subscriber.subscribe(scenario.channel);

const send = (command) => settle(client.call(...command), ReplyError);

out.create = await send(scenario.create);
const id = JSON.parse(out.create.value).taskId;
out.steps = {};
for (const [name, command] of scenario.steps) {
  out.steps[name] = await send(withId(command, id));
}

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

// pipeline(): exec() resolves with [error, reply] pairs
const encodePairs = (pairs) => pairs.map(([err, reply]) => encode(err ?? reply, ReplyError));
const pipeline = client.pipeline();
for (const command of scenario.batch) pipeline.call(...withId(command, scenario.pipeline_id));
out.pipeline = encodePairs(await pipeline.exec());

// multi(): MULTI ... EXEC, the same [error, reply] pairs
const multi = client.multi();
for (const command of scenario.batch) multi.call(...withId(command, scenario.multi_id));
try {
  out.multi = { replies: encodePairs(await multi.exec()) };
} catch (err) {
  out.multi = { thrown: encode(err, ReplyError).error, replies: null };
}

await waitFor(messages, scenario.messages);
out.messages = messages.map(String);
await subscriber.unsubscribe(scenario.channel);

// the library's own command methods, as a first try would use them
out.ping = await settle(client.ping(), ReplyError);
out.info = await settle(client.info('server'), ReplyError);

await subscriber.quit();
await client.quit();
out.clientErrors = clientErrors;
process.stdout.write(JSON.stringify(out) + '\n');
