"""The unit of work: one transaction, plus what a service needs besides the session (time, the vault)."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.cache import TtlCache
from loyalty_api.clock import Clock
from loyalty_api.crypto import Vault
from loyalty_api.db.engine import (
    LOCK_WAIT_UNTIL,
    SNAPSHOT,
    Database,
    hold_connection,
    release_connection,
)
from loyalty_api.db.invalidation import announce
from loyalty_api.settings import Settings

# How long a background job's writing unit of work waits for another process's hold on SQLite's write lock, at
# most (see UnitsOfWork.for_jobs).
JOB_LOCK_WAIT_SECONDS = 1.0


@dataclass(slots=True)
class UnitOfWork:
    """Services take one of these, flush through `session` as they like, and never commit it."""

    session: AsyncSession
    clock: Clock
    vault: Vault
    settings: Settings
    cache: TtlCache
    # The cache's stamp when this unit began, for what it reads to `put` there: a unit that reads one
    # snapshot (REPEATABLE READ, or any SQLite transaction) may see rows from before a change that cleared
    # an entry after the unit's first statement, and a stamp taken later would not know.
    cache_stamp: int = 0
    read_only: bool = False
    writer_turn: asyncio.Lock | None = None
    # Set by the audit trail of a REST write (http/audit_trail.py): what reads the entry's `before` again
    # once the write holds its subject's lock (subject_locked).
    on_subject_locked: Callable[[], Awaitable[None]] | None = None
    # Set by a write about a member whose path and answer do not name them: the member its audit entry names
    # (http/audit_trail.py). A partner redeeming a perk is shown no member id, yet the redeem is about one.
    member_concerned: uuid.UUID | None = None
    _stale: set[str] = field(default_factory=set)

    async def subject_locked(self) -> None:
        """A replace calls this once it holds its subject's lock and before it changes anything: the audit
        entry's `before` is read again here, so it shows what a write committed while this one waited for
        the lock (read as the write began, two replaces at once both showed the subject as neither left
        it). The lock the write takes first anyway: no change to the order in which writes lock."""
        hook, self.on_subject_locked = self.on_subject_locked, None
        if hook is not None:
            await hook()

    async def forget_cached(self, key: str) -> None:
        """This unit of work changes what the cache entry `key` holds: every process forgets it once the
        change commits (the others by a notification, on PostgreSQL), and this one also if it rolls back (a
        value read inside this unit, its own change included, may have been cached meanwhile)."""
        if key not in self._stale:
            self._stale.add(key)
            if self.session.get_bind().dialect.name == "postgresql":
                await announce(self.session, key)

    async def read_one_snapshot(self) -> None:
        """Make every read of this unit of work see the database as it was at its first: on PostgreSQL, whose
        reads each see their own under READ COMMITTED (a read-only unit's are even transactions of their
        own), its transaction is REPEATABLE READ; a SQLite transaction reads one snapshot already. Asked
        once the session has begun a transaction (a statement through it), it changes nothing: the
        transaction keeps what it began with."""
        if self.session.get_bind().dialect.name == "postgresql" and not self.session.in_transaction():
            await hold_connection(self.session)  # a read-only unit's snapshot is on the connection it holds
            await self.session.connection(execution_options={SNAPSHOT: True})

    async def commit(self) -> None:
        await self.session.commit()
        self._forget_stale()

    async def rollback(self) -> None:
        try:
            if self.read_only:
                # It wrote nothing: closing the session ends its transaction, if a statement or a snapshot
                # began one (rolling it back, and giving back the connection it took), without the rollback's
                # restoring of the session's state. A session that began none has nothing to end.
                if self.session.in_transaction():
                    await self.session.close()
            else:
                await self.session.rollback()
        finally:
            self._forget_stale()

    def _forget_stale(self) -> None:
        stale, self._stale = self._stale, set()
        for key in stale:
            self.cache.forget(key)

    async def close(self) -> None:
        try:
            if self.session.in_transaction():
                await self.session.close()
            else:
                # Committed or rolled back, the session holds no connection: what closing it would still do
                # is this, without the greenlet hop every request paid for it.
                self.session.expunge_all()
        finally:
            try:
                await release_connection(self.session)  # a read-only unit's own, on PostgreSQL
            finally:
                if self.writer_turn is not None:
                    self.writer_turn.release()
                    self.writer_turn = None


class UnitsOfWork:
    """Opens units of work. Request handlers, GraphQL mutations, jobs and the CLI all start here."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        vault: Vault,
        settings: Settings,
        *,
        reports: Database | None = None,
    ) -> None:
        self.database = database
        # Where the analytics reports read (LOYALTY_REPORTS_DATABASE_URL, a replica), else the database.
        self.reports = reports or database
        self.clock = clock
        self.vault = vault
        self.settings = settings
        self.cache = TtlCache(settings.cache_seconds)
        # A replica is behind the primary by its lag: what a report reads there of the programme or the
        # ladder is never kept for requests to use (this one keeps nothing).
        self._replica_cache = TtlCache(0)
        # SQLite has one writer at a time. Writers of this process wait their turn here, in order, instead of
        # in SQLite's busy handler, which sleeps and retries and turned into seconds of tail latency under
        # load. Other processes (the CLI) still meet the busy handler.
        self._writer_turn = asyncio.Lock() if database.dialect == "sqlite" else None
        self.job_lock_wait: float | None = None  # a job's wait for SQLite's write lock (for_jobs)

    def for_jobs(self) -> UnitsOfWork:
        """These units of work as the worker's jobs take them: the same database, cache and writer turn, but
        on SQLite a writing unit started without a deadline waits for another process's hold on the write
        lock (a `loyalty-api` command, a shell with a transaction open) for a second at most (half a
        request's time limit, if that is shorter), counted from when it asks for this process's writer turn;
        then `database is locked` (db.outage.database_busy) ends the job's run, and the worker tries it again
        later. It waits holding the writer turn, and with the busy timeout's 30 s every request behind it was
        cut off at its time limit (request_timed_out) though the lock was let go meanwhile: a job can wait, a
        till cannot."""
        jobs = copy.copy(self)
        jobs.job_lock_wait = min(JOB_LOCK_WAIT_SECONDS, self.settings.request_timeout_seconds / 2)
        return jobs

    async def start(
        self,
        *,
        read_only: bool = False,
        for_reports: bool = False,
        deadline: float | None = None,
        lock_deadline: float | None = None,
    ) -> UnitOfWork:
        """A unit of work to commit or roll back, then close. Always close it: on SQLite a writing one
        holds this process's writer turn until then. `for_reports`: a read-only one on the reports'
        database.

        `deadline`, a request's time limit on the event loop's clock, bounds a writer's waits on SQLite: for
        this process's writer turn (TimeoutError once it has passed), then for another process's hold on the
        database's write lock, which the unit takes as it starts (`database is locked` once it has passed:
        db.outage.database_busy). SQLite waits for that lock in the driver's thread, where no asyncio time
        limit can cut the wait short: a unit whose first statement waited there under its endpoint's limit
        went on waiting to the 30 s busy timeout, and the request's answer waited with it. `lock_deadline`
        bounds the wait for the lock alone (settling a request's Idempotency-Key after its time limit, which
        must not fail for want of this process's turn, held by one writer after another for moments)."""
        assert read_only or not for_reports, "a replica takes no writes"
        turn = None if read_only else self._writer_turn
        job_lock_wait = self.job_lock_wait if deadline is None and lock_deadline is None else None
        if turn is not None and job_lock_wait is not None:
            lock_deadline = asyncio.get_running_loop().time() + job_lock_wait  # a job's (for_jobs)
        if turn is not None:
            async with asyncio.timeout_at(deadline):  # None: no limit
                await turn.acquire()
        cache = self._replica_cache if for_reports else self.cache
        database = self.reports if for_reports else self.database
        # On PostgreSQL a read-only unit's session holds a connection of its own from its first direct
        # statement or snapshot, bound to it (db/engine.hold_connection): its direct statements (the till's
        # lookup, the checkout quote) run on that connection without asking the session for one, and the
        # session begins a transaction on it only for an ORM statement or a snapshot (about 75 µs of CPU a
        # unit otherwise: "What the ORM session still costs a read" in benchmarks/README.md). One connection
        # a unit that reads the database, none for one answered from memory.
        uow = UnitOfWork(
            session=database.session(read_only=read_only),
            clock=self.clock,
            vault=self.vault,
            settings=self.settings,
            cache=cache,
            cache_stamp=cache.stamp(),
            read_only=read_only,
            writer_turn=turn,
        )
        lock_deadline = deadline if lock_deadline is None else lock_deadline
        if turn is not None and lock_deadline is not None:
            try:
                await uow.session.connection(execution_options={LOCK_WAIT_UNTIL: lock_deadline})
            except BaseException:
                await uow.close()
                raise
        return uow

    def time_limit(self, deadline: float) -> asyncio.Timeout:
        """An asyncio time limit ending at `deadline`, a request's, for a step that starts a writing unit of
        work with that deadline (claiming an Idempotency-Key) and cannot count on the edge's backstop: on
        SQLite one that never ends. There the unit ends its waits at the deadline itself (`start`), and an
        asyncio limit would cancel SQLite's wait for its write lock without ending it (it goes on in the
        driver's thread, to the 30 s busy timeout, with this process's writer turn held)."""
        return asyncio.timeout_at(None if self._writer_turn is not None else deadline)

    @asynccontextmanager
    async def begin(
        self, *, deadline: float | None = None, lock_deadline: float | None = None
    ) -> AsyncIterator[UnitOfWork]:
        """A writing unit of work: committed when the block ends normally, rolled back otherwise. `deadline`
        and `lock_deadline` as for `start`."""
        uow = await self.start(deadline=deadline, lock_deadline=lock_deadline)
        try:
            yield uow
            await uow.commit()
        except BaseException:
            await uow.rollback()
            raise
        finally:
            await uow.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[UnitOfWork]:
        uow = await self.start(read_only=True)
        try:
            yield uow
        finally:
            await uow.rollback()
            await uow.close()
