"""Many processes on one database: `serve --workers N`, and what one process caches forgotten in the others as
soon as a change made elsewhere commits (PostgreSQL's LISTEN/NOTIFY), well within the cache's time to live."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.auth.principal import Scope
from loyalty_api.cache import TtlCache
from loyalty_api.db.invalidation import CHANNEL, invalidations
from loyalty_api.settings import Settings
from tests.builders import make_key
from tests.conftest import UNLIMITED, bearer
from tests.databases import is_postgres, side_engine
from tests.points.helpers import DEMO_LIKE_PROGRAM
from tests.processes import CLI, clean_env, served

# Longer than any test here runs: only a notification can explain another process seeing a change.
LONG_TTL = "600"
EVENTUALLY_SECONDS = 15.0
LISTENER = "loyalty-api cache invalidations"

postgres_only = pytest.mark.skipif(not is_postgres(), reason="notifications, many API processes: PostgreSQL")


def _env(settings: Settings) -> dict[str, str]:
    assert settings.encryption_key is not None
    return clean_env(
        LOYALTY_DATABASE_URL=settings.database_url,
        LOYALTY_DATABASE_POOLER=settings.database_pooler,
        LOYALTY_LISTEN_DATABASE_URL=settings.listen_url,
        LOYALTY_ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
        LOYALTY_CACHE_SECONDS=LONG_TTL,
    )


async def _eventually(check: Callable[[], Awaitable[bool]]) -> bool:
    """Whether `check` comes true within a few seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EVENTUALLY_SECONDS
    while not await check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _earn_rate(http: httpx.AsyncClient, base: str, key: str) -> str:
    response = await http.get(f"{base}/v1/program", headers=bearer(key))
    assert response.status_code == 200, response.text
    rate: str = response.json()["earn_rate"]
    return rate


@postgres_only
class TestCachesAcrossProcesses:
    async def test_a_programme_change_and_a_revoked_key_reach_another_process_at_once(
        self, app: FastAPI, settings: Settings, tmp_path: Path
    ) -> None:
        admin = await make_key(app, Scope.admin, rate_limit=UNLIMITED)
        till = await make_key(app, Scope.pos, rate_limit=UNLIMITED)
        env = _env(settings)
        with served(tmp_path, env) as (a, _), served(tmp_path, env) as (b, _):
            async with httpx.AsyncClient(timeout=10) as http:
                put = await http.put(f"{a}/v1/program", json=DEMO_LIKE_PROGRAM, headers=bearer(admin))
                assert put.status_code == 200, put.text
                # B reads the programme, and verifies the till's key, and keeps both for ten minutes.
                assert await _earn_rate(http, b, admin) == "1"
                assert (await http.get(f"{b}/v1/program", headers=bearer(till))).status_code == 200

                changed = DEMO_LIKE_PROGRAM | {"earn_rate": "7"}
                put = await http.put(f"{a}/v1/program", json=changed, headers=bearer(admin))
                assert put.status_code == 200, put.text

                async def b_earns_at_the_new_rate() -> bool:
                    return await _earn_rate(http, b, admin) == "7"

                assert await _eventually(b_earns_at_the_new_rate)

                # The CLI is a third process: it revokes the key B holds in memory.
                revoked = await asyncio.to_thread(
                    subprocess.run,
                    [*CLI, "keys", "revoke", till.split("_")[1]],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert revoked.returncode == 0, revoked.stderr

                async def b_refuses_the_key() -> bool:
                    response = await http.get(f"{b}/v1/program", headers=bearer(till))
                    return response.status_code == 401

                assert await _eventually(b_refuses_the_key)

    async def test_every_process_of_serve_workers_sees_a_change_at_once(
        self, app: FastAPI, settings: Settings, tmp_path: Path
    ) -> None:
        admin = await make_key(app, Scope.admin, rate_limit=UNLIMITED)
        with served(tmp_path, _env(settings), "--workers", "2") as (base, _):
            # A connection per request: the two processes take turns accepting them.
            async with httpx.AsyncClient(timeout=10) as http:
                assert (await http.get(f"{base}/readyz")).json()["status"] == "ready"
                put = await http.put(f"{base}/v1/program", json=DEMO_LIKE_PROGRAM, headers=bearer(admin))
                assert put.status_code == 200, put.text
            for _ in range(20):
                async with httpx.AsyncClient(timeout=10) as http:
                    assert await _earn_rate(http, base, admin) == "1"
            async with httpx.AsyncClient(timeout=10) as http:
                changed = DEMO_LIKE_PROGRAM | {"earn_rate": "3"}
                put = await http.put(f"{base}/v1/program", json=changed, headers=bearer(admin))
                assert put.status_code == 200, put.text

            async def every_answer_is_new() -> bool:
                for _ in range(20):
                    async with httpx.AsyncClient(timeout=10) as http:
                        if await _earn_rate(http, base, admin) != "3":
                            return False
                return True

            assert await _eventually(every_answer_is_new)

    async def test_a_process_that_lost_its_listening_connection_forgets_everything_once_back(
        self, settings: Settings
    ) -> None:
        """It may have missed notifications while it was not listening."""
        cache = TtlCache(600)
        cache.put("program", "cached", cache.stamp())
        engine = side_engine(settings)
        try:
            async with invalidations(settings, cache), engine.connect() as other:
                await other.execution_options(isolation_level="AUTOCOMMIT")

                async def cleared() -> bool:
                    return cache.get("program") is None

                assert await _eventually(cleared)  # once it began listening
                cache.put("program", "cached", cache.stamp())

                ended = await other.scalar(
                    text(
                        "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = :name"
                    ),
                    {"name": LISTENER},
                )
                assert ended
                assert await _eventually(cleared)

                # And it listens again.
                cache.put("tier_ladder", "cached", cache.stamp())
                await other.execute(text("SELECT pg_notify(:channel, 'tier_ladder')"), {"channel": CHANNEL})

                async def forgotten() -> bool:
                    return cache.get("tier_ladder") is None

                assert await _eventually(forgotten)
        finally:
            await engine.dispose()


@postgres_only
class TestMetricsAcrossProcesses:
    async def test_every_scrape_counts_the_requests_of_every_process(
        self, app: FastAPI, settings: Settings, tmp_path: Path
    ) -> None:
        """A scrape reaches one process of `serve --workers`: it must still see what all of them answered."""
        counted = 'loyalty_http_requests_total{method="GET",route="/readyz",status="200"} 12.0'

        async def scrape(base: str) -> str:
            async with httpx.AsyncClient(timeout=10) as http:  # a connection each: the processes take turns
                response = await http.get(f"{base}/metrics")
                assert response.status_code == 200, response.text
                return response.text

        temporary = tmp_path / "tmp"
        temporary.mkdir()
        with served(tmp_path, _env(settings) | {"TMPDIR": str(temporary)}, "--workers", "2") as (base, _):
            assert [p.name.startswith("loyalty-metrics-") for p in temporary.iterdir()] == [True]
            for _ in range(12):
                async with httpx.AsyncClient(timeout=10) as http:
                    assert (await http.get(f"{base}/readyz")).status_code == 200

            async def all_counted() -> bool:  # a request is counted as its answer goes out
                return counted in await scrape(base)

            assert await _eventually(all_counted)
            scrapes = [await scrape(base) for _ in range(10)]
        for exposition in scrapes:
            assert counted in exposition
            assert "loyalty_database_up 1.0" in exposition
        assert list(temporary.iterdir()) == []  # the processes' files go with them


class TestServeWorkers:
    def test_sqlite_is_served_by_one_process(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [*CLI, "serve", "--workers", "2"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "--workers needs PostgreSQL" in result.stderr
        assert not (tmp_path / "loyalty.db").exists()  # refused before anything was done

    @pytest.mark.parametrize("count", ["0", "257"])
    def test_a_process_count_is_a_number_from_1(self, tmp_path: Path, count: str) -> None:
        result = subprocess.run(
            [*CLI, "serve", "--workers", count],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "from 1 to 256" in result.stderr
