"""PINs: salted hash, constant-time check, demo PINs."""

from __future__ import annotations

import pytest

from voicemail.pin import PinFormatError, demo_pin, hash_pin, valid_pin, verify_pin


def test_hash_and_verify() -> None:
    stored = hash_pin("1410")
    assert stored.startswith("pbkdf2_sha256$") and "1410" not in stored
    assert verify_pin("1410", stored)
    assert not verify_pin("1411", stored)
    assert not verify_pin("", stored)
    assert not verify_pin("14a0", stored)


def test_salted() -> None:
    assert hash_pin("1410") != hash_pin("1410")
    assert hash_pin("1410", salt=b"s" * 16) == hash_pin("1410", salt=b"s" * 16)


@pytest.mark.parametrize("stored", ["", "x$y", "pbkdf2_sha256$abc$00$00",
                                    "md5$1000$00$00", "pbkdf2_sha256$0$00$00"])
def test_malformed_never_matches(stored: str) -> None:
    assert not verify_pin("1410", stored)


def test_format() -> None:
    assert valid_pin("1234") and valid_pin("12345678")
    assert not valid_pin("123") and not valid_pin("123456789") and not valid_pin("١٢٣٤")
    with pytest.raises(PinFormatError):
        hash_pin("12")


def test_demo_pin_is_the_last_four_digits() -> None:
    assert demo_pin("501410") == "1410"
    assert demo_pin("502411") == "2411"
