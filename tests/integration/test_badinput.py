"""Bad input: every malformed request gets its documented answer, and the
gateway keeps serving a well-behaved client throughout."""

import asyncio
import json
import os

import websockets

from tvtest import (Client, RawWs, RpcError, Stack, check, finish, http_raw,
                    run, upgrade_head)

TOKEN = "s3cret-token-for-tests-0123456789"


async def expect_error(c, method, params, kind, what, raw=None):
    if raw is not None:
        fut = asyncio.get_event_loop().create_future()
        c.pending[raw[0]] = fut
        await c.send_raw(raw[1])
        m = await asyncio.wait_for(fut, 10)
        got = m.get("error", {}).get("data", {}).get("kind")
        check(got == kind, "%s: %s (got %s)" % (what, kind, got))
        return m
    try:
        await c.call(method, params)
        check(False, "%s: %s (got a result)" % (what, kind))
    except RpcError as e:
        check(e.kind == kind, "%s: %s (got %s)" % (what, kind, e.kind))


async def protocol_errors(st, good):
    await good.mutate("db/insert", {"table": "t", "doc": {"seed": 1}})
    c = await Client.open(st.url(), connect=False)
    # Before connect.
    await expect_error(c, "tinyvex/ping", {}, "NotConnected", "ping before connect")
    await expect_error(c, "tinyvex/mutation", {"udfPath": "db/insert", "args": {}}, "NotConnected",
                       "mutation before connect")
    c.hello = await c.call("tinyvex/connect", {"sessionId": "bad"})
    await expect_error(c, "tinyvex/connect", {"sessionId": "bad"}, "InvalidRequest", "second connect")
    # Parse errors: the connection stays usable.
    await c.send_raw("{not json")
    await c.wait(lambda: any(e == ("answer", None) for e in c.events))
    check(any(e == ("answer", None) for e in c.events), "invalid JSON answered with id null")
    p = await c.call("tinyvex/ping", {})
    check(isinstance(p["serverTs"], int), "connection usable after a parse error")
    # Shapes.
    await expect_error(c, None, None, "InvalidRequest", "no jsonrpc member",
                       raw=(901, json.dumps({"id": 901, "method": "tinyvex/ping"})))
    await expect_error(c, None, None, "InvalidRequest", "method not a string",
                       raw=(902, json.dumps({"jsonrpc": "2.0", "id": 902, "method": 5})))
    await expect_error(c, None, None, "InvalidParams", "params an array",
                       raw=(903, json.dumps({"jsonrpc": "2.0", "id": 903, "method": "tinyvex/ping", "params": []})))
    await expect_error(c, "tinyvex/nope", {}, "MethodNotFound", "unknown method")
    await expect_error(c, "tinyvex/mutation", {"udfPath": "db/nope", "args": {}}, "NotFound", "unknown mutation")
    await expect_error(c, "tinyvex/action", {"udfPath": "x/y", "args": {}}, "NotFound", "actions")
    await expect_error(c, "tinyvex/query", {"udfPath": "db/query", "args": {"table": "t", "index": "nope"}},
                       "NotFound", "unknown index in a query of an existing table")
    await expect_error(c, "tinyvex/query", {"udfPath": "db/query", "args": {"table": "t", "bogus": 1}},
                       "ValidationError", "unknown query argument")
    await expect_error(c, "tinyvex/mutation", {"udfPath": "db/insert", "args": {"table": "t", "doc": {"_x": 1}}},
                       "ValidationError", "reserved field")
    await expect_error(c, "tinyvex/mutation", {"udfPath": "db/insert", "args": {"table": "9t", "doc": {}}},
                       "ValidationError", "bad table name")
    deep = {"a": 1}
    for _ in range(40):
        deep = {"a": deep}
    await expect_error(c, "tinyvex/mutation", {"udfPath": "db/insert", "args": {"table": "t", "doc": deep}},
                       "ValidationError", "document too deep")
    await expect_error(c, None, None, "TooLarge", "JSON nested past the parser's limit",
                       raw=(None, "[" * 100 + "]" * 100))
    # Batches.
    await c.send_raw("[]")
    await asyncio.sleep(0.2)
    batch = [{"jsonrpc": "2.0", "id": 11, "method": "tinyvex/ping", "params": {}},
             {"jsonrpc": "2.0", "method": "tinyvex/ping", "params": {}},
             {"jsonrpc": "2.0", "id": 12, "method": "tinyvex/nope"}]
    await c.send_raw(json.dumps(batch))
    await c.wait(lambda: ("answer", 12) in c.events)
    check(("answer", 11) in c.events and ("answer", 12) in c.events, "a batch is answered in one array")
    # Query set structure.
    await expect_error(c, "tinyvex/modifyQuerySet", {"baseVersion": 5, "newVersion": 6, "modifications": []},
                       "BaseVersionMismatch", "wrong baseVersion")
    await expect_error(c, "tinyvex/modifyQuerySet", {"baseVersion": 0, "newVersion": 0, "modifications": []},
                       "BaseVersionMismatch", "newVersion not greater")
    await expect_error(c, "tinyvex/modifyQuerySet",
                       {"baseVersion": 0, "newVersion": 1, "modifications": [{"type": "Remove", "queryId": 3}]},
                       "InvalidParams", "remove of an unknown query")
    await expect_error(c, "tinyvex/modifyQuerySet",
                       {"baseVersion": 0, "newVersion": 1,
                        "modifications": [{"type": "Add", "queryId": 1, "udfPath": "db/get", "args": {}},
                                          {"type": "Add", "queryId": 1, "udfPath": "db/get", "args": {}}]},
                       "InvalidParams", "an id added twice")
    many = [{"type": "Add", "queryId": i, "udfPath": "db/query", "args": {"table": "t", "limit": i + 1}}
            for i in range(c.hello["limits"]["maxQueries"] + 1)]
    await expect_error(c, "tinyvex/modifyQuerySet", {"baseVersion": 0, "newVersion": 1, "modifications": many},
                       "TooLarge", "over maxQueries")
    await expect_error(c, "tinyvex/modifyQuerySet",
                       {"baseVersion": 0, "newVersion": 1,
                        "modifications": [{"type": "Add", "queryId": 1, "udfPath": "db/get",
                                           "args": {"table": "t", "id": "x" * 300000}}]},
                       "TooLarge", "giant args")
    # Per-query failures are added and reported.
    c.query_set = 0
    await c.modify(add=[(1, "db/nope", {}), (2, "db/query", {"table": "t", "index": "nope"}),
                        (3, "db/query", {"table": "t", "range": [["zzz", "eq", 1]]})])
    check(c.failed.get(1, {}).get("kind") == "NotFound", "unknown udfPath: QueryFailed NotFound")
    check(c.failed.get(2, {}).get("kind") == "NotFound", "unknown index: QueryFailed NotFound")
    check(c.failed.get(3, {}).get("kind") == "ValidationError", "bad range: QueryFailed ValidationError")
    p = await c.call("tinyvex/ping", {})
    check("e+" not in json.dumps(p), "integers are plain")
    await c.close()


async def frame_errors(st):
    port = st.gateways[0].port
    cases = [
        ("unmasked frame", lambda w: w.send(w.frame(1, b'{"x":1}', mask=False)), 1002),
        ("invalid UTF-8", lambda w: w.send_text(b'"\xff\xfe"'), 1007),
        ("binary frame", lambda w: w.send(w.frame(2, b"\x00\x01")), 1003),
        ("reserved bits", lambda w: w.send(w.frame(1, b"{}", rsv=4)), 1002),
        ("fragmented ping", lambda w: w.send(w.frame(9, b"x", fin=False)), 1002),
        ("oversized message", lambda w: w.send(w.frame(1, b"x" * (1024 * 1024 + 10))), 1009),
    ]
    for what, act, code in cases:
        w = RawWs(port)
        act(w)
        got = w.close_code()
        check(got == code, "%s: close %d (got %s)" % (what, code, got))
        w.close()


def http_errors(st):
    port = st.gateways[0].port
    cases = [
        ("malformed head", "GARBAGE\r\n\r\n", 400),
        ("unknown path", "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
        ("/sync without upgrade", "GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 426),
        ("wrong version", upgrade_head(port, version="8"), 426),
        ("bad key", upgrade_head(port, key="short"), 400),
        ("refused subprotocol", upgrade_head(port, proto="other.v2"), 400),
        ("refused Origin", upgrade_head(port, "Origin: http://evil.example\r\n"), 403),
        ("DNS-rebinding Host", upgrade_head(port).replace("Host: 127.0.0.1:%d" % port, "Host: evil.example"), 403),
        ("head over the limit", "GET /sync HTTP/1.1\r\nX: " + "a" * 9000 + "\r\n\r\n", 431),
    ]
    for what, head, want in cases:
        status, hdrs, _ = http_raw(port, head)
        check(status == want, "%s: %d (got %s)" % (what, want, status))
        if want == 426:
            check("Sec-WebSocket-Version: 13" in hdrs, "%s: 426 names version 13" % what)
    status, hdrs, _ = http_raw(port, upgrade_head(port, "Origin: http://localhost:3000\r\n"
                                                  "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    check(status == 101 and "Extensions" not in hdrs, "localhost origin accepted, extension declined")
    status, hdrs, _ = http_raw(port, upgrade_head(port))
    check(status == 101 and "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in hdrs,
          "handshake answer carries the RFC 6455 accept key")


async def token_checks():
    st2 = Stack(conf="token_file %s\n" % TOKENFILE)
    try:
        st2.start_writer()
        st2.start_gateway()
        port = st2.gateways[0].port
        status, _, _ = http_raw(port, upgrade_head(port, "Authorization: Bearer wrong-token-0000000000\r\n"))
        check(status == 403, "wrong bearer token: 403 (got %s)" % status)
        c = await Client.open(st2.url(), connect=False)
        await expect_error(c, "tinyvex/connect", {"sessionId": "t"}, "Unauthorized", "connect without the token")
        await c.wait(lambda: c.closed is not None, 5)
        check(c.closed == 1008, "and the connection is closed with 1008 (%s)" % c.closed)
        c = await Client.open(st2.url(), connect=False)
        r = await c.call("tinyvex/connect", {"sessionId": "t", "token": TOKEN})
        check(r["protocol"] == 1, "token in connect accepted")
        await c.close()
        c = await Client.open(st2.url(), connect=False,
                              extra_headers={"Authorization": "Bearer " + TOKEN})
        r = await c.call("tinyvex/connect", {"sessionId": "t2"})
        check(r["protocol"] == 1, "bearer token on the upgrade accepted")
        await c.close()
    finally:
        st2.cleanup()


async def main(st):
    good = await Client.open(st.url(), "good")
    await good.modify(add=[(1, "db/query", {"table": "t"})])
    await protocol_errors(st, good)
    await frame_errors(st)
    http_errors(st)
    r = await good.mutate("db/insert", {"table": "t", "doc": {"still": "here"}})
    await good.wait(lambda: len(good.values.get(1, [])) == 2)
    check(good.values[1][-1]["_id"] == r["value"] and good.chain_ok,
          "the well-behaved client was served throughout")
    await good.close()
    await token_checks()


st = Stack(conf="max_args_bytes 100K\nmax_queries 50\n")
TOKENFILE = os.path.join(st.dir, "token")
with open(TOKENFILE, "w") as f:
    f.write(TOKEN + "\n")
try:
    st.start_writer()
    st.start_gateway()
    run(main(st))
finally:
    st.cleanup()
finish()
