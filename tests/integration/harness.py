"""Starting, stopping and inspecting a real onaird for the integration tests.

OnairServer writes a libconfig file with free loopback ports (client, direct
TLS and HTTP) into a private directory, runs `onaird -c FILE` with its stderr
in a file there, and waits (bounded) until the listeners accept.  finish()
stops it with SIGTERM and collects every problem: a crash, a non-zero exit,
sanitizer reports.
"""
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD_DIR = pathlib.Path(os.environ.get("ONAIR_BUILD_DIR") or REPO / "build" / "release")
ONAIRD = pathlib.Path(os.environ.get("ONAIRD") or BUILD_DIR / "onaird")
ONAIRCTL = pathlib.Path(os.environ.get("ONAIRCTL") or BUILD_DIR / "onairctl")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# What ASan / UBSan / LSan print when they find something.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: AddressSanitizer")

DOMAIN = "localhost"
GUEST_DOMAIN = "guest.localhost"


class ServerError(AssertionError):
    pass


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound to port 0, then released)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def render_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(render_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {v!r} as a libconfig value")


def render_config(groups):
    """groups: {"server": {"domain": "localhost", ...}, ...} -> libconfig text,
    one key per line so that line numbers are predictable."""
    lines = ["# written by tests/integration/harness.py"]
    for group, keys in groups.items():
        if isinstance(keys, list):  # a list of groups, e.g. channels
            lines.append(f"{group} = (")
            for i, item in enumerate(keys):
                lines.append("  {")
                for k, v in item.items():
                    lines.append(f"    {k} = {render_value(v)};")
                lines.append("  }" + ("," if i + 1 < len(keys) else ""))
            lines.append(");")
            continue
        lines.append(f"{group} = {{")
        for k, v in keys.items():
            if isinstance(v, dict):  # a nested group, e.g. plugin = { example = { ... }; }
                lines.append(f"  {k} = {{")
                for k2, v2 in v.items():
                    lines.append(f"    {k2} = {render_value(v2)};")
                lines.append("  };")
            else:
                lines.append(f"  {k} = {render_value(v)};")
        lines.append("};")
    return "\n".join(lines) + "\n"


def sanitizer_env():
    """The environment for onaird: LeakSanitizer also reads the project's
    suppressions (tests/lsan.supp: what libraries leave behind at exit)."""
    env = dict(os.environ)
    supp = f"suppressions={REPO / 'tests' / 'lsan.supp'}"
    env["LSAN_OPTIONS"] = f"{env['LSAN_OPTIONS']}:{supp}" if env.get("LSAN_OPTIONS") else supp
    return env


def binary_or_fail(path, what):
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ServerError(f"{what} binary not found at {path}: build the server "
                          f"(cmake --build build/release) or set ONAIR_BUILD_DIR / "
                          f"{what.upper()}")
    return str(path)


class OnairServer:
    def __init__(self, root, overrides=None):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.domain = DOMAIN
        self.guest_domain = GUEST_DOMAIN
        self.port, self.tls_port, self.http_port = free_ports(3)
        self.config_path = self.root / "onaird.conf"
        self.data_dir = self.root / "data"
        self.admin_socket = self.data_dir / "admin.sock"
        # The working directory is deliberately not the config's directory:
        # relative paths must resolve against the config file.
        self.cwd = self.root / "cwd"
        self.cwd.mkdir(exist_ok=True)
        self.groups = {
            "server": {
                "domain": DOMAIN,
                "guest_domain": GUEST_DOMAIN,
                "data_dir": "data",
                "log_level": os.environ.get("ONAIR_TEST_LOG_LEVEL", "info"),
            },
            "tls": {
                "certificate": "certs/onair.crt",
                "key": "certs/onair.key",
                "generate": True,
            },
            "c2s": {
                "listen": ["127.0.0.1"],
                "port": self.port,
                "direct_tls_port": self.tls_port,
            },
            "http": {
                "listen": ["127.0.0.1"],
                "port": self.http_port,
            },
            # the live stream's UDP socket: any free port (onairctl health
            # and the session-accepts tell which)
            "media": {"port": 0},
        }
        if len(str(self.admin_socket)) > 100:  # sun_path is 108 bytes
            short = pathlib.Path(tempfile.mkdtemp(prefix="onair-"))
            self.admin_socket = short / "admin.sock"
            self.groups["server"]["admin_socket"] = str(self.admin_socket)
        for group, keys in (overrides or {}).items():
            if isinstance(keys, list):
                self.groups[group] = keys
            else:
                self.groups.setdefault(group, {}).update(keys)
        self.port = self.groups["c2s"]["port"]
        self.tls_port = self.groups["c2s"]["direct_tls_port"]
        self.http_port = self.groups["http"]["port"]
        self.write_config()
        self.proc = None
        self.runs = []  # [(Popen, stderr path)]
        self.expect_dead = False
        self.problems = []

    # -- configuration ------------------------------------------------------
    def write_config(self, text=None):
        self.config_path.write_text(text if text is not None else render_config(self.groups))

    # -- process control ----------------------------------------------------
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        err_path = self.root / f"onaird.stderr.{len(self.runs)}.log"
        err = open(err_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [binary_or_fail(ONAIRD, "onaird"), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.cwd, env=sanitizer_env())
        finally:
            err.close()
        self.runs.append((self.proc, err_path))
        self.expect_dead = False
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Until every listener accepts a TCP connection and the admin socket
        answers (bounded); fails early if the process exits."""
        deadline = time.monotonic() + timeout
        pending = [p for p in (self.port, self.tls_port, self.http_port) if p]
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerError(f"onaird exited with {rc} while starting\n{self.stderr_tail()}")
            pending = [p for p in pending if not self._accepts(p)]
            if not pending and self._admin_accepts():
                return
            if time.monotonic() > deadline:
                raise ServerError(f"onaird not ready after {timeout}s (ports {pending} not "
                                  f"accepting or admin socket {self.admin_socket} absent)\n"
                                  f"{self.stderr_tail()}")
            time.sleep(0.05)

    def _accepts(self, port):
        try:
            with socket.create_connection((self.host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _admin_accepts(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(str(self.admin_socket))
                return True
        except OSError:
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if self.expect_dead:
            return
        if self.proc is None:
            raise ServerError("onaird was never started")
        rc = self.proc.poll()
        if rc is not None:
            self.expect_dead = True  # report once
            raise ServerError(f"onaird died during the test (exit status {rc})\n{self.stderr_tail()}")
        self.check_sanitizers()

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; asserts a clean exit (status 0)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.expect_dead = True
                raise ServerError(f"onaird did not exit within {timeout}s of SIGTERM\n{self.stderr_tail()}")
        rc = self.proc.returncode
        self.expect_dead = True
        if rc != 0:
            raise ServerError(f"onaird exited with status {rc} on SIGTERM (expected 0)\n{self.stderr_tail()}")
        self.check_sanitizers()
        return rc

    def kill9(self):
        assert self.proc is not None and self.proc.poll() is None, "onaird not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        self.expect_dead = True

    def restart(self):
        if self.running():
            self.stop()
        return self.start()

    def finish(self):
        """Teardown: stop if running, then raise if anything went wrong."""
        problems = []
        if self.proc is not None:
            rc = self.proc.poll()
            if rc is None:
                try:
                    self.stop()
                except ServerError as e:
                    problems.append(str(e))
            elif not self.expect_dead:
                problems.append(f"onaird had exited by itself with status {rc}")
        try:
            self.check_sanitizers()
        except ServerError as e:
            problems.append(str(e))
        if problems:
            raise ServerError("\n".join(dict.fromkeys(problems)) + "\n" + self.stderr_tail())

    # -- output -------------------------------------------------------------
    def stderr_text(self):
        out = []
        for i, (_, path) in enumerate(self.runs):
            try:
                out.append(f"--- onaird run {i} stderr ({path}) ---\n"
                           + path.read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)

    def stderr_tail(self, nbytes=20000):
        t = self.stderr_text()
        return t if len(t) <= nbytes else "...\n" + t[-nbytes:]

    def check_sanitizers(self):
        for i, (_, path) in enumerate(self.runs):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for m in SANITIZER_MARKERS:
                if m in text:
                    raise ServerError(f"sanitizer report in onaird stderr (run {i}): {m!r}")

    # -- onairctl -----------------------------------------------------------
    def ctl(self, *args, input=None, check=True, timeout=10):
        r = subprocess.run([binary_or_fail(ONAIRCTL, "onairctl"), "-c", str(self.config_path), *args],
                           input=input, capture_output=True, text=True, timeout=timeout, cwd=self.cwd)
        if check and r.returncode != 0:
            raise AssertionError(f"onairctl {' '.join(args)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        for m in SANITIZER_MARKERS:
            if m in r.stderr:
                raise AssertionError(f"sanitizer report from onairctl {' '.join(args)}:\n{r.stderr}")
        return r

    def add_user(self, user=None, password=None):
        """Creates an account (random name/password unless given); returns (jid, password)."""
        user = user or "u" + secrets.token_hex(5)
        password = password or "pw-" + secrets.token_urlsafe(12)
        self.ctl("account", "add", user, input=password + "\n")
        return f"{user}@{self.domain}", password
