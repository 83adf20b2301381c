"""The pieces of ops/logging that keep libraries' log lines clean."""

from __future__ import annotations

import logging

import pytest

from loyalty_api.ops.logging import RedactUrls, redact_url


class TestRedactUrl:
    @pytest.mark.parametrize(
        ("url", "redacted"),
        [
            ("https://hooks.example.com/in?token=abc", "https://hooks.example.com/in"),
            ("http://u:p@127.0.0.1:8080/a/b?x=1#f", "http://127.0.0.1:8080/a/b"),
            ("https://[2001:db8::1]:8443/hook?sig=1", "https://[2001:db8::1]:8443/hook"),
            ("https://user@example.com", "https://example.com"),
            ("http://example.com:99999/x?t=1", "http://…"),
        ],
    )
    def test_keeps_scheme_host_port_and_path(self, url: str, redacted: str) -> None:
        assert redact_url(url) == redacted


class TestRedactUrls:
    def test_rewrites_every_url_of_a_message_and_keeps_the_rest(self) -> None:
        record = logging.LogRecord(
            "httpx",
            logging.INFO,
            __file__,
            1,
            'HTTP Request: %s %s "%s"',
            ("POST", "https://u:p@h.example/in?t=1", "HTTP/1.1 200 OK"),
            None,
        )
        assert RedactUrls().filter(record)
        assert record.getMessage() == 'HTTP Request: POST https://h.example/in "HTTP/1.1 200 OK"'

    def test_a_message_that_cannot_be_formatted_loses_its_arguments(self) -> None:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%s %s", ("http://h/?t=1",), None)
        assert RedactUrls().filter(record)
        assert "t=1" not in record.getMessage()
