import asyncio
import json
import os

import redis.asyncio as redis


async def main() -> None:
    r = redis.Redis.from_url(os.environ.get("TASKSTORE_URL", "redis://127.0.0.1:6379"))

    task = json.loads(await r.execute_command("TASK.CREATE", "tools/call", "TTL", 60000))
    task_id = task["taskId"]
    print(json.loads(await r.execute_command("TASK.GET", task_id))["status"])  # working

    result = {"content": [{"type": "text", "text": "done"}]}
    done = await r.execute_command("TASK.COMPLETE", task_id, "completed", json.dumps(result))
    print(json.loads(done)["status"])  # completed
    print((await r.execute_command("TASK.RESULT", task_id)).decode())  # the result JSON

    try:
        await r.execute_command("TASK.CANCEL", task_id)
    except redis.ResponseError as e:
        print(str(e).split()[0])  # INVALIDTRANSITION
    await r.aclose()


asyncio.run(main())
