"""Answers by id, so that a page that went away mid-answer can come back to it.

Each answer is read from the scheduler (the events of one job) by a task of its own into its
`AnswerLog`; any number of readers replay the log from the start and then follow it. An answer
whose model is still loading starts with `Loading` and waits for the chat service to admit it. While nobody
reads an answer, a grace timer runs: a reader arriving within it carries on; at its end an
unfinished answer is cancelled (its model slot freed) and the answer is forgotten, and so is a
finished one. `stop` cancels at once.

Memory stays bounded: an unfinished answer holds a model slot or a queue place (one waiting for
its model to load holds neither, but it expires like any other once nobody reads it), a log is
bounded by the answer's token budget, and finished answers by `KEEP_FINISHED`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable

from server.events import Done, Event, Failed, Loading, Progress, Text, Thought
from server.scheduler import Job, Scheduler

log = logging.getLogger("snake_llama")

KEEP_FINISHED = 256  # finished answers kept for readers to come back to; the oldest go first
FIRST_READER_S = 10.0  # how long a new answer waits for its first reader (the response that started it)


Admitted = tuple[Scheduler, Job]
# What `Answers.start` takes: a job admitted already, the work that admits one once the model
# has loaded (it comes to a `Failed` where a request would have been refused), or a `Failed` at
# once (a remote's model whose server is down: nothing loads).
Admission = Admitted | Awaitable[Admitted | Failed] | Failed


class AnswerLog:
    """One answer: its events so far, whether it has ended, and who reads it."""

    def __init__(self, answer_id: str, model: str) -> None:
        self.id = answer_id
        self.log: list[Event] = []
        self.ended = False
        self.readers = 0
        self.job: Job | None = None  # the scheduler's job, once it is known
        self.model = model  # for the `done` of an answer stopped before it ran
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self._grew = asyncio.Event()
        self._began = False  # the task has begun reading

    def stop(self) -> None:
        """Cancel the answer at once. One that runs ends with its own `done` (stop reason
        "cancelled") within a token; one still waiting or loading gets that `done` here."""
        if self.ended or (self.task is not None and self.task.done()):
            return
        if self.job is not None and self.job.started.done():
            self.job.cancelled.set()
        elif not self._began:
            # A task cancelled before its first step never enters its source, whose clean-up
            # (the scheduler's) would then not run: stop once it has.
            asyncio.get_running_loop().call_soon(self.stop)
        elif self.task is not None:
            self.task.cancel()

    async def consume(self, admission: Admission) -> None:
        self._began = True
        try:
            if isinstance(admission, Failed):
                self._add(admission)
                return
            if not isinstance(admission, tuple):
                self._add(Loading(self.model))
                admitted = await admission
                if isinstance(admitted, Failed):
                    self._add(admitted)
                    return
                admission = admitted
            scheduler, self.job = admission
            self.model = scheduler.engine.model
            async for event in scheduler.events(self.job):
                self._add(event)
        except asyncio.CancelledError:  # stopped before it ran: readers still get a `done`
            self._add(Done("cancelled", 0, 0, None, None, model=self.model))
        except Exception as exc:  # a fault before the model ran (rendering, loading): this answer's error only
            log.exception("answer %s failed", self.id)
            self._add(Failed("internal_error", f"the answer could not be started: {exc}"))
        finally:
            self.ended = True
            self._wake()

    def _add(self, event: Event) -> None:
        self.log.append(event)
        self._wake()

    def _wake(self) -> None:
        self._grew.set()
        self._grew = asyncio.Event()

    async def read(self) -> AsyncIterator[Event]:
        """Every event from the start (what is logged already with its text in one piece), then
        each as it comes, until the answer ends."""
        seen = len(self.log)
        for event in compact(self.log[:seen]):
            yield event
        while True:
            while seen < len(self.log):
                seen += 1
                yield self.log[seen - 1]
            if self.ended:
                return
            await self._grew.wait()


def compact(events: list[Event]) -> list[Event]:
    """The events with each run of answer text, and of thoughts, joined into one event, and each run
    of progress as its last: a replay folds the same."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, Text) and isinstance(last, Text):
            out[-1] = Text(last.text + event.text)
        elif isinstance(event, Thought) and isinstance(last, Thought):
            out[-1] = Thought(last.text + event.text)
        elif isinstance(event, Progress) and isinstance(last, Progress):
            out[-1] = event  # only where the reading stands now
        else:
            out.append(event)
    return out


class Answers:
    """The answers a page may come back to, by id, for `grace_s` seconds after nobody reads one."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._answers: dict[str, AnswerLog] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, model: str, admission: Admission) -> AnswerLog:
        """A new answer of `model`, read from the scheduler by a task of its own once admitted."""
        answer = AnswerLog(secrets.token_urlsafe(16), model)
        self._answers[answer.id] = answer
        answer.task = task = asyncio.create_task(answer.consume(admission))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        answer.timer = asyncio.get_running_loop().call_later(
            max(self.grace_s, FIRST_READER_S), self._expire, answer
        )  # in case the response that started it never reads it
        self._forget_old()
        return answer

    def get(self, answer_id: str) -> AnswerLog | None:
        return self._answers.get(answer_id)

    async def read(self, answer: AnswerLog) -> AsyncIterator[Event]:
        """`answer.read()`, counted: the grace timer runs while no reader is left."""
        answer.readers += 1
        if answer.timer is not None:
            answer.timer.cancel()
            answer.timer = None
        try:
            async for event in answer.read():
                yield event
        finally:
            answer.readers -= 1
            if not answer.readers:
                self._unwatched(answer)

    def _unwatched(self, answer: AnswerLog) -> None:
        if self.grace_s <= 0:
            self._expire(answer)
        else:
            answer.timer = asyncio.get_running_loop().call_later(self.grace_s, self._expire, answer)

    def _expire(self, answer: AnswerLog) -> None:
        answer.timer = None
        if answer.readers:
            return
        answer.stop()
        if self._answers.get(answer.id) is answer:
            del self._answers[answer.id]

    def _forget_old(self) -> None:
        finished = [a for a in self._answers.values() if a.ended and not a.readers]
        for answer in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            if answer.timer is not None:
                answer.timer.cancel()
            del self._answers[answer.id]

    @property
    def running(self) -> int:
        """Answers not ended yet, read or not (one that expired counts until its job has ended)."""
        return len(self._tasks)

    @property
    def unwatched(self) -> int:
        """Answers not ended that nobody reads: in their grace period."""
        return sum(not a.ended and not a.readers for a in self._answers.values())

    def close(self) -> None:
        for answer in self._answers.values():
            if answer.timer is not None:
                answer.timer.cancel()
        for task in self._tasks:
            task.cancel()
        self._answers.clear()

