"""The browser tests share the integration tests' fixtures and harness
(tests/integration: server, server_factory, async tests, slixmpp clients)."""
import importlib.util
import pathlib
import sys

INTEGRATION = pathlib.Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))

_spec = importlib.util.spec_from_file_location("onair_integration_conftest", INTEGRATION / "conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

pytest_pyfunc_call = _shared.pytest_pyfunc_call
pytest_runtest_makereport = _shared.pytest_runtest_makereport
module_server = _shared.module_server
server = _shared.server
server_factory = _shared.server_factory
