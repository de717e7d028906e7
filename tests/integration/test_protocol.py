"""Protocol details: shared executions for identical subscriptions,
idempotent mutations across reconnects and gateways, connect with
maxObservedTs, reads at a past ts, and integers that stay integers."""

import asyncio
import json
import time

import websockets

from tvtest import Client, RpcError, Stack, check, finish, run


async def main(st):
    g1, g2 = st.gateways[0].port, st.gateways[1].port
    a = await Client.open(st.url(g1), "sess-a")
    b = await Client.open(st.url(g1), "sess-b")
    q = {"table": "items", "order": "desc", "limit": 3}
    await a.modify(add=[(1, "db/query", q)])
    # The same query with its args in another member order.
    await b.modify(add=[(9, "db/query", {"limit": 3, "order": "desc", "table": "items"})])
    h = st.health(g1)
    check(h["executions"] == 1, "identical subscriptions share one execution (%d)" % h["executions"])
    r0 = h["reruns"]
    await a.mutate("db/insert", {"table": "items", "doc": {"n": 1}})
    await b.wait(lambda: len(b.values.get(9, [])) == 1)
    check(st.health(g1)["reruns"] - r0 == 1, "one commit reran the shared execution once")
    check(a.values[1] == b.values[9], "both subscribers got the same value")

    # Idempotency: the same requestId, again, on another connection and on
    # another gateway, returns the first outcome and writes nothing.
    first = await a.mutate("db/insert", {"table": "items", "doc": {"n": 2}}, request_id="req-1")
    again = await a.mutate("db/insert", {"table": "items", "doc": {"n": 2}}, request_id="req-1")
    check(again == first, "a resend returns the first outcome")
    a2 = await Client.open(st.url(g2), "sess-a")
    other = await a2.mutate("db/insert", {"table": "items", "doc": {"n": 999}}, request_id="req-1")
    check(other == first, "the same session on another gateway gets the same outcome, whatever its args")
    num = await a2.mutate("db/insert", {"table": "items", "doc": {"n": 3}}, request_id=1)
    check(num["value"] != first["value"], "integer requestId 1 is a key of its own")
    strk = await a2.mutate("db/insert", {"table": "items", "doc": {"n": 4}}, request_id="1")
    check(strk["value"] != num["value"], "and string \"1\" differs from integer 1")
    try:
        await a.mutate("db/patch", {"table": "items", "id": "0" * 26, "set": {"x": 1}}, request_id="req-2")
    except RpcError as e:
        k1 = e.kind
    try:
        await a2.mutate("db/patch", {"table": "items", "id": "0" * 26, "set": {"x": 1}}, request_id="req-2")
    except RpcError as e:
        k2 = e.kind
    check(k1 == k2 == "NotFound", "a recorded NotFound replays as NotFound")
    allq = await a.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": "items"}})
    ns = sorted(d["n"] for d in allq["value"])
    check(ns == [1, 2, 3, 4], "nothing was written twice (%s)" % ns)

    # maxObservedTs: behind the gateway → immediate; ahead → Unavailable
    # after connect_wait.
    c = await Client.open(st.url(g2), connect=False)
    r = await c.call("tinyvex/connect", {"sessionId": "x", "maxObservedTs": allq["ts"]})
    check(r["protocol"] == 1, "connect with a maxObservedTs already reached answers at once")
    d = await Client.open(st.url(g2), connect=False)
    t0 = time.time()
    try:
        await d.call("tinyvex/connect", {"sessionId": "y", "maxObservedTs": allq["ts"] + 10 ** 12})
        check(False, "connect with a future maxObservedTs fails")
    except RpcError as e:
        check(e.kind == "Unavailable", "connect with a future maxObservedTs: Unavailable")
    check(0.8 <= time.time() - t0 < 4, "after waiting connect_wait (%.2f s)" % (time.time() - t0))

    # A read at a past ts sees the state at that ts.
    past = await a.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": "items"}, "ts": first["ts"]})
    check(sorted(x["n"] for x in past["value"]) == [1, 2] and past["ts"] == first["ts"],
          "a read at a past ts sees exactly the writes up to it")

    # Integers on the wire are plain integers.
    raw = await websockets.connect(st.url(g1), subprotocols=["tinyvex.v1"])
    await raw.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tinyvex/connect", "params": {"sessionId": "r"}}))
    text = await raw.recv()
    await raw.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tinyvex/query",
                               "params": {"udfPath": "db/query", "args": {"table": "items"}}}))
    text += await raw.recv()
    check("e+" not in text and "E+" not in text, "no integer in exponent form")
    check('"ts":%d' % allq["ts"] in text or '"ts":' in text, "ts printed as an integer")
    await raw.close()
    for x in (a, b, a2, c, d):
        await x.close()


st = Stack(conf="connect_wait 1s\n")
try:
    st.start_writer()
    st.start_gateway()
    st.start_gateway()
    run(main(st))
finally:
    st.cleanup()
finish()
