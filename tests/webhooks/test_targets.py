"""Which webhook URLs are refused: the SSRF guard, without real DNS (except `localhost`)."""

from __future__ import annotations

import base64
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from loyalty_api.webhooks.errors import TargetNotAllowed, TargetUnresolvable
from loyalty_api.webhooks.secrets import new_secret
from loyalty_api.webhooks.targets import check_target, resolve_target

PUBLIC = "93.184.216.34"


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[tuple[str, int]]:
    """Make the system resolver answer with these addresses; returns the (host, port) asked."""
    asked: list[tuple[str, int]] = []

    def fake(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        asked.append((host, port))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


class TestLiteralAddresses:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "http://127.1.2.3:8080/hook",
            "http://10.0.0.5/hook",
            "https://172.16.3.4/hook",
            "http://192.168.1.20/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0:8000/",
            "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
            "http://224.0.0.1/",
            "http://240.0.0.1/",
            "http://[::1]/hook",
            "http://[::]/hook",
            "http://[fe80::1]/hook",
            "http://[fc00::1]/hook",
            "http://[ff02::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:10.1.2.3]/hook",
            "http://[::ffff:169.254.169.254]/hook",
            "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
            "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        ],
    )
    async def test_internal_addresses_are_refused(self, url: str) -> None:
        with pytest.raises(TargetNotAllowed) as refused:
            await check_target(url, allow_private=False)
        assert refused.value.code == "webhook_target_not_allowed"
        assert refused.value.status == 422

    @pytest.mark.parametrize(
        "host",
        [
            # Special-purpose ranges some Python versions' ipaddress takes for global (3.11: all of them).
            "192.0.0.8",  # IETF protocol assignments, 192.0.0.0/24
            "192.0.0.9",
            "192.0.0.255",
            "192.88.99.1",  # 6to4 relay anycast
            "[fec0::1]",  # site-local
            "[3fff::1]",  # documentation
            "[2002:c000:8::]",  # 6to4 of 192.0.0.8
            # And those it does know, each still refused.
            "0.1.2.3",  # "this network"
            "100.127.255.254",  # shared address space
            "198.18.0.1",  # benchmarking
            "198.19.255.255",
            "192.0.2.1",  # documentation
            "239.255.255.250",
            "255.255.255.255",
            "[ff05::1]",
            "[100::1]",  # discard-only
            "[2001:db8::1]",
            "[::ffff:10.0.0.1]",  # IPv4-mapped
            "[::ffff:192.0.0.8]",
            "[::ffff:100.64.0.1]",
            "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
            "[64:ff9b::c000:8]",  # NAT64 of 192.0.0.8
            "[64:ff9b::6440:1]",  # NAT64 of 100.64.0.1
            "[::10.0.0.1]",  # IPv4-compatible, deprecated
        ],
    )
    async def test_special_purpose_addresses_are_refused(self, host: str) -> None:
        # Not which kind each is called: that is the running Python's ipaddress's word, and changes.
        with pytest.raises(TargetNotAllowed) as refused:
            await check_target(f"https://{host}/hook", allow_private=False)
        assert refused.value.extra["errors"][0]["message"].startswith("the host resolves to a")

    async def test_a_name_resolving_into_the_ietf_protocol_assignments_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _resolving_to(monkeypatch, PUBLIC, "192.0.0.8")
        with pytest.raises(TargetNotAllowed):
            await check_target("https://hooks.example.com/", allow_private=False)

    @pytest.mark.parametrize(
        "url",
        [
            f"https://{PUBLIC}/hook",
            f"http://{PUBLIC}:8443/x?y=1",
            "https://[2606:2800:220:1::1]/h",
            # The neighbours of the ranges refused above.
            "https://192.0.1.1/",
            "https://100.128.0.1/",
            "https://198.20.0.1/",
            "https://[2001:4860:4860::8888]/",
            "https://[2002:5db8:d822::]/",  # 6to4 of the public PUBLIC
            "https://[64:ff9b::5db8:d822]/",  # NAT64 of PUBLIC
            "https://[::ffff:93.184.216.34]/",  # IPv4-mapped PUBLIC
        ],
    )
    async def test_public_addresses_pass(self, url: str) -> None:
        await check_target(url, allow_private=False)

    async def test_a_name_a_dns64_resolver_answers_with_nat64_of_a_public_address_passes(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On an IPv6-only network, DNS64 answers every IPv4-only receiver's name with its NAT64 form."""
        _resolving_to(monkeypatch, "64:ff9b::5db8:d822")
        await check_target("https://hooks.example.com/", allow_private=False)

    @pytest.mark.parametrize(
        "url", ["http://127.0.0.1:9000/hook", "http://[::1]/", "http://10.0.0.5/", "http://[fe80::1]/"]
    )
    async def test_internal_addresses_pass_when_allowed(self, url: str) -> None:
        await check_target(url, allow_private=True)

    async def test_literal_addresses_are_not_looked_up(self, monkeypatch: pytest.MonkeyPatch) -> None:
        asked = _resolving_to(monkeypatch)
        await check_target(f"https://{PUBLIC}/hook", allow_private=False)
        assert asked == []


class TestNames:
    async def test_localhost_is_refused(self) -> None:
        with pytest.raises(TargetNotAllowed):
            await check_target("http://localhost:8000/hook", allow_private=False)

    async def test_localhost_passes_when_allowed(self) -> None:
        addresses = await resolve_target("http://localhost:8000/hook", allow_private=True)
        assert all(a.is_loopback for a in addresses)

    async def test_a_name_is_refused_when_any_of_its_addresses_is_internal(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _resolving_to(monkeypatch, PUBLIC, "10.1.2.3")
        with pytest.raises(TargetNotAllowed):
            await check_target("https://hooks.example.com/", allow_private=False)

    async def test_a_name_is_refused_when_it_resolves_to_a_mapped_ipv6_loopback(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _resolving_to(monkeypatch, "::ffff:127.0.0.1")
        with pytest.raises(TargetNotAllowed):
            await check_target("https://hooks.example.com/", allow_private=False)

    async def test_a_public_name_passes_and_is_resolved_for_the_urls_port(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        asked = _resolving_to(monkeypatch, PUBLIC, "2606:2800:220:1::1")
        addresses = await resolve_target("https://Hooks.Example.com:8443/in", allow_private=False)
        assert [str(a) for a in addresses] == [PUBLIC, "2606:2800:220:1::1"]
        assert asked == [("hooks.example.com", 8443)]
        _resolving_to(monkeypatch, PUBLIC)
        await check_target("http://hooks.example.com/in", allow_private=False)

    @pytest.mark.parametrize("allow_private", [False, True])
    async def test_an_unresolvable_name_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, allow_private: bool
    ) -> None:
        _resolving_to(monkeypatch)
        with pytest.raises(TargetUnresolvable) as refused:
            await check_target("https://nowhere.example.com/", allow_private=allow_private)
        assert refused.value.code == "webhook_target_unresolvable"
        assert refused.value.status == 422


class TestShape:
    @pytest.mark.parametrize(
        "url",
        [
            "ftp://93.184.216.34/file",
            "file:///etc/passwd",
            "gopher://93.184.216.34/",
            "javascript:alert(1)",
            "93.184.216.34/hook",
            "https:///no-host",
            "https://user:secret@93.184.216.34/",
            "https://user@93.184.216.34/",
            "https://@93.184.216.34/",
            "https://93.184.216.34:99999/",
            "https://93.184.216.34:port/",
            "https://[::1/",
            "https://93.184.216.34/a b",
            "https://93.184.216.34/\nHost: evil",
            "",
            "https://93.184.216.34/" + "a" * 2000,
        ],
    )
    async def test_malformed_or_unsafe_urls_are_refused_even_when_private_is_allowed(self, url: str) -> None:
        with pytest.raises(TargetNotAllowed) as refused:
            await check_target(url, allow_private=True)
        assert refused.value.code == "webhook_target_not_allowed"
        assert refused.value.extra["errors"][0]["field"] == "url"

    async def test_a_url_of_2000_characters_is_fine(self) -> None:
        url = f"https://{PUBLIC}/"
        await check_target(url + "a" * (2000 - len(url)), allow_private=False)

    async def test_the_scheme_is_case_insensitive(self) -> None:
        await check_target(f"HTTPS://{PUBLIC}/hook", allow_private=False)


class TestSecrets:
    def test_a_secret_is_32_random_bytes_in_the_standard_webhooks_format(self) -> None:
        secret = new_secret()
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        assert new_secret() != secret

    def test_a_standard_webhooks_library_signs_and_verifies_with_it(self) -> None:
        webhook = Webhook(new_secret())
        at = datetime.fromtimestamp(time.time(), UTC)  # the library checks it against the wall clock
        signature = webhook.sign("msg_1", at, '{"a":1}')
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }
        assert webhook.verify('{"a":1}', headers) == {"a": 1}
