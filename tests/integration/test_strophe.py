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
