"""When a diff may be sent.  Never to a connection that did not ask for
one (whose connect answer is the old one, member for member); never as a
query's first result, also when the execution it shares already has a
diff; never after a QueryFailed; never after a version the connection
skipped: a client that stops reading while a thousand tokens stream in
has its transitions coalesced (slow-consumer handling works with diffs
on), gets the full value when it reads again, and then diffs.  Every
value a diff client holds after a transition equals tinyvex/query at the
transition's ts."""

import asyncio
import json
import os
import time

from tvtest import Client, RawWs, apply_diff, check, run_stack

SOFT = "output_soft_limit 2M\noutput_hard_limit 8M\noutput_soft_grace 30s\n"
CONF = SOFT + "query_max_rows 5\n"
SCALE = float(os.environ.get("TINYVEX_TEST_SCALE", "1"))
FILL = 400000          # bytes of the filler document's field
FILLS = 50             # its rewrites: 20 MB, past what the kernel buffers
OLD_CONNECT = {"protocol", "serverTs", "gatewayId", "limits"}


def mod_of(t, q):
    for m in t["modifications"]:
        if m["queryId"] == q:
            return m
    return None


async def truth_at(w, udf, args, ts):
    return (await w.call("tinyvex/query", {"udfPath": udf, "args": args, "ts": ts}))["value"]


async def main(st):
    w = await Client.open(st.url(), "writer")
    plain = await Client.open(st.url(), "plain")
    check(set(plain.hello) == OLD_CONNECT, "connect without features: the old answer (%s)" %
          sorted(plain.hello))
    a = await Client.open(st.url(), "a", features=["diff"])
    msg = (await w.mutate("db/insert", {"table": "msgs", "doc": {"text": ""}}))["value"]
    q = ("db/query", {"table": "msgs"})
    await plain.modify(add=[(1, q[0], q[1])])
    await a.modify(add=[(1, q[0], q[1])])
    check(mod_of(a.transitions[-1], 1)["type"] == "QueryUpdated", "first result: QueryUpdated")
    for i in range(5):
        await w.mutate("db/patch", {"table": "msgs", "id": msg, "set": {"text": "tok " * (i + 1)}})
    await a.wait(lambda: a.diffs >= 5, 10)
    check(a.diffs == 5, "then each token a QueryDiff (%d)" % a.diffs)
    m = mod_of(a.transitions[-1], 1)
    check(m is not None and m["type"] == "QueryDiff" and "hash" not in m,
          "an append as ops, without a hash when resume was not asked for: %s" % json.dumps(m))
    check(m is not None and m.get("ops") == [{"op": "update", "id": msg, "append": {"text": "tok "}}],
          "the append carries the token only")

    # A second diff client on the same execution, and the first re-adding
    # it under another id: their first results are values.
    b = await Client.open(st.url(), "b", features=["diff", "resume"])
    await b.modify(add=[(7, q[0], q[1])])
    check(mod_of(b.transitions[-1], 7)["type"] == "QueryUpdated",
          "a new subscriber to an execution that has a diff gets the value")
    await a.modify(add=[(2, q[0], q[1])], remove=[1])
    check(mod_of(a.transitions[-1], 2)["type"] == "QueryUpdated", "so does a re-added query")
    await plain.wait(lambda: plain.values.get(1) == a.values.get(2), 5)
    check(plain.diffs == 0 and all(m["type"] != "QueryDiff" for t in plain.transitions
                                   for m in t["modifications"]),
          "the client without features was never sent a diff")

    # A failure in between: the next result is a value again.
    for i in range(4):
        await w.mutate("db/insert", {"table": "msgs", "doc": {"text": "x%d" % i}})
    await a.wait(lambda: len(a.values.get(2) or []) == 5, 5)
    extra = (await w.mutate("db/insert", {"table": "msgs", "doc": {"text": "six"}}))["value"]
    await a.wait(lambda: 2 in a.failed, 5)
    check(a.failed.get(2, {}).get("kind") == "TooLarge", "six documents over query_max_rows 5: QueryFailed")
    await w.mutate("db/delete", {"table": "msgs", "id": extra})
    await a.wait(lambda: 2 in a.values, 5)
    check(mod_of(a.transitions[-1], 2)["type"] == "QueryUpdated", "after QueryFailed: QueryUpdated")
    await w.mutate("db/patch", {"table": "msgs", "id": msg, "set": {"text": "after"}})
    await a.wait(lambda: mod_of(a.transitions[-1], 2) is not None and
                 mod_of(a.transitions[-1], 2)["type"] == "QueryDiff", 5)
    check(mod_of(a.transitions[-1], 2)["type"] == "QueryDiff", "and diffs again after that")
    check(not a.diff_errors and not b.diff_errors, "every diff applied")

    # A reader that stops reading while a thousand tokens stream into
    # one of fifty 8 KB documents.
    big = []
    for i in range(50):
        big.append((await w.mutate("db/insert", {"table": "big",
                                                 "doc": {"i": i, "text": "y" * 8000}}))["value"])
    w0 = w
    path = os.path.join(st.dir, "slow.conf")
    with open(path, "w") as f:
        f.write(SOFT)
    g = st.start_gateway(extra=["-f", path])
    w = await Client.open(st.url(g.port), "writer2")
    slow = RawWs(g.port)
    slow.send_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tinyvex/connect",
                               "params": {"sessionId": "slow", "features": ["diff", "resume"]}}))
    # Beside it, a document whose 400 KB field is rewritten now and then,
    # so that the reader's socket fills.
    filler = (await w.mutate("db/insert", {"table": "filler", "doc": {"b": "0" * FILL}}))["value"]
    bq = {"table": "big", "limit": 50}
    slow.send_text(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tinyvex/modifyQuerySet",
                               "params": {"baseVersion": 0, "newVersion": 1, "modifications": [
                                   {"type": "Add", "queryId": 1, "udfPath": "db/query",
                                    "args": bq},
                                   {"type": "Add", "queryId": 2, "udfPath": "db/get",
                                    "args": {"table": "filler", "id": filler}}]}}))
    await asyncio.sleep(0.5)
    text = "y" * 8000
    writes = max(100, int(300 * SCALE))
    every = max(1, writes // FILLS)
    for k in range(writes):
        text += "t%d " % k
        await w.mutate("db/patch", {"table": "big", "id": big[k % 3], "set": {"text": text}})
        if k % every == 0:
            await w.mutate("db/patch", {"table": "filler", "id": filler,
                                        "set": {"b": str(k // every % 10) * FILL}})
    final = await w.call("tinyvex/query", {"udfPath": "db/query", "args": bq})
    loop = asyncio.get_event_loop()
    slow.s.settimeout(10)
    version = {"querySet": 0, "identity": 0, "ts": 0}
    chained, value, seen = True, None, []
    errors = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = await loop.run_in_executor(None, slow.read_message)
        if m is None:
            errors.append("closed")
            break
        if m.get("method") != "tinyvex/transition":
            continue
        p = m["params"]
        chained = chained and p["startVersion"] == version
        version = p["endVersion"]
        mod = mod_of(p, 1)
        if mod is None:
            continue
        if mod["type"] == "QueryUpdated":
            value = mod["value"]
        elif mod["type"] == "QueryDiff":
            try:
                value = apply_diff(value, mod)
            except (KeyError, ValueError, TypeError, IndexError) as e:
                errors.append(repr(e))
        seen.append((mod["type"], version["ts"], value))
        if value == final["value"]:
            break
    check(value == final["value"], "the slow diff reader caught up to the newest state (%s)" % errors[:2])
    check(chained, "its versions chained")
    check(len(seen) < writes / 2, "its transitions were coalesced (%d for %d writes)" % (len(seen), writes))
    kinds = [k for k, _, _ in seen]
    check(kinds.count("QueryUpdated") >= 2,
          "after the versions it skipped, it was sent the value (%d values, %d diffs)" % (
              kinds.count("QueryUpdated"), kinds.count("QueryDiff")))
    wrong = 0
    for kind, ts, val in seen:
        if val != await truth_at(w, "db/query", bq, ts):
            wrong += 1
    check(wrong == 0, "each of its %d values equals tinyvex/query at its ts (%d wrong)" % (len(seen), wrong))
    # Reading again: the next tokens come as diffs.
    n0 = kinds.count("QueryDiff")
    for k in range(5):
        text += "u%d " % k
        await w.mutate("db/patch", {"table": "big", "id": big[0], "set": {"text": text}})
    final = await w.call("tinyvex/query", {"udfPath": "db/query", "args": bq})
    while value != final["value"] and time.time() < deadline:
        m = await loop.run_in_executor(None, slow.read_message)
        if m is None:
            break
        if m.get("method") == "tinyvex/transition" and mod_of(m["params"], 1):
            mod = mod_of(m["params"], 1)
            kinds.append(mod["type"])
            value = mod["value"] if mod["type"] == "QueryUpdated" else apply_diff(value, mod)
    check(value == final["value"] and kinds.count("QueryDiff") > n0,
          "once it reads again, diffs (%d more)" % (kinds.count("QueryDiff") - n0))
    slow.close()
    for c in (w, w0, plain, a, b):
        await c.close()


run_stack(main, conf=CONF)
