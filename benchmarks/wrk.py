"""`wrk` for the benchmarks: run it with a Lua script, and read its summary. wrk is a C load generator
(Debian: `apt-get install wrk`) that takes about 0.05 ms of CPU per request, so the servers get the cores.

TARGETS_LUA drives any scenario from a file of requests, one per line: method, path and body separated by
tabs; `@REF@` in the path or body becomes a reference no other request of the run has (an order reference).
Its arguments: a tag for the run, the file, and the API key (empty for none)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class Run:
    label: str
    requests: int
    seconds: float
    non_2xx: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")


def _percentile(output: str, percent: int) -> float:
    found = re.search(rf"^\s+{percent}%\s+(\S+)$", output, re.MULTILINE)  # the Latency Distribution lines
    return _ms(found.group(1)) if found else float("nan")


def parse_wrk(label: str, output: str, cpu: float) -> Run:
    requests, duration = re.search(r"(\d+) requests in ([\d.]+)s,", output).groups()  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Run(
        label=label,
        requests=int(requests),
        seconds=float(duration),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        p50_ms=_percentile(output, 50),
        p99_ms=_percentile(output, 99),
        cpu_ms_per_request=cpu / int(requests) * 1000 if int(requests) else float("nan"),
    )


async def wrk(script: Path, url: str, args: list[str], *, seconds: float, clients: int) -> str:
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return out.decode()


TARGETS_LUA = r"""
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
function init(args)
  tag, key = args[1], args[3]
  targets = {}
  for line in io.lines(args[2]) do
    local method, path, body = line:match("^(%u+)\t([^\t]*)\t?(.*)$")
    targets[#targets + 1] = {method, path, body}
  end
  math.randomseed(tid * 7919 + os.time())
  counter = 0
  if key ~= nil and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local ref = tag .. "-" .. tid .. "-" .. counter
  local target = targets[math.random(#targets)]
  local path = target[2]:gsub("@REF@", ref)
  local body = nil
  if target[3] ~= "" then body = target[3]:gsub("@REF@", ref) end
  return wrk.format(target[1], path, nil, body)
end
"""
