"""Schemathesis over the served OpenAPI document: every answer is documented (status, media type, headers,
body schema), nothing is a server error, and what the schema forbids is refused."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.apps import on_loopback
from tests.builders import enrol

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "allow_header_conformance",
)
# Bounded for CI: a few cases per operation and per phase, from a fixed seed so a failure reproduces.
EXAMPLES_PER_OPERATION = 5
SEED = 20261202


async def test_the_served_document_tells_the_truth(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    # A member to be found, so reads of members also answer something besides 404.
    await enrol(client, admin_key)
    async with on_loopback(app) as base_url:
        run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {admin_key}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--no-color",
            cwd=tmp_path,  # where schemathesis keeps its cache
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await run.communicate()
    report = output.decode("utf-8", "replace")
    assert run.returncode == 0, report[-20_000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected is not None and tested is not None, report[-5_000:]
    assert int(selected[1]) == int(selected[2]) == int(tested[1]) > 70
