"""The committed subgraph SDL composes into an Apollo supergraph with other teams' subgraphs.

Composition is Apollo's own (`@apollo/composition` from npm, pinned in tests/graphql/composition), run by
`compose.mjs` under Node. Without Node the check is skipped (the README's test command needs only Python);
with Node, the pinned packages are installed from the lock file when missing (`.ci/run` installs them first).
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.graphql.test_sdl import COMMITTED

HERE = Path(__file__).resolve().parent / "composition"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="`node` is not installed: the Apollo composition check needs Node 20 and npm"
)


@pytest.fixture(scope="module", autouse=True)
def _packages() -> None:
    """`npm ci` from the lock file if the packages are missing; a lock keeps two test workers from
    installing into the same folder at once."""
    with (HERE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (HERE / "node_modules" / "@apollo" / "composition").is_dir():
            return
        npm = shutil.which("npm")
        assert npm is not None, "npm is missing: install Node 20 with npm, or run without node"
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, check=False
        )
        assert installed.returncode == 0, installed.stderr[-5_000:]


def compose(*subgraphs: Path) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, str(HERE / "compose.mjs"), *(str(path) for path in subgraphs)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _type(supergraph: str, name: str) -> str:
    found = re.search(rf"^type {name}\b.*?^}}", supergraph, re.MULTILINE | re.DOTALL)
    assert found is not None, f"no type {name} in the supergraph"
    return found.group(0)


class TestComposition:
    def test_composes_with_orders_and_crm_subgraphs(self) -> None:
        result = compose(COMMITTED, HERE / "orders.graphql", HERE / "crm.graphql")
        assert result.returncode == 0, result.stderr
        supergraph = result.stdout
        member = _type(supergraph, "Member")
        assert re.search(r"^\s+orders\(.*\): \[Order!\]! @join__field\(graph: ORDERS\)", member, re.MULTILINE)
        assert re.search(r"^\s+memberNumber: String!", member, re.MULTILINE)
        assert "customer(id: ID!): Customer" in _type(supergraph, "Query")
        assert "loyaltyMember: Member" in _type(supergraph, "Customer")
        assert "joint: PartnerMember" in _type(supergraph, "Customer")
        assert re.search(r"^\s+paidPlans: \[String!\]!", _type(supergraph, "PartnerMember"), re.MULTILINE)
        money = _type(supergraph, "Money")
        assert "@join__type(graph: ORDERS)" in money and "amount: Long!" in money
        page_info = _type(supergraph, "PageInfo")  # one type with Orders' Relay PageInfo
        assert "@join__type(graph: ORDERS)" in page_info and "@join__type(graph: SCHEMA)" in page_info
        order = _type(supergraph, "Order")
        assert "tierAtPurchase: Tier" in order and "couponUsed: Coupon" in order
        assert re.search(r"^\s+rank: Int!", _type(supergraph, "Tier"), re.MULTILINE)  # our fields, joined

    def test_generic_root_names_would_clash_with_the_crm(self, tmp_path: Path) -> None:
        # Why our root fields are named `loyalty…`: the CRM has a `member` of its own.
        generic = tmp_path / "loyalty.graphql"
        generic.write_text(
            COMMITTED.read_text(encoding="utf-8").replace("  loyaltyMember(", "  member("), encoding="utf-8"
        )
        result = compose(generic, HERE / "crm.graphql")
        assert result.returncode == 1, result.stdout
        assert "Query.member" in result.stderr

    def test_composes_alone(self) -> None:
        result = compose(COMMITTED)
        assert result.returncode == 0, result.stderr

    def test_a_subgraph_with_its_own_unshared_money_fails(self) -> None:
        result = compose(COMMITTED, HERE / "orders_unshared_money.graphql")
        assert result.returncode == 1, result.stdout
        assert 'INVALID_FIELD_SHARING: Non-shareable field "Money.amount"' in result.stderr

    def test_our_money_without_shareable_fails_against_orders(self, tmp_path: Path) -> None:
        # What `@shareable` on our Money buys: the same SDL without it does not compose with Orders.
        unshared = tmp_path / "loyalty.graphql"
        unshared.write_text(
            COMMITTED.read_text(encoding="utf-8").replace("type Money @shareable {", "type Money {"),
            encoding="utf-8",
        )
        assert unshared.read_text(encoding="utf-8") != COMMITTED.read_text(encoding="utf-8")
        result = compose(unshared, HERE / "orders.graphql")
        assert result.returncode == 1, result.stdout
        assert "INVALID_FIELD_SHARING" in result.stderr
