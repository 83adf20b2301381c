from __future__ import annotations

import pytest

from loyalty_api.crypto import DecryptionFailed, InvalidEncryptionKey, Vault, generate_key


class TestVault:
    def test_round_trip_with_fresh_nonces(self) -> None:
        vault = Vault(generate_key())
        first, second = vault.encrypt("13812345678"), vault.encrypt("13812345678")
        assert first != second
        assert vault.decrypt(first) == vault.decrypt(second) == "13812345678"

    def test_another_key_cannot_decrypt(self) -> None:
        token = Vault(generate_key()).encrypt("secret")
        with pytest.raises(DecryptionFailed):
            Vault(generate_key()).decrypt(token)

    def test_blind_index_is_stable_keyed_and_per_field(self) -> None:
        key = generate_key()
        vault = Vault(key)
        assert vault.blind_index("phone", "+8613812345678") == Vault(key).blind_index(
            "phone", "+8613812345678"
        )
        assert vault.blind_index("phone", "x") != vault.blind_index("email", "x")
        assert vault.blind_index("phone", "x") != Vault(generate_key()).blind_index("phone", "x")

    @pytest.mark.parametrize("key", ["", "short", "!" * 44, "a" * 43])
    def test_bad_keys_are_refused(self, key: str) -> None:
        with pytest.raises(InvalidEncryptionKey):
            Vault(key)
