from __future__ import annotations

import pytest

from loyalty_api.members.member_number import LENGTH, generate, is_valid, luhn_check_digit


class TestLuhn:
    @pytest.mark.parametrize(
        ("payload", "digit"), [("7992739871", "3"), ("4539148803436467"[:-1], "7"), ("0", "0")]
    )
    def test_known_check_digits(self, payload: str, digit: str) -> None:
        assert luhn_check_digit(payload) == digit

    def test_generated_numbers_are_valid_and_ten_digits(self) -> None:
        for _ in range(200):
            number = generate()
            assert len(number) == LENGTH and number[0] != "0"
            assert is_valid(number)

    def test_every_single_digit_typo_is_caught(self) -> None:
        number = generate()
        for position in range(LENGTH):
            for digit in "0123456789":
                if digit != number[position]:
                    assert not is_valid(number[:position] + digit + number[position + 1 :])

    def test_adjacent_swaps_are_caught(self) -> None:
        number = generate()
        for i in range(LENGTH - 1):
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            if swapped != number and {number[i], number[i + 1]} != {"0", "9"}:
                assert not is_valid(swapped)

    @pytest.mark.parametrize("text", ["", "12345", "１２３４５６７８９０", "12345678901", "abcdefghij"])
    def test_malformed_numbers_are_invalid(self, text: str) -> None:
        assert not is_valid(text)
