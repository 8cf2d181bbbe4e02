"""Running a browser scenario (a node script driving chromium with
playwright-core, tests/browser/*.mjs) from a pytest test.

    result = await scenario("guest_chat.mjs", {"base": ..., ...}, {"say": say, ...})

The script gets its input as JSON in ONAIR_BROWSER_INPUT (with "base", the
server's HTTP address, and "artifacts", the folder its screenshots go to).
When it needs the test's side (a slixmpp client in the room, a check through
the JSON API) it writes a line `@@call {"id", "op", "args"}` on stdout; the
handler named op runs here (async, on the test's event loop, so slixmpp
clients keep running) and its result (or error) goes back on the script's
stdin.  The scenario passes when the script exits 0; its output is in the
failure message otherwise.
"""
import asyncio
import json
import os
import pathlib
import re
import shutil

from harness import BUILD_DIR

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
NODE = shutil.which("node") or "/usr/bin/node"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = REPO / "tests" / "js" / "node_modules" / "playwright-core"
ARTIFACTS = pathlib.Path(BUILD_DIR) / "test-artifacts" / "browser"


def require_tools():
    """The browser tests need node, Debian's chromium and playwright-core
    (tests/setup.sh --test installs them): a missing one is a failure, not a skip."""
    missing = [what for what, ok in [
        (f"node ({NODE})", os.access(NODE, os.X_OK)),
        (f"chromium ({CHROMIUM})", os.access(CHROMIUM, os.X_OK)),
        (f"playwright-core ({PLAYWRIGHT}: npm ci in tests/js)", PLAYWRIGHT.is_dir()),
    ] if not ok]
    assert not missing, "the browser tests need " + ", ".join(missing) + ": run sh tests/setup.sh --test"


def artifacts_for(name):
    d = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.png"):
        old.unlink()
    return d


async def scenario(script, data, handlers=None, timeout=240):
    """Runs tests/browser/<script> with data (plus "artifacts" when absent);
    returns the script's stderr (its log).  Raises AssertionError when it fails."""
    require_tools()
    handlers = handlers or {}
    data = dict(data)
    data.setdefault("artifacts", str(artifacts_for(pathlib.Path(script).stem)))
    env = dict(os.environ, ONAIR_BROWSER_INPUT=json.dumps(data), CHROMIUM=CHROMIUM)
    proc = await asyncio.create_subprocess_exec(
        NODE, str(HERE / script), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=str(HERE))
    out_lines, err_lines, calls = [], [], []

    async def answer(call):
        try:
            handler = handlers[call["op"]]
            result = await handler(**call.get("args", {}))
            reply = {"id": call["id"], "ok": True, "result": result}
        except Exception as e:  # the script reports it and fails
            reply = {"id": call["id"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        calls.append((call["op"], reply["ok"]))
        if proc.returncode is None:
            proc.stdin.write((json.dumps(reply) + "\n").encode())
            await proc.stdin.drain()

    async def read_stdout():
        tasks = []
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            text = line.decode(errors="replace").rstrip("\n")
            if text.startswith("@@call "):
                tasks.append(asyncio.ensure_future(answer(json.loads(text[7:]))))
            else:
                out_lines.append(text)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def read_stderr():
        while True:
            line = await proc.stderr.readline()
            if not line:
                break
            err_lines.append(line.decode(errors="replace").rstrip("\n"))

    try:
        await asyncio.wait_for(asyncio.gather(read_stdout(), read_stderr(), proc.wait()), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{script} did not finish within {timeout}s\n" + "\n".join(err_lines[-80:]))
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    log = "\n".join(err_lines)
    assert proc.returncode == 0, (f"{script} failed (exit {proc.returncode}); calls {calls}; screenshots in "
                                  f"{data['artifacts']}\n{log[-12000:]}\n{chr(10).join(out_lines[-40:])}")
    return log
