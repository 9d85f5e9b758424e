"""Setting up is the supervisor's first log-in: the operators list must not say 上次登录 从未
for the supervisor who is using it (trial of stop 21)."""

from datetime import date


def test_the_supervisor_who_set_up_has_logged_in(store):
    (sup,) = [op for op in store.keyring.list() if op.is_supervisor]
    assert sup.last_login and sup.last_login.startswith(date.today().isoformat())
