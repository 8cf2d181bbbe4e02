"""A second, independent client implementation: libstrophe (C), built by
CMake from strophe_login.c into <build>/tests/strophe_login."""
import os
import subprocess

import pytest

from harness import BUILD_DIR

STROPHE_LOGIN = BUILD_DIR / "tests" / "strophe_login"


@pytest.fixture
def strophe_login():
    if not (STROPHE_LOGIN.is_file() and os.access(STROPHE_LOGIN, os.X_OK)):
        if not os.environ.get("ONAIR_BUILD_DIR"):
            pytest.skip(f"{STROPHE_LOGIN} not built and ONAIR_BUILD_DIR not set")
        pytest.fail(f"{STROPHE_LOGIN} missing although ONAIR_BUILD_DIR is set "
                    "(is libstrophe-dev installed? see tests/setup.sh)")
    return str(STROPHE_LOGIN)


def run(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_strophe_login_message_ping(server, strophe_login):
    jid, pw = server.add_user()
    rc, out = run(strophe_login, jid, pw, server.host, str(server.port))
    assert rc == 0 and "OK" in out, out


def test_strophe_direct_tls(server, strophe_login):
    jid, pw = server.add_user()
    rc, out = run(strophe_login, "--direct-tls", jid, pw, server.host, str(server.tls_port))
    assert rc == 0 and "OK" in out, out


def test_strophe_wrong_password_fails(server, strophe_login):
    jid, pw = server.add_user()
    rc, out = run(strophe_login, jid, pw + "-wrong", server.host, str(server.port))
    assert rc == 1 and "FAIL" in out, out


# ---- chat rooms (specs/muc.md) with libstrophe ----

STROPHE_MUC = BUILD_DIR / "tests" / "strophe_muc"
MUC_CONFIG = {
    "channels": [{"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 0}],
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 86400},
}


@pytest.fixture
def strophe_muc():
    if not (STROPHE_MUC.is_file() and os.access(STROPHE_MUC, os.X_OK)):
        if not os.environ.get("ONAIR_BUILD_DIR"):
            pytest.skip(f"{STROPHE_MUC} not built and ONAIR_BUILD_DIR not set")
        pytest.fail(f"{STROPHE_MUC} missing although ONAIR_BUILD_DIR is set")
    return str(STROPHE_MUC)


def test_strophe_enters_talks_and_leaves(server_factory, strophe_muc):
    from muc_client import book_live
    srv = server_factory(MUC_CONFIG)
    live = book_live(srv, title="Strophe night")
    jid, pw = srv.add_user()
    rc, out = run(strophe_muc, jid, pw, srv.host, str(srv.port), str(live.room), "strophe")
    assert rc == 0 and out.startswith("OK Strophe night"), out


def test_strophe_password_room(server_factory, strophe_muc):
    from muc_client import book_live
    srv = server_factory(MUC_CONFIG)
    live = book_live(srv, level="secret", password="view-secret")
    jid, pw = srv.add_user()
    rc, out = run(strophe_muc, jid, pw, srv.host, str(srv.port), str(live.room), "s", "wrong-one")
    assert rc == 1 and "refused" in out, out
    rc, out = run(strophe_muc, jid, pw, srv.host, str(srv.port), str(live.room), "s", "view-secret")
    assert rc == 0 and "OK" in out, out
