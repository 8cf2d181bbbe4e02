"""Helpers for driving XEP-0050 ad-hoc commands on the server JID with
slixmpp's xep_0050 / xep_0004 plugins (a standard client library)."""

import clients
from clients import IqError, health, wait_for  # noqa: F401 (re-exported)
from rawxmpp import NS_CLIENT

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
PLUGINS = ("xep_0004", "xep_0050")


async def login(server, user=None, password=None):
    jid, pw = (user, password) if user else server.add_user()
    return await clients.login(server, jid, pw, plugins=PLUGINS)


async def guest(server):
    return await clients.login(server, server.guest_domain, "", mech="ANONYMOUS", plugins=PLUGINS)


async def run(c, server, node, action="execute", sessionid=None, values=None):
    """One command request with slixmpp's send_command; values (a dict) is
    sent as a submitted form.  Returns the result Iq (raises IqError)."""
    payload = None
    if values is not None:
        payload = c["xep_0004"].make_form(ftype="submit")
        for var, value in values.items():
            payload.add_field(var=var, value=value)
    return await c["xep_0050"].send_command(server.domain, node, action=action, sessionid=sessionid,
                                            payload=payload, timeout=10)


async def run_error(c, server, node, **kw):
    """Like run() but expects an IQ error; returns (type, condition,
    XEP-0050 specific condition or None, text)."""
    try:
        res = await run(c, server, node, **kw)
    except IqError as e:
        err = e.iq["error"]
        el = e.iq.xml.find(f"{{{NS_CLIENT}}}error")
        specific = [child.tag.split("}", 1)[1] for child in el if child.tag.startswith(f"{{{NS_COMMANDS}}}")]
        assert len(specific) <= 1, str(e.iq)
        return err["type"], err["condition"], (specific[0] if specific else None), err["text"]
    raise AssertionError(f"expected an error, got {res}")


def form_values(iq):
    return iq["command"]["form"].get_values()


async def command_nodes(c, server):
    items = await c["xep_0030"].get_items(jid=server.domain, node=NS_COMMANDS, timeout=10)
    return {node: name for _jid, node, name in items["disco_items"]["items"]}
