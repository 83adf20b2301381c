"""The README's quickstart as a new user runs it: its set-up commands are the ones CI runs, and every other
shell block of it runs, unchanged but for the printed key and the port, against a served demo."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_cli import served_demo

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _quickstart_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def test_the_set_up_commands_are_the_two_ci_runs() -> None:
    setup = _quickstart_blocks()[0]
    commands = [line for line in setup.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/loyalty-api serve --demo",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI runs the same test command, with pip told to be quiet
    assert commands[1].replace("pip install -e", "pip install -q -e") in ci


def test_the_test_command_reads_no_setting_the_shell_exported() -> None:
    # The test command runs in the shell a reader tried the service from, where the README has them export
    # LOYALTY_ENCRYPTION_KEY, LOYALTY_WEBHOOK_ALLOW_PRIVATE_TARGETS=true (webhooks to a local receiver) or a
    # production setting: the suite sets what it tests, and a right test must not fail for such a variable.
    from loyalty_api.settings import Settings, variable

    exported = sorted({variable(field) for field in Settings.model_fields} & os.environ.keys())
    assert exported == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="the quickstart's calls are curl commands")
def test_the_quickstart_calls_work_against_the_served_demo(tmp_path: Path) -> None:
    # What the first set-up command runs once installed (the test runs in that installation already).
    with served_demo(tmp_path) as (base, log):
        printed = log.read_text(encoding="utf-8")
        key = re.search(r"^\s+pos\s+(lk_\S+)$", printed, re.MULTILINE)
        assert key, printed
        outputs = [_run(block, key[1], base, tmp_path) for block in _quickstart_blocks()[1:]]
    replies = [json.loads(line) for line in "".join(outputs).splitlines() if line.startswith("{")]
    enrolled, earned, redeemed, refunded, points, ledger = replies[0], replies[1], replies[2], *replies[3:6]
    assert enrolled["name"] == "李娜" and enrolled["phone"] == "+8613912345678"
    assert earned["points_earned"] >= 129
    assert redeemed["points_redeemed"] == 100
    assert refunded["points_given_back"] == 50
    assert points["balance"] == earned["points_earned"] - 100 + 50
    assert [entry["type"] for entry in ledger["items"]] == ["refund", "redeem", "earn"]


def _run(block: str, key: str, base: str, folder: Path) -> str:
    """The block with the printed key and the port put in, run by bash; stops at the first failing call."""
    script = re.sub(r"^KEY=lk_….*$", f"KEY={key}", block, flags=re.MULTILINE)
    script = script.replace("http://127.0.0.1:8000", base)
    assert script != block, "the block no longer sets KEY and API as the test expects"
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_graphql_section_names_every_root_field() -> None:
    # A reader learns what GraphQL offers from the lists of queries and mutations there.
    from loyalty_api import crypto
    from loyalty_api.graphql.schema import graphql_router
    from loyalty_api.settings import Settings

    settings = Settings(encryption_key=crypto.generate_key(), database_url="sqlite+aiosqlite://")
    schema = graphql_router(settings).schema._schema
    section = README.read_text(encoding="utf-8").split("\n## GraphQL\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(loyalty\w+)", section))
    assert schema.mutation_type is not None
    root = schema.query_type.fields.keys() | schema.mutation_type.fields.keys()
    assert sorted(field for field in root if not field.startswith("_") and field not in named) == []


def _settings_table() -> list[list[str]]:
    """The variables each row of the settings table under "Running in production" names in its first cell."""
    section = (
        README.read_text(encoding="utf-8").split("\n## Running in production\n", 1)[1].split("\n## ", 1)[0]
    )
    table = section.split("| setting | meaning |\n| --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    return [re.findall(r"`([^`]+)`", row.split("|")[1]) for row in table.splitlines()]


def test_the_settings_table_names_every_setting_and_nothing_else() -> None:
    # An operator looks a variable up by its name: every setting spelt in full, and no name nothing reads.
    from loyalty_api.settings import Settings, variable

    rows = _settings_table()
    named = {name for row in rows for name in row}
    settings = {variable(field) for field in Settings.model_fields}
    assert sorted(settings - named) == [], "add a row for these settings"
    assert sorted(named - settings) == [], "no setting has these names"
    assert all(rows), "a row names no variable"


def _commands_shown() -> list[str]:
    """Every `loyalty-api` command line the README and docs/ show, in their shell blocks or in the text (where
    one may wrap), with its placeholders (`<prefix>`, `N`) filled in."""
    text = "\n".join(
        page.read_text(encoding="utf-8") for page in (README, *sorted((ROOT / "docs").glob("*.md")))
    )
    commands = [
        found
        for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
        for line in block.splitlines()
        for found in re.findall(r"(?:^|&&|\$\()\s*(?:\.venv/bin/)?(loyalty-api\b[^&)#]*)", line)
    ]
    commands += re.findall(r"`(?:\.venv/bin/)?(loyalty-api\b[^`]*)`", text)
    return [re.sub(r"<[^>]+>", "x", " ".join(command.split())).replace(" N", " 2") for command in commands]


def test_every_command_shown_with_options_is_one_the_cli_takes(capsys: pytest.CaptureFixture[str]) -> None:
    # A reader copies a command from the text as readily as from a block: each must run as written, not stop
    # at a required option the text left out. (A bare `loyalty-api init` in a sentence names the command.)
    from loyalty_api.cli import build_parser

    shown = [command for command in _commands_shown() if " --" in command]
    assert len(shown) >= 10
    refused = []
    for command in shown:
        try:
            build_parser().parse_args(shlex.split(command)[1:])
        except SystemExit:
            refused.append(f"{command}: {capsys.readouterr().err.strip().splitlines()[-1]}")
    assert refused == []
