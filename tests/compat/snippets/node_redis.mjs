import { createClient, ErrorReply } from 'redis';

const client = createClient({ url: process.env.TASKSTORE_URL ?? 'redis://127.0.0.1:6379' });
client.on('error', (err) => console.error('redis client error', err));
await client.connect(); // RESP3 (HELLO 3) by default in node-redis 6

const task = JSON.parse(await client.sendCommand(['TASK.CREATE', 'tools/call', 'TTL', '60000']));
console.log(JSON.parse(await client.sendCommand(['TASK.GET', task.taskId])).status); // working

const result = { content: [{ type: 'text', text: 'done' }] };
const done = await client.sendCommand(['TASK.COMPLETE', task.taskId, 'completed', JSON.stringify(result)]);
console.log(JSON.parse(done).status); // completed
console.log(await client.sendCommand(['TASK.RESULT', task.taskId])); // the result JSON, as stored

try {
  await client.sendCommand(['TASK.CANCEL', task.taskId]);
} catch (err) {
  if (!(err instanceof ErrorReply)) throw err;
  console.log(err.message.split(' ')[0]); // INVALIDTRANSITION
}
await client.close();
