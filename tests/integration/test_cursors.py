"""db/paginate's arguments and cursors refused: a cursor of another
table, index or order, truncated, damaged, forged (a well-formed cursor
with a valid check around a key that is not one of the index, or naming
another table) and oversized cursors fail with ValidationError and
data.reason "InvalidCursor", in one-shot queries and subscriptions
alike; a forged key that is well formed only narrows the walk of the
index it is used on; endCursor pages past the maximum are TooLarge.  The
gateway stays up throughout."""

import base64
import struct

from tvtest import Client, RpcError, check, run_stack

SCHEMA = {"tables": {"a": {"indexes": {"by_n": ["n"]}}, "b": {}}}
CONF = "query_max_rows 50\n"
FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3


def fnv(data):
    h = FNV_OFFSET
    for x in data:
        h = ((h ^ x) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def forge(flags, table_id, index_id, key, version=1):
    body = struct.pack(">BBqqH", version, flags, table_id, index_id, len(key)) + key
    return b64(body + struct.pack(">I", fnv(body) & 0xFFFFFFFF))


def parts(cursor):
    raw = unb64(cursor)
    version, flags, table_id, index_id, keylen = struct.unpack(">BBqqH", raw[:20])
    return flags, table_id, index_id, raw[20:20 + keylen]


async def paginate(c, args):
    return (await c.call("tinyvex/query", {"udfPath": "db/paginate", "args": args}))["value"]


async def refused(c, args, reason="InvalidCursor", kind="ValidationError"):
    try:
        await paginate(c, args)
    except RpcError as e:
        data = e.err.get("data", {})
        return data.get("kind") == kind and data.get("reason") == reason
    return False


async def main(st):
    c = await Client.open(st.url(), "c")
    ops = [{"op": "insert", "table": "a", "doc": {"n": i}} for i in range(60)]
    ops += [{"op": "insert", "table": "b", "doc": {"n": i}} for i in range(5)]
    await c.mutate("db/batch", {"ops": ops})
    a = {"table": "a", "index": "by_n", "numItems": 10}
    p1 = await paginate(c, a)
    cur = p1["continueCursor"]
    check([d["n"] for d in p1["page"]] == list(range(10)) and not p1["isDone"],
          "a first page of 10")
    p2 = await paginate(c, dict(a, cursor=cur))
    check([d["n"] for d in p2["page"]] == list(range(10, 20)), "the next page starts after it")
    b = await paginate(c, {"table": "b", "numItems": 2})

    check(await refused(c, {"table": "b", "numItems": 5, "cursor": cur}),
          "a cursor of another table: InvalidCursor")
    check(await refused(c, dict(a, index="by_creation_time", cursor=cur)),
          "a cursor of another index: InvalidCursor")
    check(await refused(c, dict(a, order="desc", cursor=cur)),
          "a cursor of the other order: InvalidCursor")
    check(await refused(c, dict(a, cursor=b["continueCursor"])),
          "table b's cursor on table a: InvalidCursor")
    check(await refused(c, dict(a, endCursor=b["continueCursor"])),
          "another table's cursor as endCursor: InvalidCursor")
    ok = True
    for n in (0, 1, 2, 5, 27, len(cur) - 1):
        ok &= await refused(c, dict(a, cursor=cur[:n] if n else "x"))
    check(ok, "truncated cursors: InvalidCursor")
    ok = True
    for i in range(0, len(cur), 3):
        flip = "A" if cur[i] != "A" else "B"
        ok &= await refused(c, dict(a, cursor=cur[:i] + flip + cur[i + 1:]))
    check(ok, "a cursor with any one character changed: InvalidCursor")
    ok = True
    for bad in ("", "=", cur + "=", cur + "A", "!" * 40, "A" * 7000, "\u00e9" * 30,
                cur.replace(cur[5], "+"), cur + cur):
        ok &= await refused(c, dict(a, cursor=bad))
    check(ok, "padding, stray characters, oversized and doubled cursors: InvalidCursor")
    check(await refused(c, dict(a, cursor=42), reason=None),
          "a cursor that is not a string: ValidationError without a reason")

    flags, table_id, index_id, key = parts(cur)
    check(await refused(c, dict(a, cursor=forge(flags, table_id, index_id, key, version=2))),
          "a cursor of an unknown version: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags | 0x80, table_id, index_id, key))),
          "a cursor with an unknown flag: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, table_id, index_id, key[:-3]))),
          "a forged cursor with a truncated key: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, table_id, index_id, key + b"\x02"))),
          "a forged cursor with a value too many: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, table_id, index_id, b"\x05ab\x00\x00"))),
          "a forged cursor whose key lacks fields: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, table_id, index_id, b"\xff" * 4096))),
          "a forged cursor with 4096 bytes of garbage key: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, table_id + 1, index_id + 1, key))),
          "a forged cursor naming another table: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, 0, 0, key))),
          "a forged cursor naming table 0: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags, -1, index_id, key))),
          "a forged cursor with a negative id: InvalidCursor")
    check(await refused(c, dict(a, cursor=forge(flags | 2, table_id, index_id, key))),
          "a forged end that carries a key: InvalidCursor")
    # A well-formed key past every document narrows the walk to nothing.
    big = b"\x03" + struct.pack(">Q", 0xC0F0000000000000) + key[9:]
    p = await paginate(c, dict(a, cursor=forge(flags, table_id, index_id, big)))
    check(p["page"] == [] and p["isDone"], "a forged key past the end: an empty, done page")
    # With a range, a cursor from outside it never widens it.
    rng = [["n", "gte", 30], ["n", "lt", 35]]
    p = await paginate(c, dict(a, range=rng, cursor=cur))
    check([d["n"] for d in p["page"]] == [30, 31, 32, 33, 34] and p["isDone"],
          "a cursor below the range: the page stays inside the range")
    low = parts((await paginate(c, dict(a, numItems=1)))["continueCursor"])[3]
    p = await paginate(c, dict(a, range=rng, endCursor=forge(flags, table_id, index_id, low)))
    check(p["page"] == [], "an endCursor below the range: an empty page")

    # numItems and endCursor against the maximum (50).
    check(await refused(c, dict(a, numItems=0), reason=None),
          "numItems 0: ValidationError")
    check(await refused(c, dict(a, numItems=51), reason=None),
          "numItems over the maximum: ValidationError")
    end = (await paginate(c, dict(a, numItems=50)))["continueCursor"]
    p = await paginate(c, {"table": "a", "index": "by_n", "numItems": 1, "endCursor": end})
    check(len(p["page"]) == 50 and p["continueCursor"] == end and not p["isDone"],
          "an endCursor page holds everything up to it, 50 documents")
    last = await paginate(c, dict(a, cursor=end))
    check(len(last["page"]) == 10 and last["isDone"], "the last page holds the other 10")
    check(await refused(c, {"table": "a", "index": "by_n", "numItems": 1,
                            "endCursor": last["continueCursor"]},
                        reason=None, kind="TooLarge"),
          "an endCursor page of 60 documents, over the maximum: TooLarge")

    # At a past ts, pages read the log as it stood then.
    then = (await c.call("tinyvex/query", {"udfPath": "db/paginate", "args": a}))["ts"]
    await c.mutate("db/insert", {"table": "a", "doc": {"n": -1}})
    now = await paginate(c, a)
    past = (await c.call("tinyvex/query", {"udfPath": "db/paginate", "args": a,
                                           "ts": then}))["value"]
    check(now["page"][0]["n"] == -1 and past == p1,
          "a page at a past ts is the page as it was then")
    past2 = (await c.call("tinyvex/query", {"udfPath": "db/paginate", "args": dict(
        a, cursor=cur), "ts": then}))["value"]
    check(past2 == p2, "and so is the page after it")
    check(await refused(c, {"table": "a", "index": "by_n"}, reason=None),
          "numItems missing: ValidationError")

    # A subscription with a bad cursor fails with the reason, and stays.
    await c.modify(add=[(1, "db/paginate", dict(a, cursor=cur[:-2]))])
    err = c.failed.get(1, {})
    check(err.get("kind") == "ValidationError" and
          err.get("data", {}).get("reason") == "InvalidCursor",
          "a subscribed page with a truncated cursor: QueryFailed, InvalidCursor (%r)" % err)

    # A table that does not exist yet: an empty last page that grows.
    await c.modify(add=[(2, "db/paginate", {"table": "later", "numItems": 5})])
    check(c.values.get(2, {}).get("page") == [] and c.values[2]["isDone"],
          "a page of a table that does not exist: empty and done")
    for i in range(7):
        await c.mutate("db/insert", {"table": "later", "doc": {"i": i}})
    await c.wait(lambda: len(c.values[2]["page"]) == 7)
    check([d["i"] for d in c.values[2]["page"]] == list(range(7)),
          "once it appears, the pinned end of the empty table keeps all 7")
    check((await c.call("tinyvex/ping", {})) is not None and st.health() is not None,
          "the gateway is up")
    await c.close()


run_stack(main, schema=SCHEMA, conf=CONF)
