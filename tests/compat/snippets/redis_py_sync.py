import json
import os

import redis

r = redis.Redis.from_url(os.environ.get("TASKSTORE_URL", "redis://127.0.0.1:6379"))

task = json.loads(r.execute_command("TASK.CREATE", "tools/call", "TTL", 60000))
task_id = task["taskId"]
print(json.loads(r.execute_command("TASK.GET", task_id))["status"])  # working

result = {"content": [{"type": "text", "text": "done"}]}
done = r.execute_command("TASK.COMPLETE", task_id, "completed", json.dumps(result))
print(json.loads(done)["status"])  # completed
print(r.execute_command("TASK.RESULT", task_id).decode())  # the result JSON, as stored

try:
    r.execute_command("TASK.CANCEL", task_id)
except redis.ResponseError as e:
    print(str(e).split()[0])  # INVALIDTRANSITION: a completed task cannot be cancelled
r.close()
