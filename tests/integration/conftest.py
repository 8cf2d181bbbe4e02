"""Fixtures for the onair integration tests.

server          the module's shared onaird (config from the module's
                SERVER_CONFIG dict, if any); after each test it must still be
                alive and free of sanitizer reports.
server_factory  starts private servers: server_factory({"limits": {...}});
                each is stopped (SIGTERM, exit 0 required) and checked at
                teardown.

`async def` tests run in a fresh event loop, bounded by ASYNC_TEST_TIMEOUT
(a module may set its own), and every slixmpp client they opened is
disconnected afterwards.
"""
import asyncio
import inspect
import sys

import pytest

import clients
from harness import OnairServer

ASYNC_TEST_TIMEOUT = 45


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    bound = getattr(pyfuncitem.module, "ASYNC_TEST_TIMEOUT", ASYNC_TEST_TIMEOUT)

    async def run():
        try:
            await asyncio.wait_for(pyfuncitem.obj(**kwargs), bound)
        finally:
            await clients.close_all()

    asyncio.run(run())
    return True


def _servers_of(item):
    return getattr(item, "_onair_servers", [])


def _remember(request, srv):
    node = request.node
    lst = getattr(node, "_onair_servers", None)
    if lst is None:
        lst = node._onair_servers = []
    if srv not in lst:
        lst.append(srv)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for i, srv in enumerate(_servers_of(item)):
            rep.sections.append((f"onaird #{i} stderr ({srv.root})", srv.stderr_tail()))


@pytest.fixture(scope="module")
def module_server(request, tmp_path_factory):
    overrides = getattr(request.module, "SERVER_CONFIG", None)
    srv = OnairServer(tmp_path_factory.mktemp("onaird"), overrides)
    srv.start()
    yield srv
    try:
        srv.finish()
    except AssertionError as e:
        if request.session.shouldstop or request.session.shouldfail:
            # pytest -x is already stopping: this teardown now runs at session
            # end, where raising would hide the report of the first failure.
            sys.stderr.write(f"\nonaird teardown problem ({srv.root}):\n{e}\n")
        else:
            raise


@pytest.fixture
def server(request, module_server):
    _remember(request, module_server)
    if module_server.proc is not None and not module_server.running() and module_server.expect_dead:
        # It died during an earlier test (reported there): give the next
        # tests a fresh process on the same data instead of a cascade.
        module_server.start()
    module_server.assert_alive()
    yield module_server
    module_server.assert_alive()


@pytest.fixture
def server_factory(request, tmp_path):
    made = []

    def make(overrides=None, start=True):
        srv = OnairServer(tmp_path / f"onaird{len(made)}", overrides)
        made.append(srv)
        _remember(request, srv)
        if start:
            srv.start()
        return srv

    yield make
    errors = []
    for srv in made:
        try:
            srv.finish()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)
