"""The `loyalty-api` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text

from loyalty_api import crypto
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.db.engine import create_engine
from loyalty_api.db.migrations import head_revision, upgrade
from loyalty_api.demo.data import demo_members
from loyalty_api.settings import Settings, check_database_url
from loyalty_api.worker.schedule import ALL_JOBS
from tests.builders import unique_phone
from tests.conftest import bearer
from tests.databases import fresh_database, is_postgres, listen_url, lock_waiters, server_url, side_engine
from tests.processes import CLI, served
from tests.processes import clean_env as _clean_env
from tests.processes import free_port as _free_port


@contextmanager
def served_demo(folder: Path) -> Iterator[tuple[str, Path]]:
    """`loyalty-api serve --demo` started in `folder` as a user starts it; yields its base URL and its log."""
    with served(folder, _clean_env(), "--demo") as (base, log):
        yield base, log


class TestServeDemo:
    def test_serve_demo_from_an_empty_folder(self, tmp_path: Path) -> None:
        with served_demo(tmp_path) as (base, log):
            assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
            docs = httpx.get(f"{base}/docs")
            assert docs.status_code == 200 and "swagger" in docs.text.lower()
            graphiql = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
            assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()

            printed = log.read_text(encoding="utf-8")
            match = re.search(r"^\s+pos\s+(lk_\S+)$", printed, re.MULTILINE)
            assert match, printed
            pos_key = match.group(1)
            person = demo_members()[0]
            found = httpx.get(
                f"{base}/v1/members/lookup", params={"phone": person.phone}, headers=bearer(pos_key)
            )
            assert found.status_code == 200, found.text
            assert found.json()["name"] == person.name
            assert found.json()["tier"]["name"] == "普通会员"
            assert found.json()["points"] == 500  # the demo's opening balance
            earned = httpx.post(
                f"{base}/v1/members/{found.json()['id']}/earn",
                json={"order_ref": "DEMO-1", "amount": {"amount": 10_000, "currency": "CNY"}},
                headers=bearer(pos_key),
            )
            assert earned.status_code == 200, earned.text
            assert earned.json()["points_earned"] >= 100  # 1 point per yuan, more on bonus days
            assert earned.json()["balance"] == 500 + earned.json()["points_earned"]
            ladder = httpx.get(f"{base}/v1/tiers", headers=bearer(pos_key)).json()["items"]
            assert [t["name"] for t in ladder] == ["普通会员", "银卡", "金卡", "钻石"]
            # HEAD as a monitor sends it: GET's status and headers, no body, and uvicorn keeps the connection
            ladder_head = httpx.head(f"{base}/v1/tiers", headers=bearer(pos_key))
            assert ladder_head.status_code == 200 and ladder_head.content == b""
            ladder_get = httpx.get(f"{base}/v1/tiers", headers=bearer(pos_key))
            assert ladder_head.headers["content-length"] == ladder_get.headers["content-length"]
            big_spender = httpx.get(
                f"{base}/v1/members/lookup",
                params={"phone": demo_members()[4].phone},
                headers=bearer(pos_key),
            ).json()
            assert big_spender["tier"]["name"] == "钻石"
            perks = httpx.get(f"{base}/v1/members/{big_spender['id']}/benefits", headers=bearer(pos_key))
            assert {"percent_discount", "free_shipping", "birthday_gift"} <= {
                b["kind"] for b in perks.json()["benefits"]
            }
        assert (tmp_path / "loyalty.db").exists()
        assert person.phone not in log.read_text(encoding="utf-8")

    def test_serve_demo_again_after_its_database_was_deleted_prints_keys_that_work(
        self, tmp_path: Path
    ) -> None:
        def pos_key(log: Path) -> str:
            match = re.search(r"^\s+pos\s+(lk_\S+)$", log.read_text(encoding="utf-8"), re.MULTILINE)
            assert match, log.read_text(encoding="utf-8")
            return match.group(1)

        def lookup(base: str, key: str) -> httpx.Response:
            return httpx.get(
                f"{base}/v1/members/lookup", params={"phone": demo_members()[0].phone}, headers=bearer(key)
            )

        with served_demo(tmp_path) as (base, log):
            first = pos_key(log)
            assert lookup(base, first).status_code == 200
        with served_demo(tmp_path) as (base, log):  # restarted: the same keys
            assert pos_key(log) == first
            assert lookup(base, first).status_code == 200
        (tmp_path / "loyalty.db").unlink()
        with served_demo(tmp_path) as (base, log):
            second = pos_key(log)
            assert second != first
            assert lookup(base, second).status_code == 200, log.read_text(encoding="utf-8")
            assert lookup(base, first).status_code == 401
            assert "not in this database" in log.read_text(encoding="utf-8")

    def test_serve_demo_again_after_a_demo_member_was_erased(self, tmp_path: Path) -> None:
        # Erasure frees the member's phone, so the re-run enrols them anew; their demo order is still there.
        # The re-run stopped at that order (order_belongs_to_another_member) and the service never came up.
        person = demo_members()[1]
        with served_demo(tmp_path) as (base, log):
            match = re.search(r"^\s+admin\s+(lk_\S+)$", log.read_text(encoding="utf-8"), re.MULTILINE)
            assert match, log.read_text(encoding="utf-8")
            admin = bearer(match.group(1))
            found = httpx.get(f"{base}/v1/members/lookup", params={"phone": person.phone}, headers=admin)
            assert found.status_code == 200, found.text
            erased = httpx.post(f"{base}/v1/members/{found.json()['id']}/erase", headers=admin)
            assert erased.status_code == 200, erased.text
            members_before = httpx.get(f"{base}/v1/members", params={"limit": 200}, headers=admin).json()
        with served_demo(tmp_path) as (base, log):
            assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
            members_after = httpx.get(f"{base}/v1/members", params={"limit": 200}, headers=admin).json()
            assert len(members_after["items"]) == len(members_before["items"])  # nobody enrolled twice
            again = httpx.get(f"{base}/v1/members/lookup", params={"phone": person.phone}, headers=admin)
            assert again.status_code == 404, again.text

    @pytest.mark.parametrize(
        "kept", ['{"encryption_key": "abc', "[]", '{"encryption_key": 7}', '{"encryption_key": "short"}']
    )
    def test_a_damaged_demo_state_file_is_one_line(self, tmp_path: Path, kept: str) -> None:
        """Cut short by a crash as it was written, or edited by hand: a traceback before, for each command."""
        (tmp_path / ".loyalty-demo.json").write_text(kept)
        for command in (["demo"], ["serve", "--demo", "--port", str(_free_port())]):
            result = _cli(_clean_env(), *command, cwd=tmp_path)
            assert (result.returncode, result.stdout) == (2, ""), command
            assert result.stderr.startswith("loyalty-api: .loyalty-demo.json is damaged ("), result.stderr
            assert result.stderr.rstrip().endswith("delete it, and ./loyalty.db, to start the demo afresh")
            assert len(result.stderr.splitlines()) == 1 and "short" not in result.stderr
            assert list(tmp_path.iterdir()) == [tmp_path / ".loyalty-demo.json"]

    def test_serve_without_an_encryption_key_says_how_to_get_one(self, tmp_path: Path) -> None:
        result = _cli(_clean_env(), "serve", "--port", str(_free_port()), cwd=tmp_path)
        assert result.returncode == 2
        assert "LOYALTY_ENCRYPTION_KEY" in result.stderr

    @pytest.mark.parametrize("command", [["keys", "list"], ["jobs", "expire-points"], ["serve"]])
    def test_a_command_in_the_demos_folder_without_a_key_says_where_the_demos_key_is(
        self, tmp_path: Path, command: list[str]
    ) -> None:
        """After `serve --demo`, `keys create` or `jobs …` there said to make a key (`serve --demo` makes a
        local one), which the demo had made: the user was sent round in a circle, never to the file."""
        key = crypto.generate_key()
        (tmp_path / ".loyalty-demo.json").write_text(json.dumps({"encryption_key": key}), encoding="utf-8")
        result = _cli(_clean_env(), *command, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            "loyalty-api: LOYALTY_ENCRYPTION_KEY is not set. The demo's is in .loyalty-demo.json: to run "
            "this command on the demo's database, export it first, as in `export LOYALTY_ENCRYPTION_KEY="
            '$(python3 -c \'import json; print(json.load(open(".loyalty-demo.json"))'
            '["encryption_key"])\')`\n'
        )
        assert key not in result.stderr and list(tmp_path.iterdir()) == [tmp_path / ".loyalty-demo.json"]

    def test_serve_on_a_port_in_use_says_so_before_it_sets_anything_up(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = _cli(_clean_env(), "serve", "--demo", "--port", str(port), cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")  # no demo keys shown for a service never up
        assert result.stderr.startswith(f"loyalty-api: cannot listen on 127.0.0.1:{port} ")
        assert "--port" in result.stderr and "Traceback" not in result.stderr
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("port", ["70000", "-1", "http"])
    def test_serve_on_a_port_there_is_not_says_so(self, tmp_path: Path, port: str) -> None:
        """70000 was taken, and the service listened on 4464 (70000 - 65536) without a word."""
        result = _cli(_clean_env(), "serve", "--port", port, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.splitlines()[-1] == (
            "loyalty-api serve: error: argument --port: a port is a number from 0 to 65535"
        )
        assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []

    def test_serve_on_a_host_there_is_not_names_the_host(self, tmp_path: Path) -> None:
        """A host name nothing resolves was refused with advice to pick another port."""
        result = _cli(_clean_env(), "serve", "--demo", "--host", "nosuchhost.invalid", cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith("loyalty-api: cannot listen on nosuchhost.invalid:8000 ("), (
            result.stderr
        )
        assert result.stderr.rstrip().endswith("name this machine or one of its addresses with --host")
        assert "Traceback" not in result.stderr


class TestDemoStateFile:
    """.loyalty-demo.json holds the demo's encryption key and API keys."""

    @staticmethod
    def _demo(
        folder: Path, env: dict[str, str] | None = None, **limits: int
    ) -> subprocess.CompletedProcess[str]:
        """`loyalty-api demo` in `folder` under a umask of 0 (files as readable as the program asks), and with
        RLIMIT_FSIZE at `file_bytes` if given: a write past it fails as on a full disk."""

        def start() -> None:
            os.umask(0)
            if "file_bytes" in limits:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))

        return subprocess.run(
            [*CLI, "demo"],
            cwd=folder,
            env=env or _clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=start,
        )

    def test_is_never_readable_by_others(self, tmp_path: Path) -> None:
        """It was written with the umask's permissions and chmod-ed to 0600 afterwards, into the same file: a
        crash in between left the keys readable by every user, and whoever had opened the file while it was
        readable (an earlier version's 0644, a restore from backup) read the new API keys through it."""
        state = tmp_path / ".loyalty-demo.json"
        state.write_text(json.dumps({"encryption_key": crypto.generate_key()}))
        state.chmod(0o644)
        with state.open(encoding="utf-8") as opened_by_another_user:
            result = self._demo(tmp_path)
            assert result.returncode == 0, result.stderr
            assert "api_keys" not in opened_by_another_user.read()
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        assert "api_keys" in json.loads(state.read_text(encoding="utf-8"))

        state.unlink()  # from nothing, under a umask of 0
        (tmp_path / "loyalty.db").unlink()
        result = self._demo(tmp_path)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(state.stat().st_mode) == 0o600

    def test_a_write_cut_short_leaves_the_previous_file_whole(self, tmp_path: Path) -> None:
        """A full disk as it was written left a truncated file: the demo then refused to start until it was
        deleted, with the database its key opens."""
        state = tmp_path / ".loyalty-demo.json"
        kept = {"encryption_key": crypto.generate_key(), "note": "x" * 16_000_000}
        state.write_text(json.dumps(kept))
        result = self._demo(tmp_path, file_bytes=12_000_000)  # above the database's size, below the file's
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.splitlines()[-1] == (
            "loyalty-api: cannot write .loyalty-demo.json (File too large): "
            "free some space and run the demo again"
        )
        assert json.loads(state.read_text(encoding="utf-8")) == kept
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".loyalty-demo")] == [state.name]

    @pytest.mark.skipif(
        not is_postgres(), reason="the limit on file sizes would stop an SQLite database first: it is a file"
    )
    async def test_a_generated_key_is_kept_before_anything_is_encrypted_with_it(self, tmp_path: Path) -> None:
        """The key `demo` generates was stored only with the API keys, after the seeding: a run stopped in
        between (Ctrl-C in the seconds it seeds, a full disk) lost the key to the demo members it had
        enrolled, and every later start on that database refused the next key it generated."""
        async with fresh_database(tmp_path, "demo") as url:
            env = _clean_env(LOYALTY_DATABASE_URL=url, LOYALTY_LISTEN_DATABASE_URL=listen_url(url) or url)
            cut = self._demo(tmp_path, env, file_bytes=200)  # the key alone fits; with the API keys, not
            assert (cut.returncode, cut.stdout) == (2, ""), cut.stderr
            kept = json.loads((tmp_path / ".loyalty-demo.json").read_text(encoding="utf-8"))
            opened = _cli(env | {"LOYALTY_ENCRYPTION_KEY": kept["encryption_key"]}, "jobs", "expire-points")
            assert opened.returncode == 0, opened.stderr  # it opens the members the run enrolled
            again = self._demo(tmp_path, env)
            assert again.returncode == 0, again.stderr
            assert (
                json.loads((tmp_path / ".loyalty-demo.json").read_text(encoding="utf-8"))["encryption_key"]
                == kept["encryption_key"]
            )


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """The CLI pointed at the test database."""
    assert settings.encryption_key is not None
    return _clean_env(
        LOYALTY_DATABASE_URL=settings.database_url,
        LOYALTY_DATABASE_POOLER=settings.database_pooler,
        LOYALTY_LISTEN_DATABASE_URL=settings.listen_url,
        LOYALTY_ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
    )


def _cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


class TestKeys:
    _run = staticmethod(_cli)

    async def test_create_list_revoke(
        self, app: FastAPI, client: httpx.AsyncClient, cli_env: dict[str, str]
    ) -> None:
        created = self._run(cli_env, "keys", "create", "--name", "till 7", "--scope", "pos")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        assert key.startswith("lk_")
        enrolled = await client.post("/v1/members", json={"phone": unique_phone()}, headers=bearer(key))
        assert enrolled.status_code == 201

        listed = self._run(cli_env, "keys", "list")
        prefix = key.split("_")[1]
        [row] = [line.split("\t") for line in listed.stdout.splitlines() if line.startswith(prefix)]
        assert row[:5] == [prefix, "till 7", "pos", "-", "default"]  # prefix, name, scopes, partner, rate
        # Then created (by the CLI's clock), expires, last used (by the app's clock), networks and status.
        assert row[6:] == ["never", "2026-03-16T10:00:00Z", "any", "active"]
        assert key.split("_", 2)[2] not in listed.stdout

        revoked = self._run(cli_env, "keys", "revoke", prefix)
        assert revoked.returncode == 0, revoked.stderr
        # The API process remembers a verified key for settings.cache_seconds: the revocation, made by
        # another process, must take effect within that time.
        deadline = time.monotonic() + app.state.units.settings.cache_seconds + 1
        while True:
            refused = await client.post("/v1/members", json={"phone": unique_phone()}, headers=bearer(key))
            if refused.status_code != 201 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert refused.status_code == 401

    async def test_a_key_is_revoked_by_the_start_of_its_token_or_the_whole_token(
        self, client: httpx.AsyncClient, cli_env: dict[str, str]
    ) -> None:
        """A leaked key is pasted as it was found: `lk_<prefix>` or the whole token names the key too."""
        for named in (lambda token: token[: token.index("_", 3)], lambda token: token):
            created = self._run(cli_env, "keys", "create", "--name", "leaked", "--scope", "pos")
            key = created.stdout.strip().splitlines()[-1]
            revoked = self._run(cli_env, "keys", "revoke", named(key))
            assert revoked.returncode == 0, revoked.stderr
            assert revoked.stdout.strip() == f"revoked {key.split('_')[1]}"
            assert key.split("_", 2)[2] not in revoked.stdout + revoked.stderr
            listed = self._run(cli_env, "keys", "list")
            [row] = [line for line in listed.stdout.splitlines() if line.startswith(key.split("_")[1])]
            assert row.endswith("\trevoked")

    async def test_a_partner_key_acts_for_its_partner_alone(
        self, client: httpx.AsyncClient, admin_key: str, cli_env: dict[str, str]
    ) -> None:
        made = await client.post(
            "/v1/partners", json={"code": "bookshop", "name": "Bookshop"}, headers=bearer(admin_key)
        )
        assert made.status_code == 201, made.text
        partner_id = made.json()["id"]

        # the operator names the partner by the code they gave it, or by its id
        by_code, by_id = (
            self._run(cli_env, "keys", "create", "--name", "Bookshop", "--scope", "partner", "--partner", ref)
            for ref in ("bookshop", partner_id)
        )
        listed = self._run(cli_env, "keys", "list")
        for created in (by_code, by_id):
            assert created.returncode == 0, created.stderr
            key = created.stdout.strip().splitlines()[-1]
            assert key.startswith("lk_")
            prefix = key.split("_")[1]
            [row] = [line.split("\t") for line in listed.stdout.splitlines() if line.startswith(prefix)]
            assert row[1:4] == ["Bookshop", "partner", partner_id]

        # it reads its own partner's statement, and nothing of ours
        period = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        statement = await client.get("/v1/partner/settlements", params=period, headers=bearer(key))
        assert (statement.status_code, statement.json()["partner"]) == (200, "bookshop")
        refused = await client.get("/v1/partners", headers=bearer(key))
        assert (refused.status_code, refused.json()["code"]) == (403, "scope_not_allowed")

    def test_a_partner_key_needs_a_registered_partner(self, cli_env: dict[str, str]) -> None:
        unknown = self._run(
            cli_env, "keys", "create", "--name", "x", "--scope", "partner", "--partner", str(uuid.uuid4())
        )
        assert unknown.returncode != 0
        assert "lk_" not in unknown.stdout
        assert "partner" in unknown.stderr.lower()
        alone = self._run(cli_env, "keys", "create", "--name", "x", "--scope", "partner")
        assert alone.returncode != 0
        assert "lk_" not in alone.stdout
        unknown_code = self._run(
            cli_env, "keys", "create", "--name", "x", "--scope", "partner", "--partner", "nobody"
        )
        assert unknown_code.returncode != 0
        assert "partner" in unknown_code.stderr.lower()
        assert self._run(cli_env, "keys", "list").stdout.count("\tx\t") == 0

    def test_a_rate_past_what_the_limiter_counts_is_one_line(self, cli_env: dict[str, str]) -> None:
        """99999999999999999999 a second made a key: Redis' counting reads a rate as a double, another number
        there. Refused as the API refuses it, in one line, and no key is made."""
        vast = "99999999999999999999/second"
        result = self._run(cli_env, "keys", "create", "--name", "vast", "--scope", "pos", "--rate", vast)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith("loyalty-api: rate_limit: must be one rate such as"), result.stderr
        assert "2^53 - 1" in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "\tvast\t" not in self._run(cli_env, "keys", "list").stdout

    def test_unknown_scope_is_refused(self, cli_env: dict[str, str]) -> None:
        result = self._run(cli_env, "keys", "create", "--name", "x", "--scope", "root")
        assert result.returncode == 2
        assert "invalid choice" in result.stderr


class TestJobs:
    def test_the_help_names_every_job_and_an_unknown_one_is_refused(self, cli_env: dict[str, str]) -> None:
        """The names are read from the schedule only when `jobs` is used: each is still offered and taken."""
        helped = _cli(cli_env, "jobs", "--help")
        assert helped.returncode == 0, helped.stderr
        listed = " ".join(helped.stdout.split()).split("one of: ")[1].split(" options:")[0]
        assert listed.split(", ") == [job.name for job in ALL_JOBS]
        refused = _cli(cli_env, "jobs", "expire-point")
        assert refused.returncode == 2
        assert "invalid choice: 'expire-point'" in refused.stderr and "'expire-points'" in refused.stderr

    def test_the_other_commands_do_not_load_the_jobs(self, cli_env: dict[str, str]) -> None:
        """Every job's module is half a second of imports: `keys`, `migrate` or `serve` would start that much
        later for a list of names only `jobs` uses."""
        parsed = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from loyalty_api.cli import build_parser; "
                "build_parser().parse_args(['migrate']); print('loyalty_api.worker.schedule' in sys.modules)",
            ],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (parsed.returncode, parsed.stdout, parsed.stderr) == (0, "False\n", "")

    async def test_expire_points_job_from_the_command_line(
        self, app: FastAPI, client: httpx.AsyncClient, cli_env: dict[str, str], clock: FrozenClock
    ) -> None:
        from tests.builders import enrol, make_key
        from tests.points.helpers import earn, points, set_program

        admin = await make_key(app, Scope.admin)
        await set_program(client, admin, expiry_months=12)
        member = await enrol(client, admin)
        clock.set(datetime(2024, 1, 10, tzinfo=UTC))  # earned long ago: due well before today's real date
        await earn(client, admin, member["id"], 12_300)
        result = _cli(cli_env, "jobs", "expire-points")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("expire-points: 123 in ")
        assert (await points(client, admin, member["id"]))["balance"] == 0
        again = _cli(cli_env, "jobs", "expire-points")
        assert again.stdout.startswith("expire-points: 0 in ")


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has the file `path` open."""
    try:
        return any(fd.resolve() == path for fd in Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:  # it has ended, or closed the file meanwhile
        return False


def _sqlite_file(settings: Settings) -> Path:
    return Path(make_url(settings.database_url).database or "").resolve()


@asynccontextmanager
async def _writes_held(settings: Settings) -> AsyncIterator[Callable[[int], Awaitable[bool]]]:
    """Writes to the API keys held back, as another process holding the lock holds them, until the block ends.
    Yields whether the process of an id has come as far as the database: on PostgreSQL its insert waits for
    the lock; on SQLite, whose waits no other process can see, it has the database's file open."""
    if not is_postgres():
        path = _sqlite_file(settings)
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")

            async def opened(pid: int) -> bool:
                return _has_open(pid, path)

            yield opened
        finally:
            holder.close()
        return
    engine = side_engine(settings)
    try:
        async with engine.connect() as holder, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            await holder.execute(text("LOCK TABLE api_keys IN EXCLUSIVE MODE"))

            async def waiting(_: int) -> bool:
                return await lock_waiters(watcher) > 0

            try:
                yield waiting
            finally:
                await holder.rollback()
    finally:
        await engine.dispose()


class TestInterrupted:
    async def test_ctrl_c_during_a_command_ends_it_quietly_as_interrupted(
        self, app: FastAPI, settings: Settings, cli_env: dict[str, str]
    ) -> None:
        """Ctrl-C while `keys create` waits for the database (a lock another process holds): the command
        ends as an interrupted program does (the shell's status 130), with no traceback, and makes no key."""
        async with _writes_held(settings) as arrived:
            process = await asyncio.create_subprocess_exec(
                *CLI,
                *("keys", "create", "--name", "interrupted", "--scope", "pos"),
                env=cli_env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                for _ in range(3000):
                    if process.returncode is not None or await arrived(process.pid):
                        break
                    await asyncio.sleep(0.02)
                assert process.returncode is None, (await process.communicate())[1].decode()
                process.send_signal(signal.SIGINT)
                # On SQLite the command's wait for the lock runs out first (its busy timeout, 30 s).
                out, err = await asyncio.wait_for(process.communicate(), timeout=120)
            finally:
                if process.returncode is None:
                    process.kill()
        assert process.returncode == -signal.SIGINT, (process.returncode, err.decode())
        assert (out, err) == (b"", b"")
        assert "\tinterrupted\t" not in _cli(cli_env, "keys", "list").stdout


class TestAnotherEncryptionKey:
    async def test_a_key_that_does_not_open_the_members_data_is_refused_at_start(
        self, client: httpx.AsyncClient, admin_key: str, cli_env: dict[str, str]
    ) -> None:
        """A new key made where the backed-up one was meant: the service said ready, answered 500 for every
        member, missed every phone lookup and enrolled the same phone a second time."""
        from tests.builders import enrol

        await enrol(client, admin_key)
        other = cli_env | {"LOYALTY_ENCRYPTION_KEY": _cli(cli_env, "encryption-key").stdout.strip()}
        for command in (["jobs", "expire-points"], ["serve", "--port", str(_free_port())]):
            result = _cli(other, *command)
            assert (result.returncode, result.stdout) == (2, ""), command
            assert result.stderr.splitlines()[-1] == (  # serve logs its SQLite migration first
                "loyalty-api: LOYALTY_ENCRYPTION_KEY does not open the members' personal data in the "
                "database, which another key encrypted: set the key it was made with (from your backup)"
            )
            assert other["LOYALTY_ENCRYPTION_KEY"] not in result.stderr and "Traceback" not in result.stderr
        assert _cli(cli_env, "jobs", "expire-points").returncode == 0  # its own key opens it

    @pytest.mark.parametrize("key", ["another key", "the demo's own, made in another folder"])
    async def test_the_demo_on_a_database_another_key_encrypted_seeds_nothing_and_prints_no_keys(
        self, client: httpx.AsyncClient, admin_key: str, cli_env: dict[str, str], tmp_path: Path, key: str
    ) -> None:
        """`demo` run again from another folder (where it makes a key of its own) or with another key: it
        printed four new demo keys and answered 0, though `serve --demo` and every other command then refused
        the key, and a state file kept a key that opens nothing."""
        from tests.builders import enrol

        await enrol(client, admin_key)
        env = {name: value for name, value in cli_env.items() if name != "LOYALTY_ENCRYPTION_KEY"}
        if key == "another key":
            env["LOYALTY_ENCRYPTION_KEY"] = _cli(cli_env, "encryption-key").stdout.strip()
        listed = _cli(cli_env, "keys", "list").stdout
        result = _cli(env, "demo", cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, ""), result.stdout
        assert result.stderr.splitlines()[-1] == (
            "loyalty-api: LOYALTY_ENCRYPTION_KEY does not open the members' personal data in the "
            "database, which another key encrypted: set the key it was made with (from your backup)"
        )
        assert "Traceback" not in result.stderr
        assert _cli(cli_env, "keys", "list").stdout == listed  # no demo key made

    @pytest.mark.parametrize("stored", ["webhook_endpoint", "perk_codes", "idempotency_reply"])
    async def test_a_key_that_does_not_open_the_other_encrypted_values_is_refused_at_start(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, cli_env: dict[str, str], stored: str
    ) -> None:
        """No member's personal data left (all erased, or none enrolled yet), but a webhook endpoint's signing
        secret, a partner's perk codes or a recorded Idempotency-Key reply, encrypted with the same key: the
        check looked at members only, so another key started, and then every delivery to the endpoint failed
        ("internal error: DecryptionFailed", until it was disabled), every code handed out or shown failed,
        and every retry with the key was a 500."""
        from tests.builders import enrol

        member = await enrol(client, admin_key)
        sent = {"Idempotency-Key": "erase-1"} if stored == "idempotency_reply" else {}
        erased = await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key, **sent))
        assert erased.status_code == 200, erased.text
        await _STORES[stored](app, client, admin_key)
        other = cli_env | {"LOYALTY_ENCRYPTION_KEY": _cli(cli_env, "encryption-key").stdout.strip()}
        for command in (["jobs", "expire-points"], ["serve", "--port", str(_free_port())]):
            result = _cli(other, *command)
            assert (result.returncode, result.stdout) == (2, ""), (command, result.stderr)
            assert result.stderr.splitlines()[-1] == (  # serve logs its SQLite migration first
                f"loyalty-api: LOYALTY_ENCRYPTION_KEY does not open {_SEALED[stored]} in the database, which "
                "another key encrypted: set the key it was made with (from your backup)"
            )
            assert other["LOYALTY_ENCRYPTION_KEY"] not in result.stderr and "Traceback" not in result.stderr
        started = _cli(cli_env, "jobs", "expire-points")  # its own key opens them
        assert (started.returncode, started.stderr) == (0, "")


async def _add_webhook_endpoint(app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> None:
    from tests.webhooks.endpoint_helpers import create_endpoint

    await create_endpoint(client, admin_key)


async def _upload_perk_codes(app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> None:
    from tests.builders import make_partner_key
    from tests.points.helpers import set_program
    from tests.subscriptions.helpers import add_plan

    await set_program(client, admin_key)
    made = await client.post(
        "/v1/partners", json={"code": "meals", "name": "Meals"}, headers=bearer(admin_key)
    )
    assert made.status_code == 201, made.text
    key = await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]))
    perk = {"partner": "meals", "name": "Meal pass", "source": "pool", "perk": "meal-pass"}
    await add_plan(client, admin_key, "meals", partner_perks=[perk])
    uploaded = await client.post(
        "/v1/partner/perk-codes", json={"perk": "meal-pass", "codes": ["MEAL-1"]}, headers=bearer(key)
    )
    assert uploaded.status_code == 200, uploaded.text


async def _nothing_more(app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> None:
    """The erasure's own reply, recorded under its Idempotency-Key, is the one encrypted value."""


# What the refusal names: the operator looks for the key that sealed it.
_SEALED = {
    "webhook_endpoint": "the webhook endpoints' signing secrets",
    "perk_codes": "the partners' pooled perk codes",
    "idempotency_reply": "the recorded Idempotency-Key replies",
}
_STORES = {
    "webhook_endpoint": _add_webhook_endpoint,
    "perk_codes": _upload_perk_codes,
    "idempotency_reply": _nothing_more,
}


class TestInit:
    async def test_init_sets_up_a_programme_an_entry_tier_and_an_admin_key(
        self, app: FastAPI, client: httpx.AsyncClient, cli_env: dict[str, str]
    ) -> None:
        args = ("init", "--currency", "EUR", "--timezone", "Europe/Berlin", "--entry-tier", "Mitglied")
        result = _cli(cli_env, *args)
        assert result.returncode == 0, result.stderr
        key = result.stdout.strip().splitlines()[-1]
        assert key.startswith("lk_")

        programme = (await client.get("/v1/program", headers=bearer(key))).json()
        assert (programme["currency"], programme["timezone"]) == ("EUR", "Europe/Berlin")
        ladder = (await client.get("/v1/tiers", headers=bearer(key))).json()["items"]
        assert [(t["name"], t["rank"], t["threshold"]) for t in ladder] == [("Mitglied", 0, 0)]
        member = await client.post("/v1/members", json={"phone": unique_phone()}, headers=bearer(key))
        assert member.status_code == 201, member.text
        earned = await client.post(
            f"/v1/members/{member.json()['id']}/earn",
            json={"order_ref": "B-1", "amount": {"amount": 1_250, "currency": "EUR"}},
            headers=bearer(key),
        )
        assert earned.status_code == 200, earned.text
        assert earned.json()["points_earned"] == 12  # 1 point per euro, rounded down
        audit = (await client.get("/v1/audit-events", headers=bearer(key))).json()
        created = [e for e in audit["items"] if e["channel"] == "cli"]
        assert [(e["action"], e["subject_id"]) for e in created] == [("keys_create", key.split("_")[1])]

        again = _cli(cli_env, *args)
        assert again.returncode == 2
        assert "already" in again.stderr

    def test_init_refuses_settings_the_api_would_refuse(self, cli_env: dict[str, str]) -> None:
        result = _cli(cli_env, "init", "--currency", "euro", "--timezone", "Mars/Olympus")
        assert result.returncode == 2
        assert "currency" in result.stderr and "timezone" in result.stderr
        assert "Value error" not in result.stderr

    @pytest.mark.parametrize("name", ["", "A\tB", "x" * 101])
    def test_names_are_refused_as_the_api_refuses_them(self, cli_env: dict[str, str], name: str) -> None:
        for args in (
            ("init", "--currency", "EUR", "--timezone", "Europe/Berlin", "--entry-tier", name),
            ("init", "--currency", "EUR", "--timezone", "Europe/Berlin", "--key-name", name),
            ("keys", "create", "--scope", "pos", "--name", name),
        ):
            result = _cli(cli_env, *args)
            assert result.returncode == 2, args
            assert "1 to 100 characters" in result.stderr and "Traceback" not in result.stderr

    def test_a_key_name_is_trimmed_as_the_api_trims_it(self, app: FastAPI, cli_env: dict[str, str]) -> None:
        """The API stores " Till 9 " as "Till 9" and refuses a blank name; the CLI kept both as written."""
        for args in (
            ("keys", "create", "--scope", "pos", "--name", "   "),
            ("init", "--currency", "EUR", "--timezone", "Europe/Berlin", "--key-name", " \u3000 "),
        ):
            result = _cli(cli_env, *args)
            assert (result.returncode, result.stdout) == (2, ""), args
            assert "1 to 100 characters" in result.stderr and "Traceback" not in result.stderr
        created = _cli(cli_env, "keys", "create", "--scope", "pos", "--name", " Till 9 ")
        assert created.returncode == 0, created.stderr
        assert created.stdout.startswith("created key 'Till 9' with scopes pos")
        prefix = created.stdout.splitlines()[-1].split("_")[1]
        listed = _cli(cli_env, "keys", "list").stdout.splitlines()
        assert [line.split("\t")[:2] for line in listed if line.startswith(prefix)] == [[prefix, "Till 9"]]


class TestGraphQLSchema:
    def test_prints_the_committed_sdl_without_a_database_or_key(self, tmp_path: Path) -> None:
        committed = (Path(__file__).resolve().parents[1] / "graphql" / "schema.graphql").read_text("utf-8")
        printed = subprocess.run(
            [*CLI, "graphql-schema"],
            cwd=tmp_path,
            env=_clean_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        assert printed.stdout == committed
        output = tmp_path / "schema.graphql"
        subprocess.run(
            [*CLI, "graphql-schema", "--output", str(output)], cwd=tmp_path, env=_clean_env(), check=True
        )
        assert output.read_text(encoding="utf-8") == committed
        assert list(tmp_path.iterdir()) == [output]  # nothing else written: no database file

    @pytest.mark.parametrize("command", ["graphql-schema", "openapi", "event-types"])
    def test_a_file_it_cannot_write_is_one_line(self, tmp_path: Path, command: str) -> None:
        for output, why in (
            (tmp_path / "missing" / "out.txt", "No such file or directory"),
            (tmp_path, "Is a directory"),
        ):
            result = _cli(_clean_env(), command, "--output", str(output), cwd=tmp_path)
            assert (result.returncode, result.stdout) == (2, "")
            assert result.stderr == f"loyalty-api: cannot write {output}: {why}\n"
        assert list(tmp_path.iterdir()) == []


def _in(encoding: str, text: str) -> str:
    """`text` as its bytes in `encoding` reach a program in a UTF-8 locale: a script saved as GBK or Latin-1
    (Python keeps the bytes that are not UTF-8 as lone surrogates)."""
    return os.fsdecode(text.encode(encoding))


class TestTextNotInUtf8:
    @pytest.mark.parametrize(
        ("args", "shown"),
        [
            (("keys", "create", "--scope", "pos", "--name", _in("latin-1", "Café 9")), "Caf\\xe9 9"),
            (
                ("keys", "create", "--name", "SB", "--scope", "partner", "--partner", _in("gbk", "星巴克")),
                "\\xd0\\xc7",
            ),
            (("keys", "revoke", _in("gbk", "门店")), "\\xc3\\xc5"),
            (("keys", "rotate", _in("gbk", "门店"), "--overlap", "1h"), "\\xc3\\xc5"),
            (
                (
                    "init",
                    "--currency",
                    "CNY",
                    "--timezone",
                    "Asia/Shanghai",
                    "--entry-tier",
                    _in("gbk", "金卡"),
                ),
                "\\xbd\\xf0",
            ),
            (("serve", "--host", _in("latin-1", "caisse-é"), "--port", "0"), "caisse-\\xe9"),
        ],
    )
    def test_an_argument_in_another_encoding_is_one_line_showing_its_bytes(
        self, cli_env: dict[str, str], args: tuple[str, ...], shown: str
    ) -> None:
        """Each failed halfway through, a traceback out of the database driver or the host name lookup."""
        result = _cli(cli_env, *args)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith("loyalty-api: '") and shown in line and "not UTF-8 text" in line, line

    def test_a_file_name_in_another_encoding_is_written(self, tmp_path: Path) -> None:
        """A file's name is bytes to the file system, UTF-8 or not: `--output` takes any."""
        output = tmp_path / _in("latin-1", "schéma.graphql")
        result = _cli(_clean_env(), "graphql-schema", "--output", str(output), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert output.read_text(encoding="utf-8").startswith("schema @link(")

    @pytest.mark.skipif(not is_postgres(), reason="names the test's PostgreSQL server")
    def test_a_postgresql_url_in_another_encoding_is_one_line_naming_the_variable(
        self, cli_env: dict[str, str]
    ) -> None:
        """asyncpg failed on the name with an AttributeError of its own, at every connection."""
        url = cli_env["LOYALTY_DATABASE_URL"].rpartition("/")[0] + "/" + _in("gbk", "会员")
        env = cli_env | {"LOYALTY_DATABASE_URL": url}
        result = _cli(env, "keys", "list")
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            "loyalty-api: LOYALTY_DATABASE_URL: is not UTF-8 text: PostgreSQL takes its names and passwords "
            "in UTF-8\n"
        )


class TestSettingsFromTheEnvironment:
    def test_values_it_cannot_run_with_are_one_line_each_naming_the_variable(self, tmp_path: Path) -> None:
        env = _clean_env(LOYALTY_DATABASE_POOLER="PgBouncer", LOYALTY_CACHE_SECONDS="-1")
        result = _cli(env, "migrate", cwd=tmp_path)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr and "Value error" not in result.stderr
        lines = result.stderr.splitlines()
        assert [line.split(":")[:2] for line in lines] == [
            ["loyalty-api", " LOYALTY_DATABASE_POOLER"],
            ["loyalty-api", " LOYALTY_CACHE_SECONDS"],
        ]
        assert "'pgbouncer'" in lines[0]
        assert list(tmp_path.iterdir()) == []  # refused before anything was done

    @pytest.mark.parametrize("key", ["notakey", "c2l4dGVlbi1ieXRlcy1rZXk="])  # not base64; 16 bytes
    def test_an_encryption_key_it_cannot_use_is_one_line_without_the_key(
        self, tmp_path: Path, key: str
    ) -> None:
        for command in (["keys", "list"], ["serve", "--port", "0"]):
            result = _cli(_clean_env(LOYALTY_ENCRYPTION_KEY=key), *command, cwd=tmp_path)
            assert (result.returncode, result.stdout) == (2, ""), command
            assert result.stderr.startswith("loyalty-api: LOYALTY_ENCRYPTION_KEY: the encryption key ")
            assert len(result.stderr.splitlines()) == 1 and key not in result.stderr
            assert list(tmp_path.iterdir()) == []  # refused before a database was made

    @pytest.mark.parametrize("region", ["cn", "XX", "UK"])
    def test_a_phone_region_no_number_can_be_read_in_is_refused(self, tmp_path: Path, region: str) -> None:
        """Else the service started, and refused every phone number written without its country code."""
        result = _cli(_clean_env(LOYALTY_DEFAULT_PHONE_REGION=region), "migrate", cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            f"loyalty-api: LOYALTY_DEFAULT_PHONE_REGION: {region!r} is not a region phone numbers are read "
            "in: an ISO 3166 alpha-2 code in capitals, such as CN or GB\n"
        )
        assert list(tmp_path.iterdir()) == []

    def test_pgbouncer_needs_somewhere_else_to_listen(self, tmp_path: Path) -> None:
        """LISTEN through transaction pooling misses notifications: a revoked key would be kept for the
        cache's lifetime."""
        env = _clean_env(
            LOYALTY_DATABASE_URL="postgresql://loyalty@127.0.0.1:1/loyalty",
            LOYALTY_DATABASE_POOLER="pgbouncer",
        )
        result = _cli(env, "keys", "list")
        assert result.returncode == 2
        assert result.stderr.startswith("loyalty-api: LOYALTY_DATABASE_POOLER=pgbouncer needs ")
        assert "LOYALTY_LISTEN_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
        listening = env | {"LOYALTY_LISTEN_DATABASE_URL": "postgresql://loyalty@127.0.0.1:1/loyalty"}
        assert "LOYALTY_DATABASE_POOLER" not in _cli(listening, "graphql-schema").stderr

    def test_a_url_as_hosting_platforms_write_it_gets_the_services_driver(
        self, app: FastAPI, cli_env: dict[str, str]
    ) -> None:
        scheme, rest = cli_env["LOYALTY_DATABASE_URL"].split("://", 1)
        platform = {"postgresql+asyncpg": "postgres://", "sqlite+aiosqlite": "sqlite://"}[scheme]
        # libpq's word for TLS, not asyncpg's; and asyncpg's own numbers, which a URL carries as text.
        ssl = (
            "?sslmode=prefer&timeout=5&command_timeout=30&statement_cache_size=50"
            if platform == "postgres://"
            else ""
        )
        env = cli_env | {"LOYALTY_DATABASE_URL": f"{platform}{rest}{ssl}"}
        result = _cli(env, "keys", "create", "--name", "till 9", "--scope", "pos")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1].startswith("lk_")
        assert (
            check_database_url("postgresql://u:p@db.example:5432/loyalty?sslmode=require")
            == "postgresql+asyncpg://u:p@db.example:5432/loyalty?ssl=require"
        )
        assert check_database_url("sqlite:///./loyalty.db") == "sqlite+aiosqlite:///./loyalty.db"
        # A secret's trailing newline would name another database, or another file.
        assert (
            check_database_url("postgresql://u:p@db.example/loyalty\n")
            == "postgresql+asyncpg://u:p@db.example/loyalty"
        )
        refused = _cli(env | {"LOYALTY_RATE_LIMIT_STORAGE": "redis://127.0.0.1:abc/0"}, "keys", "list")
        assert (refused.returncode, refused.stderr) == (
            2,
            "loyalty-api: LOYALTY_RATE_LIMIT_STORAGE: names a port that is not a number from 0 to 65535\n",
        )
        refused = _cli(env | {"LOYALTY_DATABASE_URL": "mysql://u@db/loyalty"}, "keys", "list")
        assert refused.returncode == 2
        assert refused.stderr.startswith("loyalty-api: LOYALTY_DATABASE_URL: must be a PostgreSQL URL")
        # Neon's URLs carry libpq's channel_binding, which asyncpg would fail on at every connection.
        neon = "postgresql://u:p@db.example/loyalty?sslmode=require&channel_binding=require"
        refused = _cli(env | {"LOYALTY_DATABASE_URL": neon}, "keys", "list")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.startswith("loyalty-api: LOYALTY_DATABASE_URL: holds settings asyncpg does not")
        assert refused.stderr.rstrip().endswith("remove channel_binding")
        for setting, told in (
            ("timeout=soon", "sets timeout to 'soon': it takes a number of seconds above 0"),
            ("command_timeout=0", "sets command_timeout to '0': it takes a number of seconds above 0"),
            ("statement_cache_size=-1", "sets statement_cache_size to '-1': it takes a whole number"),
            ("direct_tls=maybe", "sets direct_tls to 'maybe': it takes true or false"),
            ("prepared_statement_cache_size=abc", "sets prepared_statement_cache_size to 'abc': it takes"),
            ("host=a&port=5432&host=b&port=x", "sets port to 'x': it takes a whole number"),
            # Several hosts, each with its port (asyncpg would fail at every connection without).
            (
                "host=a&host=b",
                "All ports are required to be present for asyncpg multiple host URL: write each",
            ),
            (
                "host=a,b&port=5432",
                "number of hosts and ports don't match: write each host as host=name:port",
            ),
            ("timeout=1&timeout=2", "sets timeout more than once"),
        ):
            with pytest.raises(ValueError, match=re.escape(told)):
                check_database_url(f"postgresql://u:p@db.example/loyalty?{setting}")
        # What asyncpg does take stays: a socket folder (Cloud SQL), failover across hosts.
        for url in (
            "postgresql://u:p@/loyalty?host=/cloudsql/project:region:instance",
            "postgresql://u:p@/loyalty?host=a:5432&host=b:5432&target_session_attrs=read-write",
        ):
            assert check_database_url(url) == url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def test_a_misspelt_variable_is_named_with_the_setting_it_likely_meant(
        self, app: FastAPI, cli_env: dict[str, str]
    ) -> None:
        env = cli_env | {
            "LOYALTY_RATE_LIMIT_STORGE": "redis://127.0.0.1:6379/0",
            "LOYALTY_NOTHING_LIKE_IT": "1",
            "LOYALTY_TEST_DATABASE_URL": "the suite's own",
        }
        result = _cli(env, "keys", "list")
        assert result.returncode == 0, result.stderr  # a warning, no more
        assert result.stderr.splitlines() == [
            "loyalty-api: warning: LOYALTY_NOTHING_LIKE_IT is not a setting; it is ignored",
            "loyalty-api: warning: LOYALTY_RATE_LIMIT_STORGE is not a setting "
            "(did you mean LOYALTY_RATE_LIMIT_STORAGE?); it is ignored",
        ]


# A revision of a release newer than this one: unknown to this release's migrations.
NEWER = "0999"


@asynccontextmanager
async def database_at(folder: Path, revision: str) -> AsyncIterator[str]:
    """A database of its own, migrated to `revision` (one this release knows, or NEWER: at head, then marked
    as a newer release's `migrate` leaves it); yields its URL."""
    async with fresh_database(folder, "schema") as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, head_revision() if revision == NEWER else revision)
            if revision == NEWER:
                async with engine.begin() as connection:
                    await connection.execute(
                        text("UPDATE alembic_version SET version_num = :r"), {"r": NEWER}
                    )
        finally:
            await engine.dispose()
        yield url


def _on(cli_env: dict[str, str], url: str) -> dict[str, str]:
    """The CLI's environment pointed at the database `url`."""
    return cli_env | {"LOYALTY_DATABASE_URL": url, "LOYALTY_LISTEN_DATABASE_URL": listen_url(url) or url}


class TestRollingUpgrade:
    """The newer release migrates first, then its processes replace the older ones one by one."""

    async def test_the_older_release_keeps_running_on_a_database_a_newer_release_migrated(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        async with database_at(tmp_path, NEWER) as url:
            env = _on(cli_env, url)
            with served(tmp_path, env) as (base, log):
                async with httpx.AsyncClient() as http:
                    ready = await http.get(f"{base}/readyz")
                assert (ready.status_code, ready.json()) == (
                    200,
                    {
                        "status": "ready",
                        "database": "ok",
                        "migration": NEWER,
                        "expected_migration": head_revision(),
                    },
                )
                said = log.read_text(encoding="utf-8")
            warned = [line for line in said.splitlines() if line.startswith("loyalty-api: warning:")]
            assert warned == [
                f"loyalty-api: warning: the database is at {NEWER}, newer than this release (at "
                f"{head_revision()}): running on it, as during a rolling upgrade"
            ]

            # Rolled back: the older release's migrate has nothing to do, and says why in a line.
            migrated = _cli(env, "migrate")
            assert (migrated.returncode, migrated.stderr) == (0, ""), migrated.stderr
            assert migrated.stdout == (
                f"the database is at {NEWER}, newer than this release (at {head_revision()}): "
                "nothing to migrate\n"
            )
            listed = _cli(env, "keys", "list")
            assert listed.returncode == 0, listed.stderr
            assert listed.stdout.startswith("prefix\t")


# Every command that works on the database, as an operator runs it (`serve` apart: on SQLite it migrates).
ON_THE_DATABASE = (
    ("keys", "list"),
    ("keys", "create", "--name", "till 7", "--scope", "pos"),
    ("keys", "rotate", "abcdefgh", "--overlap", "0"),
    ("keys", "revoke", "abcdefgh"),
    ("jobs", "expire-points"),
    ("worker",),
)


def _each(
    env: dict[str, str], commands: Sequence[tuple[str, ...]]
) -> list[tuple[tuple[str, ...], subprocess.CompletedProcess[str]]]:
    """Each command run, side by side (each process takes seconds to start)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(zip(commands, pool.map(lambda command: _cli(env, *command), commands), strict=True))


class TestSchemaChecks:
    """Each command that works on the database checks its schema first, and says in one line what is wrong."""

    async def test_on_a_database_behind_the_commands_say_to_migrate(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        async with database_at(tmp_path, "0025") as url:  # before api_keys.lifetime_seconds (0026)
            env = _on(cli_env, url)
            said = (
                f"loyalty-api: database at 0025, this release needs {head_revision()}: "
                "run `loyalty-api migrate`\n"
            )
            commands = [*ON_THE_DATABASE, *([("serve", "--port", "0")] if is_postgres() else [])]
            for command, result in _each(env, commands):
                assert (result.returncode, result.stdout, result.stderr) == (2, "", said), command

            migrated = _cli(env, "migrate")
            assert migrated.stdout == f"migrated to {head_revision()}\n", migrated.stderr
            listed = _cli(env, "keys", "list")
            assert (listed.returncode, listed.stderr) == (0, "")

    async def test_on_a_database_that_does_not_answer_they_say_so(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        nowhere = "postgresql://loyalty:hunter2@127.0.0.1:1/loyalty"  # nothing listens on port 1
        places = {
            nowhere: "loyalty-api: database unreachable: [Errno 111] Connect call failed ('127.0.0.1', 1)"
        }
        server = server_url()
        if is_postgres() and server is not None:
            missing = f"loyalty_missing_{uuid.uuid4().hex[:8]}"
            url = make_url(server).set(database=missing).render_as_string(hide_password=False)
            places[url] = f'loyalty-api: database unreachable: database "{missing}" does not exist'
        for url, said in places.items():
            env = _on(cli_env, url)
            for command, result in _each(env, [*ON_THE_DATABASE, ("migrate",), ("serve", "--port", "0")]):
                assert (result.returncode, result.stdout, result.stderr) == (2, "", f"{said}\n"), command

    async def test_an_sqlite_database_in_memory_is_refused_not_migrated_and_lost(
        self, cli_env: dict[str, str]
    ) -> None:
        """Each connection to it would open a new, empty one: `migrate` would say done, and the next command
        find no migrations."""
        said = (
            "loyalty-api: LOYALTY_DATABASE_URL: an SQLite database in memory is gone with each connection: "
            "name a file, such as "
            "sqlite:///./loyalty.db\n"
        )
        for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared&uri=true"):
            env = cli_env | {"LOYALTY_DATABASE_URL": url}
            for command, result in _each(
                env, [("keys", "list"), ("migrate",), ("serve", "--demo", "--port", "0")]
            ):
                assert (result.returncode, result.stdout, result.stderr) == (2, "", said), (url, command)

    @pytest.mark.usefixtures("app")  # the database migrated: the reports' check comes after its own
    async def test_serve_refuses_a_reports_database_that_is_not_this_ones_replica(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        """Every report would fail as a bug while /readyz, which asks the primary, says ready."""
        async with fresh_database(tmp_path, "reports") as empty:
            env = cli_env | {"LOYALTY_REPORTS_DATABASE_URL": empty}
            result = _cli(env, "serve", "--port", "0")
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        # (On SQLite, `serve` migrates its own database first, and Alembic says so.)
        assert result.stderr.splitlines(keepends=True)[-1] == (
            "loyalty-api: reports database (LOYALTY_REPORTS_DATABASE_URL) has no migrations, this release "
            f"needs {head_revision()}: it should be a replica of LOYALTY_DATABASE_URL, caught up with it\n"
        )

    @pytest.mark.skipif(not is_postgres(), reason="SQLite has no notifications to listen for")
    @pytest.mark.usefixtures("app")  # the database migrated: the listener's check comes after its own
    async def test_serve_and_the_worker_refuse_a_listening_database_that_does_not_answer(
        self, cli_env: dict[str, str]
    ) -> None:
        """Its listener would only warn, once a second, while a key revoked in another process kept working
        for the cache's lifetime."""
        server = server_url()
        assert server is not None
        missing = f"loyalty_missing_{uuid.uuid4().hex[:8]}"
        places = {
            "postgresql://loyalty:hunter2@127.0.0.1:1/loyalty": (
                "[Errno 111] Connect call failed ('127.0.0.1', 1)"
            ),
            make_url(server).set(database=missing).render_as_string(hide_password=False): (
                f'database "{missing}" does not exist'
            ),
        }
        for url, said in places.items():
            env = cli_env | {"LOYALTY_LISTEN_DATABASE_URL": url}
            for command, result in _each(env, [("serve", "--port", "0"), ("worker",)]):
                assert (result.returncode, result.stdout, result.stderr) == (
                    2,
                    "",
                    f"loyalty-api: listening database (LOYALTY_LISTEN_DATABASE_URL) unreachable: {said}\n",
                ), command
