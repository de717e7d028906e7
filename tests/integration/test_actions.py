"""Providers and actions across two gateways (DESIGN section 5, "Providers
and actions"): a provider on one gateway serves callers on the other;
values and ActionFailed errors (with data) come back intact; NotFound
without a provider; an exact name before a prefix; the agent pattern (a
provider streams 200 appends into a message with mutations on its own
connection, and the caller's answer comes after the final text is on its
screen); and the refusals: a browser origin, a missing or wrong
provider_token, db/ names, a response to an id never sent, a response from
a connection that provides nothing; and the limits: 64 functions a
connection, concurrency 1 to 1024, a connection's calls in flight
(max_pending_mutations), and a queue served oldest first."""

import asyncio
import json
import sys

from tvtest import Client, RpcError, check, ctl, run_stack
from tvaction import ActionError, Provider, open_provider

TOKEN = "provider-token-0123456789"
PENDING = 8         # max_pending_mutations: also a connection's actions
CONF = "provider_token %s\nmax_pending_mutations %d\n" % (TOKEN, PENDING)


async def expect_error(coro, kind, what):
    try:
        r = await coro
    except RpcError as e:
        check(e.kind == kind, "%s: %s (%s: %s)" % (what, kind, e.kind, e.err.get("message")))
        return e.err
    check(False, "%s: %s, not %r" % (what, kind, r))
    return None


async def routing(st, g2):
    async def general(p, params):
        if params["udfPath"] == "x/fail":
            raise ActionError("it broke", {"why": "because", "n": [1, 2, 3]})
        if params["udfPath"] == "x/long":
            raise ActionError("\u00e9" * 3000)
        return {"by": "prefix", "path": params["udfPath"], "args": params["args"],
                "session": params["sessionId"]}

    async def exact(p, params):
        return {"by": "exact", "path": params["udfPath"]}

    pa, ra = await open_provider(st.url(), general, ["x/*"], session="pa", token=TOKEN)
    check(isinstance(ra.get("providerId"), str), "provide answers a providerId (%r)" % ra)
    pb, rb = await open_provider(st.url(), exact, ["x/exact"], session="pb",
                                 token=TOKEN, concurrency=4)
    check(ra["providerId"] != rb["providerId"], "provider ids differ")

    c = await Client.open(st.url(g2.port), session="caller")
    args = {"s": "h\u00e9llo \"q\"", "n": 1.5, "l": [None, True, {"k": []}]}
    r = await c.call("tinyvex/action", {"udfPath": "x/echo", "args": args})
    check(r["value"] == {"by": "prefix", "path": "x/echo", "args": args, "session": "caller"},
          "a caller on the other gateway gets the value intact (%r)" % r)
    check(r["ts"] == 0, "ts is 0 when the provider was sent none (%r)" % r.get("ts"))
    r = await c.call("tinyvex/action", {"udfPath": "x/exact", "args": {}})
    check(r["value"]["by"] == "exact", "an exact name goes before a prefix (%r)" % r)
    r = await c.call("tinyvex/action", {"udfPath": "x/exactly", "args": {}})
    check(r["value"]["by"] == "prefix", "a longer name goes to the prefix (%r)" % r)
    err = await expect_error(c.call("tinyvex/action", {"udfPath": "x/fail", "args": {}}),
                             "ActionFailed", "a provider's error")
    if err:
        check(err["code"] == -32011 and err["message"] == "it broke" and
              err["data"] == {"kind": "ActionFailed", "data": {"why": "because", "n": [1, 2, 3]}},
              "ActionFailed carries the message and data intact (%r)" % err)
    err = await expect_error(c.call("tinyvex/action", {"udfPath": "x/long", "args": {}}),
                             "ActionFailed", "a provider's long error message")
    if err:
        check(err["message"] == "\u00e9" * 512,
              "is cut at 1024 bytes, on a character boundary (%d characters)" %
              len(err["message"]))
    await expect_error(c.call("tinyvex/action", {"udfPath": "y/none", "args": {}}),
                       "NotFound", "no provider")
    await expect_error(c.call("tinyvex/action", {"udfPath": "x", "args": {}}),
                       "NotFound", "a prefix does not match its own directory name")

    # unprovide: the exact name goes, its calls fall to the prefix.
    r = await pb.call("tinyvex/unprovide", {"functions": ["x/exact"]})
    check(r == {}, "unprovide answers {}")
    r = await c.call("tinyvex/action", {"udfPath": "x/exact", "args": {}})
    check(r["value"]["by"] == "prefix", "after unprovide the prefix serves it (%r)" % r)

    # A second provide adds to the set.
    await pb.provide(["z/one"], token=TOKEN)
    await pb.provide(["z/two"], token=TOKEN)
    r1 = await c.call("tinyvex/action", {"udfPath": "z/one", "args": {}})
    r2 = await c.call("tinyvex/action", {"udfPath": "z/two", "args": {}})
    check(r1["value"]["path"] == "z/one" and r2["value"]["path"] == "z/two",
          "a second provide adds to the first")

    stats = ctl(st, "stats")
    acts = stats.get("actions", {})
    fns = sorted(f for p in acts.get("providers", []) for f in p["functions"])
    check(fns == ["x/*", "z/one", "z/two"], "tinyvexctl stats lists the functions (%r)" % fns)
    conc = [p["concurrency"] for p in acts.get("providers", []) if "z/one" in p["functions"]]
    check(conc == [4], "a provide without concurrency keeps the one in force (%r)" % conc)
    check(acts.get("completed", 0) >= 6 and acts.get("failed") == 2 and
          acts.get("not_found") == 2, "stats count completed, failed, not found (%r)" %
          {k: v for k, v in acts.items() if k != "providers"})
    text = ctl(st, "stats", raw=True).stdout
    check("x/*" in text and "in flight" in text,
          "the text form of stats shows providers and calls in flight")
    for x in (pa, pb, c):
        await x.close()


async def agent(st, g2):
    n = 200

    async def reply(p, params):
        r = await p.mutate("db/insert", {"table": "messages",
                                         "doc": {"thread": params["args"]["thread"],
                                                 "text": ""}})
        mid = r["value"]
        text = ""
        for i in range(n):
            tok = "t%d " % i
            text += tok
            await p.mutate("db/patch", {"table": "messages", "id": mid,
                                        "set": {"text": text}})
        return {"id": mid, "text": text}

    prov, _ = await open_provider(st.url(), reply, ["agent/*"], session="agent",
                                  token=TOKEN)
    c = await Client.open(st.url(g2.port), session="ui")
    await c.modify(add=[(1, "db/query", {"table": "messages"})])
    fut = await c.request("tinyvex/action", {"udfPath": "agent/reply",
                                             "args": {"thread": "t1"}})
    seen_at_answer = []

    def on_answer(f):
        seen_at_answer.append(json.loads(json.dumps(c.values.get(1))))
    fut.add_done_callback(on_answer)
    m = await asyncio.wait_for(fut, 120)
    check("result" in m, "agent/reply answered (%r)" % str(m)[:200])
    final = m.get("result", {}).get("value", {}).get("text")
    want = "".join("t%d " % i for i in range(n))
    check(final == want, "the answer carries the whole reply")
    at = seen_at_answer[0] if seen_at_answer else None
    check(at is not None and len(at) == 1 and at[0]["text"] == want,
          "the final text was on the caller's screen when the answer arrived")
    check(m.get("result", {}).get("ts", 0) > 0, "the answer's ts is the provider's last write")
    texts = []
    for t in c.transitions:
        for mod in t["modifications"]:
            if mod["type"] == "QueryUpdated" and mod["queryId"] == 1 and mod["value"]:
                texts.append(mod["value"][0]["text"])
    mono = all(texts[i + 1].startswith(texts[i]) and len(texts[i + 1]) >= len(texts[i])
               for i in range(len(texts) - 1))
    check(mono and texts and texts[-1] == want,
          "the subscriber saw the text grow monotonically to the full reply (%d steps)" % len(texts))
    check(c.chain_ok, "the caller's transitions chain")
    await prov.close()
    await c.close()


async def refusals(st, g2):
    async def h(p, params):
        return 1

    c = await Client.open(st.url(), session="plain")
    await expect_error(c.call("tinyvex/provide", {"functions": ["a/b"]}),
                       "Unauthorized", "a provide without the configured provider_token")
    await expect_error(c.call("tinyvex/provide", {"functions": ["a/b"], "token": "wrong" * 5}),
                       "Unauthorized", "a provide with a wrong provider_token")
    await expect_error(c.call("tinyvex/provide", {"functions": ["db/x"], "token": TOKEN}),
                       "ValidationError", "a provide of db/x")
    await expect_error(c.call("tinyvex/provide", {"functions": ["db/*"], "token": TOKEN}),
                       "ValidationError", "a provide of db/*")
    await expect_error(c.call("tinyvex/provide", {"functions": ["a*"], "token": TOKEN}),
                       "ValidationError", "a provide of a malformed prefix")
    await expect_error(c.call("tinyvex/provide", {"functions": [], "token": TOKEN}),
                       "InvalidParams", "a provide of no functions")
    await expect_error(c.call("tinyvex/provide", {"functions": ["a/b"], "token": TOKEN,
                                                  "concurrency": 0}),
                       "InvalidParams", "a provide with concurrency 0")
    await expect_error(c.call("tinyvex/provide", {"functions": ["a/b"], "token": TOKEN,
                                                  "concurrency": 1025}),
                       "InvalidParams", "a provide with concurrency over 1024")
    await expect_error(c.call("tinyvex/provide", {"functions": ["f/%d" % i for i in range(65)],
                                                  "token": TOKEN}),
                       "TooLarge", "a provide of 65 functions")
    await expect_error(c.call("tinyvex/provide", {"functions": ["f/" + "x" * 127],
                                                  "token": TOKEN}),
                       "ValidationError", "a provide of a 129-byte name")

    b = await Client.open(st.url(g2.port), session="browser", origin="http://localhost:5173")
    await expect_error(b.call("tinyvex/provide", {"functions": ["a/b"], "token": TOKEN}),
                       "Unauthorized", "a provide from a browser origin")
    r = await b.call("tinyvex/ping", {})
    check("serverTs" in r, "the browser connection stays usable")

    # Nothing was registered by any of those.
    acts = ctl(st, "stats").get("actions", {})
    check(acts.get("providers") == [], "no refused provide registered anything (%r)" %
          acts.get("providers"))
    await expect_error(c.call("tinyvex/action", {"udfPath": "a/b", "args": {}}),
                       "NotFound", "a/b has no provider after the refusals")

    # Responses: from a provider to an id it was never sent, from a client
    # that provides nothing.
    p, _ = await open_provider(st.url(), h, ["a/b"], session="prov", token=TOKEN)
    for who, conn, rid in (("a provider", p, "r999"), ("a non-provider", c, "r1")):
        fut = asyncio.get_event_loop().create_future()
        conn.pending[rid] = fut
        await conn.send_raw(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"x": 1}}))
        m = await asyncio.wait_for(fut, 10)
        check(m.get("error", {}).get("code") == -32600 and m.get("id") == rid,
              "a response from %s to an unknown id is answered InvalidRequest (%r)" % (who, m))
    before = ctl(st, "stats")["actions"]
    r = await c.call("tinyvex/action", {"udfPath": "a/b", "args": {}})
    check(r["value"] == 1, "calls still work after the stray responses")
    after = ctl(st, "stats")["actions"]
    check(after["completed"] == before["completed"] + 1 and after["failed"] == before["failed"],
          "the stray responses changed nothing")
    for x in (p, b, c):
        await x.close()


async def limits(st, g2):
    gate = asyncio.Event()

    async def slow(p, params):
        await gate.wait()
        return params["args"]["i"]

    p, _ = await open_provider(st.url(), slow, ["slow/*"], session="slow", token=TOKEN,
                               concurrency=1)
    await p.provide(["slow2/%d" % i for i in range(63)], token=TOKEN)
    await expect_error(p.provide(["slow3/x"], token=TOKEN), "TooLarge",
                       "a 65th function on one connection")
    c = await Client.open(st.url(g2.port), session="many")
    futs = [await c.request("tinyvex/action", {"udfPath": "slow/x", "args": {"i": i}})
            for i in range(PENDING + 1)]
    m = await asyncio.wait_for(futs[-1], 10)
    check(m.get("error", {}).get("data", {}).get("kind") == "Overloaded",
          "a connection's actions past max_pending_mutations: Overloaded (%r)" % m)
    acts = ctl(st, "stats")["actions"]
    check(acts["in_flight"] == 1 and acts["queued"] == PENDING - 1,
          "concurrency 1: one in flight, the rest queued (%d, %d)" % (
              acts["in_flight"], acts["queued"]))
    gate.set()
    done = await asyncio.wait_for(asyncio.gather(*futs[:-1]), 20)
    check([m.get("result", {}).get("value") for m in done] == list(range(PENDING)),
          "then they all finish, in order")
    check(p.max_inflight == 1, "never more than one at a time (%d)" % p.max_inflight)
    await p.close()
    await c.close()


async def main(st):
    g2 = st.start_gateway()
    await routing(st, g2)
    await refusals(st, g2)
    await limits(st, g2)
    await agent(st, g2)


run_stack(main, conf=CONF)
