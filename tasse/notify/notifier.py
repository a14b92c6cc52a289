"""The notifier: turns recorded outcomes into outbox rows, and keeps the outbox delivered.

`notices_for` is called where every run state is recorded (`Executor.record`), on the loop,
with the runs about to be handed to the writer: the rows it returns go in the same writer
operation, so an outcome and its notifications reach the store (or the journal) together.
It only computes and queues; the delivery threads send (`delivery.py`). The dead-man
switches and the digests are checked by one small periodic task on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tasse.errors import DeliveryError, NotifyTargetError
from tasse.models import Run, RunStatus
from tasse.notify import apprise_sender, message, webhook
from tasse.notify.delivery import Backoff, Delivery
from tasse.notify.history import FAILURES, TaskHistory, history_from, history_of_last
from tasse.notify.limits import RateLimit
from tasse.notify.rules import events_of
from tasse.notify.targets import Target, masked_webhook, parse_entry, read_targets, webhook_parts
from tasse.settings import Settings
from tasse.store.log_files import LogLayout
from tasse.store.outbox import Notice, NoticeStatus, OutboxTable
from tasse.store.runs import RunStore
from tasse.store.writer import RecordWriter
from tasse.tasks.notify_spec import DEFAULT_EVENTS, Event, NotifySpec

logger = logging.getLogger(__name__)

#: the task's `notify:` as it is now (None: the task is gone, or says nothing)
SpecOf = Callable[[str], NotifySpec | None]
_NO_RULES = NotifySpec()
_KNOWN_EVENTS = set(Event.__args__)  # type: ignore[attr-defined]


class Notifier:
    """Rules, targets, the rate limit and the outbox of one server."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        writer: RecordWriter,
        layout: LogLayout,
        spec_of: SpecOf,
        retries_of: Callable[[str], int],
        env_problem: Callable[[str], str | None],
        on_attempt: Callable[[bool], None] = lambda delivered: None,
        may_deliver: Callable[[], bool] = lambda: True,
    ):
        self._settings = settings
        #: whether this server delivers and checks the dead-man switches now (in a cluster:
        #: only the scheduler node; docs/cluster.md)
        self._may_deliver = may_deliver
        self._store = store
        self._table = OutboxTable(store)
        self._layout = layout
        self._spec_of = spec_of
        self._retries_of = retries_of
        self._env_problem = env_problem
        unknown = set(settings.notify_on) - _KNOWN_EVENTS
        if unknown:
            raise NotifyTargetError("notify_on", f"names unknown events: {sorted(unknown)}")
        self._defaults = tuple(settings.notify_on) or DEFAULT_EVENTS
        self.targets = read_targets(settings.notify, settings.notify_file)
        for target in self.targets:
            _check(target, "TASSE_NOTIFY")
        self._known = {target.key: target for target in self.targets}
        #: each task target's URL, read once (or why it cannot be used)
        self._parsed: dict[str, Target | NotifyTargetError] = {}
        #: each target as shown, by key: Apprise's privacy form costs a parse each time
        self._shown: dict[str, str] = {}
        self.target_problems: dict[str, str] = {}
        self._history: dict[str, TaskHistory] = {}
        self._silent_told: dict[str, datetime | None] = {}
        self._env_told: dict[str, str] = {}
        self._limit = RateLimit(settings.notify_rate_window)
        backoff = Backoff(
            settings.notify_max_attempts, settings.notify_retry_first, settings.notify_retry_max
        )
        self.delivery = Delivery(
            writer,
            self._send,
            backoff,
            settings.notify_workers,
            on_attempt=on_attempt,
            may_deliver=may_deliver,
        )
        self._writer = writer
        self._tick: asyncio.Task[None] | None = None
        #: rows made on the loop and not yet handed to the delivery threads
        self._to_deliver: list[Notice] = []
        self.started_at = self.now()

    def now(self) -> datetime:
        """The time the rules see (moved by `clock_shift` in tests of the dead-man switch)."""
        return datetime.now(UTC) + timedelta(seconds=self._settings.clock_shift)

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, last_runs: dict[str, Run], specs: dict[str, NotifySpec]) -> None:
        """Read what the rules need of the past, resume the pending rows, start delivering."""
        self.started_at = self.now()
        for name, run in last_runs.items():
            self._history[name] = history_of_last(run)
        looking_back = {name: spec for name, spec in specs.items() if spec.needs_history}
        found = await asyncio.to_thread(self._read_history, looking_back)
        self._history.update(found)
        unfinished = await asyncio.to_thread(self._table.unfinished)
        for notice in unfinished:
            if notice.status is NoticeStatus.held:
                self._limit.held_again(notice)
        self.delivery.add(n for n in unfinished if n.status is NoticeStatus.pending)
        if unfinished:
            logger.info("notifications: %d unfinished from before resumed", len(unfinished))
        self.delivery.start()
        interval = min(5.0, self._settings.notify_check_interval)
        self._tick = asyncio.get_running_loop().create_task(self._ticking(interval))

    async def take_over(self, specs: dict[str, NotifySpec]) -> int:
        """This cluster node delivers from now on: the past the rules read, from the store
        (runs and notices other nodes recorded), and every pending row (`adopt`)."""
        looking_back = {name: spec for name, spec in specs.items() if spec.needs_history}
        self._history.update(await asyncio.to_thread(self._read_history, looking_back))
        return await self.adopt()

    async def adopt(self) -> int:
        """Queue the store's pending rows this server does not have (other nodes' rows)."""
        rows = await asyncio.to_thread(self._table.unfinished)
        done = {notice.id for notice in self.delivery.recent() if notice.status.is_final}
        found = [n for n in rows if n.status is NoticeStatus.pending and n.id not in done]
        self.delivery.add(found)
        return len(found)

    def _read_history(self, specs: dict[str, NotifySpec]) -> dict[str, TaskHistory]:
        found = {}
        for name, spec in specs.items():
            recent = self._store.for_task(name, max(20, spec.after_failures or 0))
            successes = self._store.for_task(name, 20, RunStatus.succeeded.value)
            found[name] = history_from(recent, successes)
            if spec.no_success_for:
                self._silent_told[name] = self._table.latest_of(name, "no_success_for")
        return found

    async def stop(self, timeout: float) -> None:
        """Stop checking and delivering; what is pending stays so in the store."""
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick
        await asyncio.to_thread(self.delivery.stop, timeout)

    # -- outcomes (on the loop) --------------------------------------------------------------

    def notices_for(self, runs: Sequence[Run]) -> list[Notice]:
        """The notifications these recorded run states cause (queued for delivery)."""
        notices: list[Notice] = []
        for run in runs:
            if run.status.is_final:
                try:
                    notices += self._of_outcome(run)
                except Exception:  # a message must never cost a run its record
                    logger.exception(
                        "run %s of task %s: its notifications failed", run.id, run.task
                    )
        self._queue(notices)
        return notices

    def _of_outcome(self, run: Run) -> list[Notice]:
        spec = self._spec_of(run.task) or _NO_RULES
        history = self._history.setdefault(run.task, TaskHistory())
        retried = run.status in FAILURES and run.attempt <= self._retries_of(run.task)
        if self._env_failure(run):
            return []  # told once as env_failed, when the build failed
        found = events_of(run, spec, self._defaults, history, retried)
        if not retried:
            history.note(run)
        if not found.events:
            return []
        reason = message.reason_of(run)
        if "recovered" in found.events and run.status is RunStatus.succeeded:
            reason = "succeeded again"
        payload = message.payload(
            run.task, found.events, reason, run, found.details, self._settings.public_url
        )
        return self._addressed(run.task, spec, found.events, run.id, run.id, payload)

    def _env_failure(self, run: Run) -> bool:
        return (
            run.status is RunStatus.failed
            and run.started_at is None
            and self._env_problem(run.task) is not None
        )

    def env_failed(self, names: Iterable[str]) -> None:
        """Tell of tasks whose environment cannot be had now (once per distinct problem)."""
        notices = []
        for name in names:
            problem = self._env_problem(name)
            if problem is None:
                self._env_told.pop(name, None)
                continue
            spec = self._spec_of(name) or _NO_RULES
            if self._env_told.get(name) == problem or not self._tells(spec, "env_failed"):
                continue
            self._env_told[name] = problem
            payload = message.payload(
                name, ["env_failed"], problem.splitlines()[0][:300], None, (), self._public
            )
            cause = f"env-{self.now():%Y%m%d%H%M%S%f}"
            notices += self._addressed(name, spec, ["env_failed"], cause, None, payload)
        self._save_and_queue(notices)

    @property
    def _public(self) -> str | None:
        return self._settings.public_url

    def _tells(self, spec: NotifySpec, event: str) -> bool:
        return event in (self._defaults if spec.when is None else spec.when)

    def _addressed(
        self,
        task: str,
        spec: NotifySpec,
        events: Sequence[str],
        cause: str,
        run_id: str | None,
        payload: dict[str, Any],
    ) -> list[Notice]:
        """One row per target of the task, each admitted now or held by the rate limit."""
        now = datetime.now(UTC)
        notices = []
        for target in self._targets_of(task, spec):
            notice = Notice(
                id=f"{cause}-{target.key}",
                task=task,
                events=tuple(events),
                run_id=run_id,
                target=target.key,
                shown_target=self.shown_of(target),
                created_at=now,
                payload=payload,
            )
            if not self._limit.admit(notice, now):
                notice = notice.but(status=NoticeStatus.held)
            notices.append(notice)
        return notices

    def _targets_of(self, task: str, spec: NotifySpec) -> list[Target]:
        """The task's own targets, and the server's it picks by tag (or, naming none, the
        untagged ones)."""
        chosen = []
        for url in spec.targets:
            target = self._parsed.get(url) or self._parse(url, f"task {task}: notify.targets")
            if isinstance(target, NotifyTargetError):
                self.target_problems[task] = str(target)
                continue
            chosen.append(target)
        wanted = set(spec.tags)
        for target in self.targets:
            if (target.tags & wanted) if wanted else not target.tags and not spec.targets:
                chosen.append(target)
        return chosen

    def _parse(self, url: str, where: str) -> Target | NotifyTargetError:
        try:
            target = parse_entry(url, where)
            _check(target, where)
        except NotifyTargetError as error:
            self._parsed[url] = error
            return error
        self._parsed[url] = self._known.setdefault(target.key, target)
        return target

    def shown_of(self, target: Target) -> str:
        """The target as it may be shown (secrets masked), worked out once."""
        if target.key not in self._shown:
            self._shown[target.key] = shown(target)
        return self._shown[target.key]

    def _queue(self, notices: Sequence[Notice]) -> None:
        held = [notice for notice in notices if notice.status is NoticeStatus.held]
        self.delivery.note(held)
        sending = [notice for notice in notices if notice.status is NoticeStatus.pending]
        if not sending:
            return
        # After the caller handed the rows to the writer with their runs (the same call on
        # the loop), and all of one loop iteration's at once: a burst of 1,000 failures
        # wakes the delivery threads once, not 1,000 times (each wake-up costs the loop
        # the GIL for a while).
        if not self._to_deliver:
            asyncio.get_running_loop().call_soon(self._hand_to_delivery)
        self._to_deliver += sending

    def _hand_to_delivery(self) -> None:
        batch, self._to_deliver = self._to_deliver, []
        self.delivery.add(batch)

    def _save_and_queue(self, notices: Sequence[Notice]) -> None:
        if notices:
            self._writer.save_notices(notices)
            self._queue(notices)

    # -- the periodic check -----------------------------------------------------------------

    async def _ticking(self, interval: float) -> None:
        since_check = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                self._send_digests()
                since_check += interval
                if since_check >= self._settings.notify_check_interval and self._may_deliver():
                    since_check = 0.0
                    self.check_silences()
            except Exception:  # the checks must go on whatever one of them met
                logger.exception("the notifications' periodic check failed")

    def _send_digests(self) -> None:
        digests, done = [], []
        for held in self._limit.due(datetime.now(UTC)):
            first = held[0]
            lines = [
                f"{notice.created_at:%H:%M:%S} {', '.join(notice.events)}: "
                f"{notice.payload.get('reason', '')}"
                for notice in held
            ]
            payload = message.payload(
                first.task,
                ["digest"],
                f"{len(held)} notification(s) held back by the rate limit",
                None,
                lines,
                self._public,
            )
            digest = first.but(
                id=f"digest-{first.id}"[:160],
                events=("digest",),
                run_id=None,
                created_at=datetime.now(UTC),
                status=NoticeStatus.pending,
                payload=payload,
            )
            digests.append(digest)
            done += [n.but(status=NoticeStatus.digested, error=digest.id) for n in held]
        if digests:
            self._writer.save_notices([*done, *digests])
            self.delivery.note(done)
            self.delivery.add(digests)

    def check_silences(self) -> None:
        """The dead-man switches: tell of tasks with no success for longer than they allow."""
        notices = []
        now = self.now()
        for name, history in self._history.items():
            spec = self._spec_of(name)
            if spec is None or spec.no_success_for is None:
                continue
            since = history.last_success or self.started_at
            told = self._silent_told.get(name)
            if now - since < timedelta(seconds=spec.no_success_for) or (told and told >= since):
                continue
            self._silent_told[name] = now
            hours = (now - since).total_seconds() / 3600
            reason = f"no success for {hours:.1f} h (allowed: {spec.no_success_for / 3600:g} h)"
            payload = message.payload(name, ["no_success_for"], reason, None, (), self._public)
            cause = f"silent-{name}-{since:%Y%m%d%H%M%S}"
            notices += self._addressed(name, spec, ["no_success_for"], cause, None, payload)
        self._save_and_queue(notices)

    def watch(self, names: Iterable[str]) -> None:
        """Tasks known now (at start, after a rescan): their dead-man switches count from now."""
        for name in names:
            self._history.setdefault(name, TaskHistory())

    # -- sending (delivery threads) ----------------------------------------------------------

    def _send(self, notice: Notice) -> None:
        target = self._known.get(notice.target)
        if target is None:
            raise DeliveryError(notice.shown_target, "is not configured any more")
        tail: list[str] = []
        if notice.run_id:
            log = self._layout.run_log(notice.task, notice.run_id)
            tail = message.log_tail(log, self._settings.notify_log_lines)
        timeout = self._settings.notify_timeout
        if target.is_webhook:
            url, secret = webhook_parts(target.url)
            body = {**notice.payload, "id": notice.id, "log_tail": tail}
            webhook.post(url, secret, notice.id, body, timeout)
        else:
            title, text = message.render(notice.payload, tail)
            apprise_sender.send(target.url, title, text, timeout)

    def send_test(self, wanted: str | None) -> list[Notice]:
        """Queue a test message to a target (a URL, a tag or a target key; all by default)."""
        if wanted and "://" in wanted:
            target = parse_entry(wanted, "the test target")
            _check(target, "the test target")
            self._known.setdefault(target.key, target)
            chosen = [target]
        else:
            chosen = [t for t in self.targets if not wanted or wanted in t.tags or wanted == t.key]
        if not chosen:
            raise NotifyTargetError(wanted or "(all)", "names no configured target")
        now = datetime.now(UTC)
        payload = message.payload(
            "(test)", ["test"], "a test sent from Tasse", None, (), self._public
        )
        notices = [
            Notice(
                id=f"test-{now:%Y%m%d%H%M%S%f}-{target.key}",
                task="(test)",
                events=("test",),
                run_id=None,
                target=target.key,
                shown_target=self.shown_of(target),
                created_at=now,
                payload=payload,
            )
            for target in chosen
        ]
        self._writer.save_notices(notices)
        self.delivery.add(notices)
        return notices

    # -- what people see ---------------------------------------------------------------------

    async def page(
        self, task: str | None, status: str | None, before: datetime | None, limit: int
    ) -> list[Notice]:
        """Notifications newest first, the store's merged with newer states in memory."""
        stored = await self._store.off_loop(lambda: self._table.page(task, status, before, limit))
        newest = {notice.id: notice for notice in stored}
        for notice in self.delivery.recent():
            if (
                (task is None or notice.task == task)
                and (status is None or notice.status.value == status)
                and (before is None or notice.created_at < before)
            ):
                newest[notice.id] = notice
            elif notice.id in newest:
                del newest[notice.id]  # its newer state no longer fits the filters
        ordered = sorted(newest.values(), key=lambda n: (n.created_at, n.id), reverse=True)
        return ordered[:limit]

    def problems(self) -> list[tuple[str, str]]:
        """Failing targets and bad task targets: (subject, detail)."""
        found = [
            (
                health.shown,
                f"{health.failures_in_a_row} failed attempt(s) in a row since "
                f"{health.failing_since:%Y-%m-%d %H:%M:%S} UTC: {health.last_error}"
                + (f"; {health.given_up} notification(s) given up" if health.given_up else ""),
            )
            for health in self.delivery.targets.values()
            if health.failing_since is not None or health.given_up
        ]
        return found + sorted(self.target_problems.items())


def shown(target: Target) -> str:
    """A target as it may be shown anywhere: every secret masked."""
    if target.is_webhook:
        return masked_webhook(target.url)
    return apprise_sender.shown(target.url)


def _check(target: Target, where: str) -> None:
    if not target.is_webhook:
        apprise_sender.check(target.url, where)


def public(notice: Notice) -> dict[str, Any]:
    """A notification as the API shows it (its target masked, its message's text)."""
    return {
        "id": notice.id,
        "task": notice.task,
        "events": list(notice.events),
        "run_id": notice.run_id,
        "target": notice.shown_target,
        "status": notice.status.value,
        "attempts": notice.attempts,
        "created_at": notice.created_at,
        "next_attempt_at": notice.next_attempt_at,
        "sent_at": notice.sent_at,
        "error": notice.error,
        "title": notice.payload.get("title"),
        "reason": notice.payload.get("reason"),
    }
