"""XEP-0050 ad-hoc commands on the server JID (specs/adhoc.md), driven by
slixmpp's xep_0050 / xep_0004 plugins as a standard client would, and by the
raw client for requests no library sends: discovery per kind of requester,
server-info, the two stages of change-password with each validation error,
cancel, session ownership, unknown and expired sessions, malformed actions,
the per-requester limit, and sessions ending with their stream."""
import asyncio
import secrets
import xml.etree.ElementTree as ET

import clients
from adhoc_client import (NS_COMMANDS, NS_DATA, command_nodes, guest, health, login, run,
                          run_error, wait_for)
from clients import IqError
from rawxmpp import NS_CLIENT, RawStream, q, stanza_error

LIMIT = 16  # ADHOC_MAX_SESSIONS_PER_REQUESTER
# Commands for accounts only, and for everyone (guests too): node -> name.
ACCOUNT_COMMANDS = {"server-info": "Server information", "change-password": "Change password",
                    "book": "Book a live", "reconfirm": "Reconfirm a reservation",
                    "settings": "Reservation settings", "cancel": "Cancel a reservation",
                    "my-channel": "My channel"}
EVERYONE_COMMANDS = {"availability": "Availability", "schedule": "Upcoming lives"}


# -- discovery ------------------------------------------------------------------

async def test_server_advertises_commands(server):
    c = await login(server)
    info = await c["xep_0030"].get_info(jid=server.domain, timeout=10)
    assert NS_COMMANDS in info["disco_info"]["features"]


async def test_account_lists_its_commands(server):
    c = await login(server)
    nodes = await command_nodes(c, server)
    assert nodes == {**ACCOUNT_COMMANDS, **EVERYONE_COMMANDS}, nodes
    items = await c["xep_0030"].get_items(jid=server.domain, node=NS_COMMANDS, timeout=10)
    assert {str(j) for j, _n, _m in items["disco_items"]["items"]} == {server.domain}
    info = await c["xep_0030"].get_info(jid=server.domain, node="server-info", timeout=10)
    assert ("automation", "command-node", None, "Server information") in info["disco_info"]["identities"]
    assert {NS_COMMANDS, NS_DATA} <= set(info["disco_info"]["features"])
    info = await c["xep_0030"].get_info(jid=server.domain, node=NS_COMMANDS, timeout=10)
    assert any(i[:2] == ("automation", "command-list") for i in info["disco_info"]["identities"])
    # the slixmpp helper sees the same list
    res = await c["xep_0050"].get_commands(server.domain, timeout=10)
    assert {n for _j, n, _m in res["disco_items"]["items"]} == set(ACCOUNT_COMMANDS) | set(EVERYONE_COMMANDS)


async def test_guest_sees_only_public_commands(server):
    g = await guest(server)
    assert await command_nodes(g, server) == EVERYONE_COMMANDS
    try:
        await g["xep_0030"].get_info(jid=server.domain, node="server-info", timeout=10)
        raise AssertionError("a guest got disco#info of an account command")
    except IqError as e:
        assert e.iq["error"]["condition"] == "forbidden", str(e.iq)
    assert await run_error(g, server, "server-info") == ("cancel", "forbidden", None, "")
    assert (await run_error(g, server, "change-password"))[1] == "forbidden"


async def test_unknown_node(server):
    c = await login(server)
    etype, cond, specific, _ = await run_error(c, server, "no-such-command")
    assert (etype, cond, specific) == ("cancel", "item-not-found", None)
    try:
        await c["xep_0030"].get_info(jid=server.domain, node="no-such-command", timeout=10)
        raise AssertionError("disco#info of an unknown node answered")
    except IqError as e:
        assert e.iq["error"]["condition"] == "item-not-found"


# -- server-info ----------------------------------------------------------------

async def test_server_info(server):
    c = await login(server)
    res = await run(c, server, "server-info")
    assert res["command"]["status"] == "completed"
    assert res["command"]["sessionid"]
    form = res["command"]["form"]
    assert form["type"] == "result"
    values = form.get_values()
    assert values["version"] == server.ctl("health").stdout.split("version: ")[1].split()[0]
    assert int(values["uptime"]) >= 0
    assert int(values["sessions"]) >= 1
    assert int(health(server)["adhoc_sessions"]) == 0  # a completed session is gone


# -- change-password ------------------------------------------------------------

async def workflow(c, server, node, fill):
    """Runs a command the way slixmpp's workflow API does (start_command,
    then complete_command with the received form filled in by `fill`).
    Returns the final Iq."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_next(iq, session):
        if iq["command"]["status"] == "executing":
            values = fill(iq)
            form = iq["command"]["form"]
            form.reply()
            form.set_values(values)
            session["payload"] = form
            session["next"] = on_next
            c["xep_0050"].complete_command(session)
        elif not done.done():
            done.set_result(iq)

    def on_error(iq, session):
        if not done.done():
            done.set_exception(AssertionError(f"command error: {iq}"))

    c["xep_0050"].start_command(server.domain, node, {"next": on_next, "error": on_error})
    return await asyncio.wait_for(done, 10)


async def test_change_password_with_the_workflow_api(server):
    jid, old = server.add_user()
    c = await login(server, jid, old)
    new = "new-" + secrets.token_urlsafe(10)
    seen = {}

    def fill(iq):
        cmd = iq["command"]
        seen["actions"] = set(cmd["actions"])
        seen["default"] = cmd.xml.find(f"{{{NS_COMMANDS}}}actions").get("execute")
        seen["fields"] = {var: f["type"] for var, f in cmd["form"].get_fields().items()}
        return {"old_password": old, "new_password": new, "confirm": new}

    final = await workflow(c, server, "change-password", fill)
    assert seen["actions"] == {"complete"} and seen["default"] == "complete", seen
    assert seen["fields"] == {"FORM_TYPE": "hidden", "old_password": "text-private",
                              "new_password": "text-private", "confirm": "text-private"}, seen
    assert final["command"]["status"] == "completed"
    assert ("info", "Password changed.") in final["command"]["notes"]
    await c.close()
    # the next login needs the new password
    await clients.login_fails(server, jid, old, mech="SCRAM-SHA-256")
    c2 = await login(server, jid, new)
    assert c2.boundjid.bare == jid
    # and the store agrees (PLAIN through the raw client, SCRAM through slixmpp above)
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(jid.split("@")[0], new)
    await raw.close()


async def test_change_password_validation_errors(server):
    """Every refusal names the field (bad-request + bad-payload) and keeps the
    session open: the corrected form is accepted on the same session."""
    jid, old = server.add_user()
    c = await login(server, jid, old)
    start = await run(c, server, "change-password")
    assert start["command"]["status"] == "executing"
    sid = start["command"]["sessionid"]

    async def submit(values):
        return await run_error(c, server, "change-password", action="complete", sessionid=sid, values=values)

    assert await submit({"old_password": "", "new_password": "a", "confirm": "a"}) == \
        ("modify", "bad-request", "bad-payload", "old_password: required")
    assert await submit({"old_password": old, "new_password": "a"}) == \
        ("modify", "bad-request", "bad-payload", "confirm: required")
    assert await submit({"old_password": old, "new_password": "abc", "confirm": "abd"}) == \
        ("modify", "bad-request", "bad-payload", "confirm: does not match new_password")
    assert await submit({"old_password": old + "x", "new_password": "abc", "confirm": "abc"}) == \
        ("modify", "bad-request", "bad-payload", "old_password: wrong password")
    # "execute" means the default action (complete) of this stage
    assert (await run_error(c, server, "change-password", sessionid=sid,
                            values={"old_password": old + "x", "new_password": "b", "confirm": "b"}))[3] == \
        "old_password: wrong password"
    # nothing changed so far
    await (await login(server, jid, old)).close()
    res = await run(c, server, "change-password", action="complete", sessionid=sid,
                    values={"old_password": old, "new_password": "fixed-pw", "confirm": "fixed-pw"})
    assert res["command"]["status"] == "completed"
    await clients.login_fails(server, jid, old, mech="SCRAM-SHA-256")
    await (await login(server, jid, "fixed-pw")).close()


async def test_third_wrong_password_ends_the_session(server):
    jid, pw = server.add_user()
    c = await login(server, jid, pw)
    sid = (await run(c, server, "change-password"))["command"]["sessionid"]
    wrong = {"old_password": "guess", "new_password": "n", "confirm": "n"}
    for _ in range(2):
        assert (await run_error(c, server, "change-password", action="complete", sessionid=sid,
                                values=wrong))[3] == "old_password: wrong password"
    assert await run_error(c, server, "change-password", action="complete", sessionid=sid, values=wrong) == \
        ("cancel", "not-allowed", None, "old_password: wrong password 3 times; the session has ended")
    right = {"old_password": pw, "new_password": "n", "confirm": "n"}
    assert (await run_error(c, server, "change-password", action="complete", sessionid=sid,
                            values=right))[2] == "bad-sessionid"
    await (await login(server, jid, pw)).close()


async def test_cancel_mid_session_changes_nothing(server):
    jid, old = server.add_user()
    c = await login(server, jid, old)
    sid = (await run(c, server, "change-password"))["command"]["sessionid"]
    assert int(health(server)["adhoc_sessions"]) >= 1
    res = await run(c, server, "change-password", action="cancel", sessionid=sid,
                    values={"old_password": old, "new_password": "n", "confirm": "n"})
    assert res["command"]["status"] == "canceled"
    assert res["command"]["sessionid"] == sid
    # the session is over
    etype, cond, specific, _ = await run_error(c, server, "change-password", action="complete", sessionid=sid,
                                               values={"old_password": old, "new_password": "n", "confirm": "n"})
    assert (etype, cond, specific) == ("modify", "bad-request", "bad-sessionid")
    await (await login(server, jid, old)).close()


# -- sessions -------------------------------------------------------------------

async def test_session_belongs_to_its_full_jid(server):
    jid, pw = server.add_user()
    alice = await login(server, jid, pw)
    alice2 = await login(server, jid, pw)  # same account, other resource
    bob = await login(server)
    sid = (await run(alice, server, "change-password"))["command"]["sessionid"]
    forged = {"old_password": pw, "new_password": "stolen", "confirm": "stolen"}
    for other in (bob, alice2):
        etype, cond, specific, _ = await run_error(other, server, "change-password", action="complete",
                                                   sessionid=sid, values=forged)
        assert (etype, cond, specific) == ("modify", "bad-request", "bad-sessionid")
        etype, cond, specific, _ = await run_error(other, server, "change-password", action="cancel",
                                                   sessionid=sid)
        assert specific == "bad-sessionid"
    # the owner's session is untouched and the password unchanged
    await (await login(server, jid, pw)).close()
    res = await run(alice, server, "change-password", action="cancel", sessionid=sid)
    assert res["command"]["status"] == "canceled"


async def test_unknown_session(server):
    c = await login(server)
    etype, cond, specific, _ = await run_error(c, server, "change-password", action="complete",
                                               sessionid="s" + secrets.token_hex(12))
    assert (etype, cond, specific) == ("modify", "bad-request", "bad-sessionid")


async def test_malformed_and_refused_actions(server):
    user, pw = server.add_user()
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(user.split("@")[0], pw, resource="raw")

    async def ask(attrs, type_="set", payload=""):
        el = await raw.iq(f"<command xmlns='{NS_COMMANDS}' {attrs}>{payload}</command>", type_=type_,
                          to=server.domain)
        assert el.get("type") == "error", ET.tostring(el, encoding="unicode")
        err = el.find(q(NS_CLIENT, "error"))
        specific = [c.tag.split("}", 1)[1] for c in err if c.tag.startswith(f"{{{NS_COMMANDS}}}")]
        return stanza_error(el) + (specific[0] if specific else None,)

    assert await ask("node='server-info' action='bogus'") == ("modify", "bad-request", "malformed-action")
    assert await ask("node='change-password' action='complete'") == ("modify", "bad-request", "bad-action")
    assert await ask("node='server-info'", type_="get") == ("modify", "bad-request", None)
    assert await ask("action='execute'") == ("modify", "bad-request", None)
    # prev is not offered by the form stage of change-password
    el = await raw.iq(f"<command xmlns='{NS_COMMANDS}' node='change-password'/>", type_="set", to=server.domain)
    sid = el.find(q(NS_COMMANDS, "command")).get("sessionid")
    assert await ask(f"node='change-password' sessionid='{sid}' action='prev'") == \
        ("modify", "bad-request", "bad-action")
    assert await ask(f"node='change-password' sessionid='{sid}' action='next'") == \
        ("modify", "bad-request", "bad-action")
    # a form that is not a data form submission
    assert await ask(f"node='change-password' sessionid='{sid}' action='complete'",
                     payload=f"<x xmlns='{NS_DATA}' type='result'/>") == ("modify", "bad-request", "bad-payload")
    assert await ask(f"node='change-password' sessionid='{sid}' action='complete'",
                     payload=f"<x xmlns='{NS_DATA}' type='submit'><field var='a'/><field var='a'/></x>") == \
        ("modify", "bad-request", "bad-payload")
    # a command addressed to an account's JID is not the server's
    el = await raw.iq(f"<command xmlns='{NS_COMMANDS}' node='server-info'/>", type_="set", to=user)
    assert stanza_error(el) == ("cancel", "service-unavailable")
    # after all that the session still works
    el = await raw.iq(f"<command xmlns='{NS_COMMANDS}' node='change-password' sessionid='{sid}' "
                      "action='cancel'/>", type_="set", to=server.domain)
    assert el.find(q(NS_COMMANDS, "command")).get("status") == "canceled"
    await raw.close()


async def test_session_limit_per_requester(server):
    c = await login(server)
    sids = [(await run(c, server, "change-password"))["command"]["sessionid"] for _ in range(LIMIT)]
    assert len(set(sids)) == LIMIT
    etype, cond, specific, text = await run_error(c, server, "change-password")
    assert (etype, cond, specific) == ("cancel", "not-allowed", None), text
    # another requester is not affected
    other = await login(server)
    res = await run(other, server, "change-password")
    await run(other, server, "change-password", action="cancel", sessionid=res["command"]["sessionid"])
    # ending one makes room
    await run(c, server, "change-password", action="cancel", sessionid=sids[0])
    res = await run(c, server, "change-password")
    assert res["command"]["status"] == "executing"


async def test_disconnect_ends_the_sessions(server):
    before = int(health(server)["adhoc_sessions"])
    c = await login(server)
    for _ in range(3):
        await run(c, server, "change-password")
    assert int(health(server)["adhoc_sessions"]) == before + 3
    await c.close()
    await wait_for(lambda: int(health(server)["adhoc_sessions"]) == before, what="sessions freed")


async def test_expired_session(server_factory):
    srv = server_factory({"adhoc": {"session_timeout_s": 1}})
    jid, pw = srv.add_user()
    c = await login(srv, jid, pw)
    sid = (await run(c, srv, "change-password"))["command"]["sessionid"]
    # the once-a-second sweep expires it (polling here must not touch it)
    await wait_for(lambda: int(health(srv)["adhoc_sessions"]) == 0, timeout=10, what="the session to expire")
    etype, cond, specific, _ = await run_error(c, srv, "change-password", action="complete", sessionid=sid,
                                               values={"old_password": pw, "new_password": "n", "confirm": "n"})
    assert (etype, cond, specific) == ("cancel", "not-allowed", "session-expired")
    await (await login(srv, jid, pw)).close()  # nothing changed
    # a new session works
    res = await run(c, srv, "change-password")
    assert res["command"]["status"] == "executing"
