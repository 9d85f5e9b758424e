"""A new PIN is digits only, wherever it is set (set-up, operator add, reset, recovery): the
login screen sends a letter typed into an empty PIN field to the operator's name, so a PIN
with letters could be set but never typed there (stop 21)."""

import pytest

from fieldkit.errors import InputError
from fieldkit.store.keyring import check_pin_shape


@pytest.mark.parametrize("pin", ["abc123", "12345a", "１２３４５６", "王芳王芳王芳"])
def test_a_pin_with_anything_but_digits_is_refused(store, pin):
    with pytest.raises(InputError) as err:
        store.keyring.add(store.operator, store.master, "李强", "gate", pin)
    assert err.value.render("zh") == "PIN 只能是数字（0–9）"
    assert store.keyring.get("李强") is None


def test_digits_of_the_right_length_pass_and_length_is_said_first():
    check_pin_shape("135790")
    with pytest.raises(InputError, match="至少"):
        check_pin_shape("")
