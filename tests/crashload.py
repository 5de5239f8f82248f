"""A mixed write workload for crash tests of the append-only file.

Workers drive tasks through random sequences of writes (create, status and message updates,
variables, results, input requests and answers, cancellation requests, leases, completion,
failure, cancellation, deletion), one write at a time per task, many tasks at once, as fast as
they can. A reference ``TaskStore`` (the model) applies every write as it is sent and records
what the task must look like after each prefix of its writes. After the server is killed and
restarted, every task must equal the model after ``k`` of its writes with
``acknowledged <= k <= sent``: nothing acknowledged is lost and nothing is half-applied.
Timestamps are not compared (the model's clock is not the server's); everything else is.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from taskstore.store import StoreConfig, TaskError, TaskRecord, TaskStatus, TaskStore
from taskstore.store.record import json_object

OWNER = "local"  # the anonymous default owner of a loopback server


def observe_record(record: TaskRecord | None, stored_result: bytes | None) -> Any:
    """What a client can see of a task, timestamps left out (None: no such task)."""
    if record is None:
        return None
    task = json.loads(record.wire_json_v2())
    task.pop("createdAt")
    task.pop("lastUpdatedAt")
    interaction = record.interaction
    return {
        "task": task,
        "variables": record.variables or {},
        "input_requests": json.loads(json_object(interaction.requests)) if interaction else {},
        "issued_keys": sorted(interaction.issued) if interaction else [],
        "answers": json.loads(json_object(interaction.answers)) if interaction else {},
        "error": json.loads(interaction.error) if interaction and interaction.error else None,
        "cancel_requested": bool(interaction and interaction.cancel_requested_at_ms),
        "lease_holder": interaction.lease_holder if interaction else None,
        "result": None if stored_result is None else json.loads(stored_result),
    }


def observe_reply(inspect: list[Any], result: bytes | None) -> Any:
    """The same view, from TASK.INSPECT (RESP2, 2026-07-28 rendering) and TASK.RESULT … ANY."""
    fields = {inspect[i].decode(): inspect[i + 1] for i in range(0, len(inspect), 2)}
    task = json.loads(fields["task"])
    task.pop("createdAt")
    task.pop("lastUpdatedAt")
    return {
        "task": task,
        "variables": json.loads(fields["variables"]),
        "input_requests": json.loads(fields["input_requests"]),
        "issued_keys": [k.decode() for k in fields["issued_keys"]],
        "answers": json.loads(fields["answers"]),
        "error": None if fields["error"] is None else json.loads(fields["error"]),
        "cancel_requested": fields["cancel_requested_at"] is not None,
        "lease_holder": None if fields["lease_holder"] is None else fields["lease_holder"].decode(),
        "result": None if result is None else json.loads(result),
    }


@dataclass
class Track:
    """One task's writes: ``states[i]`` is what it must look like after ``i`` of them."""

    task_id: str
    states: list[Any] = field(default_factory=lambda: [None])
    sent: int = 0
    acked: int = 0
    settled: int | None = None  # k found after a restart (no more writes then)


class Workload:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.model = TaskStore(StoreConfig(max_tasks_per_owner=0))
        self.tracks: dict[str, Track] = {}
        self.serial = 0
        self.present = 0  # tasks of the workload that exist, as of the last verify()

    # -- the writes -----------------------------------------------------------

    def next_write(self, track: Track) -> list[str] | None:
        """Pick a write for the task, apply it to the model; None when the task is done."""
        rng = self.rng
        model = self.model
        tid = track.task_id
        n = track.sent
        try:
            record = model.get(OWNER, tid)
        except TaskError:
            record = None
        if record is None:
            if n:
                return None  # deleted: done
            return self._apply(track, ["TASK.CREATE", "tools/call", "ID", tid])
        if n >= rng.randint(4, 14):
            return None
        status = record.status
        options: list[list[str]] = [
            ["TASK.SETVARS", tid, json.dumps({f"v{n}": n, "s": "x" * rng.randint(0, 40)})],
            ["TASK.SETVARS", tid, json.dumps({f"v{rng.randint(0, n)}": None})],
            ["TASK.SETRESULT", tid, json.dumps({"partial": n})],
            ["TASK.UPDATE", tid, "MESSAGE", f"m{n}"],
        ]
        if not status.is_terminal:
            outstanding = list(record.interaction.requests) if record.interaction else []
            options += [
                [
                    "TASK.ASK",
                    tid,
                    f"q{n}",
                    json.dumps({"method": "elicitation/create", "params": {"n": n}}),
                    "MESSAGE",
                    f"a{n}",
                ],
                ["TASK.CANCEL", tid, "REQUEST", "MESSAGE", f"c{n}"],
                ["TASK.LEASE", tid, f"w{n % 3}", "600000"],
                ["TASK.LEASE", tid, f"w{n % 3}", "0"],
                ["TASK.COMPLETE", tid, "completed", json.dumps({"done": n}), "MESSAGE", f"d{n}"],
                ["TASK.FAIL", tid, json.dumps({"code": -1, "message": f"e{n}"}), "MESSAGE", "f"],
                ["TASK.CANCEL", tid, "MESSAGE", f"x{n}"],
            ]
            if status is TaskStatus.WORKING:
                options.append(["TASK.UPDATE", tid, "input_required", "MESSAGE", f"u{n}"])
            else:
                options.append(["TASK.UPDATE", tid, "working"])
            if outstanding:
                key = rng.choice(outstanding)
                options += [["TASK.ANSWER", tid, key, json.dumps({"ok": n})]] * 3
        options.append(["TASK.DEL", tid])
        return self._apply(track, rng.choice(options))

    def _apply(self, track: Track, args: list[str]) -> list[str]:
        model = self.model
        tid = track.task_id
        name, rest = args[0], args[1:]
        try:
            if name == "TASK.CREATE":
                model.create(OWNER, "tools/call", task_id=tid)
            elif name == "TASK.SETVARS":
                model.set_variables(OWNER, tid, rest[1])
            elif name == "TASK.SETRESULT":
                model.set_result(OWNER, tid, rest[1])
            elif name == "TASK.UPDATE":
                if rest[1] == "MESSAGE":
                    model.update_status(OWNER, tid, None, rest[2], set_message=True)
                elif len(rest) > 2:
                    model.update_status(OWNER, tid, TaskStatus(rest[1]), rest[3], set_message=True)
                else:
                    model.update_status(OWNER, tid, TaskStatus(rest[1]), None, set_message=False)
            elif name == "TASK.ASK":
                model.ask(OWNER, tid, [(rest[1], rest[2])], rest[4])
            elif name == "TASK.ANSWER":
                model.answer(OWNER, tid, [(rest[1], rest[2])])
            elif name == "TASK.CANCEL" and rest[1] == "REQUEST":
                model.request_cancel(OWNER, tid, rest[3])
            elif name == "TASK.CANCEL":
                model.cancel(OWNER, tid, rest[2])
            elif name == "TASK.LEASE":
                model.lease(OWNER, tid, rest[1], int(rest[2]))
            elif name == "TASK.COMPLETE":
                model.complete_with_result(OWNER, tid, TaskStatus.COMPLETED, rest[2], rest[4])
            elif name == "TASK.FAIL":
                model.fail(OWNER, tid, rest[1], rest[3])
            elif name == "TASK.DEL":
                model.delete(OWNER, tid)
            else:
                raise AssertionError(args)
        except TaskError:
            pass  # refused: the task is unchanged, on the server too
        track.states.append(self.observe(tid))
        track.sent += 1
        return args

    def observe(self, task_id: str) -> Any:
        try:
            record = self.model.get(OWNER, task_id)
        except TaskError:
            return None
        return observe_record(record, self.model.stored_result(OWNER, task_id))

    # -- running --------------------------------------------------------------

    def new_track(self, prefix: str) -> Track:
        self.serial += 1
        track = Track(f"{prefix}-{self.serial}")
        self.tracks[track.task_id] = track
        return track

    async def worker(self, port: int, prefix: str) -> None:
        """Write until the connection fails (the server was killed)."""
        # no retries: a command re-sent after the kill would be counted once, applied twice
        client = aioredis.Redis(
            port=port, protocol=2, single_connection_client=True, retry=Retry(NoBackoff(), 0)
        )
        try:
            track = self.new_track(prefix)
            while True:
                args = self.next_write(track)
                if args is None:
                    track = self.new_track(prefix)
                    continue
                try:
                    await client.execute_command(*args)
                except aioredis.ResponseError:
                    pass  # an error reply is an acknowledgement too: nothing changed
                track.acked += 1
        except (aioredis.ConnectionError, OSError):
            return
        finally:
            try:
                await client.aclose()
            except Exception:
                pass

    # -- checking -------------------------------------------------------------

    async def verify(self, port: int) -> tuple[int, int]:
        """Check every task against the model; returns (tasks, acknowledged writes checked).
        Each task is settled at the prefix found, and stays checked there from then on."""
        client = aioredis.Redis(port=port, protocol=2)
        checked_writes = 0
        try:
            tracks = list(self.tracks.values())
            for start in range(0, len(tracks), 500):
                batch = tracks[start : start + 500]
                pipe = client.pipeline(transaction=False)
                for track in batch:
                    pipe.execute_command("TASK.INSPECT", track.task_id)
                    pipe.execute_command("TASK.RESULT", track.task_id, "ANY")
                replies = await pipe.execute(raise_on_error=False)
                for i, track in enumerate(batch):
                    inspect, result = replies[2 * i], replies[2 * i + 1]
                    if isinstance(inspect, aioredis.ResponseError):
                        assert str(inspect).startswith("NOTFOUND"), inspect
                        actual = None
                    else:
                        actual = observe_reply(inspect, result)
                    if track.settled is not None:
                        allowed = [track.settled]
                    else:
                        allowed = list(range(track.acked, track.sent + 1))
                    matches = [k for k in allowed if track.states[k] == actual]
                    assert matches, (
                        f"task {track.task_id}: acknowledged {track.acked} of {track.sent} "
                        f"writes; found {actual!r}; expected one of "
                        f"{[track.states[k] for k in allowed]!r}"
                    )
                    if track.settled is None:
                        checked_writes += track.acked
                        track.settled = matches[-1]
            listed = await _list_all(client)
            assert len(listed) == len(set(listed))
            present = {t.task_id for t in tracks if t.states[t.settled or 0] is not None}
            # tasks written by others (a preload) are not the workload's to check
            assert {i for i in listed if i in self.tracks} == present
            self.present = len(present)
        finally:
            await client.aclose()
        return len(self.tracks), checked_writes


async def _list_all(client: aioredis.Redis) -> list[str]:
    ids: list[str] = []
    cursor: list[str] = []
    while True:
        page = json.loads(await client.execute_command("TASK.LIST", "LIMIT", "1000", *cursor))
        ids += [t["taskId"] for t in page["tasks"]]
        if "nextCursor" not in page:
            return ids
        cursor = ["CURSOR", page["nextCursor"]]


async def run_until(port: int, workload: Workload, prefix: str, workers: int, stop: Any) -> None:
    """Run ``workers`` writers until ``stop()`` (a coroutine that kills the server) returns."""
    tasks = [asyncio.create_task(workload.worker(port, f"{prefix}w{i}")) for i in range(workers)]
    await stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
