"""db/tables, live: a subscription is updated when a table appears (by a
first insert, or declared by a schema reload), when an index appears,
and when a count changes (insert, batch, delete); a patch changes no
count and sends nothing.  The built-in indexes are listed with their
declared fields, user indexes without the appended _creationTime and
_id.  One-shot queries agree, also at a past ts."""

import json

from tvtest import Client, check, ctl, run_stack

SCHEMA = {"tables": {"threads": {}}}
SCHEMA2 = {"tables": {"threads": {}, "messages": {"indexes": {
    "by_thread": ["thread", "n"],
    "by_key": {"fields": ["key"], "unique": True}}}}}
BUILTIN = [{"name": "by_id", "fields": ["_id"], "unique": False},
           {"name": "by_creation_time", "fields": ["_creationTime"], "unique": False}]


def table(v, name):
    for t in v or []:
        if t["name"] == name:
            return t
    return None


def counts(v):
    return {t["name"]: t["documents"] for t in v or []}


async def main(st):
    c = await Client.open(st.url(), "tools")
    w = await Client.open(st.url(), "writer")
    await c.modify(add=[(1, "db/tables", {})])
    check(c.values.get(1) == [{"name": "threads", "documents": 0, "indexes": BUILTIN}],
          "a declared table is listed from the start, with its built-in indexes (%r)"
          % c.values.get(1))

    n = len(c.transitions)
    r = await w.mutate("db/insert", {"table": "notes", "doc": {"x": 1}})
    await c.wait(lambda: c.version["ts"] >= r["ts"])
    check(counts(c.values[1]) == {"threads": 0, "notes": 1},
          "a table that appears by a first insert is added live (%r)" % counts(c.values[1]))
    check(table(c.values[1], "notes")["indexes"] == BUILTIN, "with by_id and by_creation_time")

    ids = (await w.mutate("db/batch", {"ops": [
        {"op": "insert", "table": "threads", "doc": {"t": i}} for i in range(5)]}))["value"]
    r = await w.mutate("db/insert", {"table": "notes", "doc": {"x": 2}})
    await c.wait(lambda: c.version["ts"] >= r["ts"])
    check(counts(c.values[1]) == {"threads": 5, "notes": 2},
          "counts follow inserts (%r)" % counts(c.values[1]))
    r = await w.mutate("db/delete", {"table": "threads", "id": ids[0]})
    await c.wait(lambda: c.version["ts"] >= r["ts"])
    check(counts(c.values[1])["threads"] == 4, "and deletes")
    mid_ts = r["ts"]

    n = len(c.transitions)
    await w.mutate("db/patch", {"table": "threads", "id": ids[1], "set": {"t": 99}})
    await c.call("tinyvex/ping", {})
    check(len(c.transitions) == n, "a patch changes no count and sends nothing")

    with open(st.schema, "w") as f:
        json.dump(SCHEMA2, f)
    p = ctl(st, "schema", "reload", raw=True)
    check(p.returncode == 0, "schema reload adds a table with two indexes")
    await c.wait(lambda: table(c.values[1], "messages") is not None)
    m = table(c.values[1], "messages")
    check(m is not None and m["documents"] == 0 and m["indexes"] == BUILTIN + [
        {"name": "by_thread", "fields": ["thread", "n"], "unique": False},
        {"name": "by_key", "fields": ["key"], "unique": True}],
        "the declared table and its indexes appear live, declared fields only (%r)" % m)

    one = await c.call("tinyvex/query", {"udfPath": "db/tables", "args": {}})
    check(one["value"] == c.values[1], "a one-shot db/tables agrees with the subscription")
    past = await c.call("tinyvex/query", {"udfPath": "db/tables", "args": {}, "ts": mid_ts})
    check(counts(past["value"]) == {"threads": 4, "notes": 2},
          "db/tables at a past ts counts the documents then (%r)" % counts(past["value"]))
    try:
        await c.call("tinyvex/query", {"udfPath": "db/tables", "args": {"table": "x"}})
        check(False, "db/tables with an argument is refused")
    except Exception as e:  # noqa: BLE001
        check(getattr(e, "kind", None) == "ValidationError",
              "db/tables with an argument: ValidationError")
    check(c.chain_ok, "versions chained")
    await c.close()
    await w.close()


run_stack(main, schema=SCHEMA)
