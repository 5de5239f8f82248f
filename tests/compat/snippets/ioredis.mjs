import Redis from 'ioredis';

const redis = new Redis(process.env.TASKSTORE_URL ?? 'redis://127.0.0.1:6379');

const task = JSON.parse(await redis.call('TASK.CREATE', 'tools/call', 'TTL', '60000'));
console.log(JSON.parse(await redis.call('TASK.GET', task.taskId)).status); // working

const result = { content: [{ type: 'text', text: 'done' }] };
const done = await redis.call('TASK.COMPLETE', task.taskId, 'completed', JSON.stringify(result));
console.log(JSON.parse(done).status); // completed
console.log(await redis.call('TASK.RESULT', task.taskId)); // the result JSON, as stored

try {
  await redis.call('TASK.CANCEL', task.taskId);
} catch (err) {
  if (!(err instanceof Redis.ReplyError)) throw err;
  console.log(err.message.split(' ')[0]); // INVALIDTRANSITION
}
await redis.quit();
