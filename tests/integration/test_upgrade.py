"""Upgrade of the file format.  A database written by this writerd is
turned back into format 1 with SQL (the log WITHOUT ROWID, a second copy
of each current value, a document id column in both index tables, an
index of every index entry by ts), as the previous release left its
files; the writerd under test converts it when it starts.  Through a
gateway, every current document, every index query and reads at past ts
must come back exactly as before; the conversion happens once and
leaves no old table; writes, subscriptions and GC work after it.  (That
a gateway refuses a format 1 file is checked in the unit tests.)"""

import json
import os

from tvtest import (Client, Stack, check, ctl, db_integrity, db_open,
                    finish, run, wait_for)

NDOCS = 200                     # documents inserted
THREADS = 7                     # values of the indexed field

SCHEMA = {"tables": {"messages": {"indexes": {
    "by_thread": ["thread"],
    "by_author_n": ["author", "n"]}}}}

TO_FORMAT1 = """
BEGIN;
CREATE TABLE documents_f1(id TEXT NOT NULL, ts INTEGER NOT NULL,
 table_id INTEGER NOT NULL, json_value TEXT, deleted INTEGER NOT NULL,
 prev_ts INTEGER NOT NULL, PRIMARY KEY(id, ts)) WITHOUT ROWID;
INSERT INTO documents_f1 SELECT id, ts, table_id, json_value, deleted,
 prev_ts FROM documents;
CREATE TABLE current_documents_f1(id TEXT PRIMARY KEY,
 table_id INTEGER NOT NULL, ts INTEGER NOT NULL,
 json_value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO current_documents_f1 SELECT c.id, c.table_id, c.ts,
 d.json_value FROM current_documents c JOIN documents d ON d.seq = c.seq;
DROP TABLE current_documents;
DROP TABLE documents;
ALTER TABLE documents_f1 RENAME TO documents;
ALTER TABLE current_documents_f1 RENAME TO current_documents;
CREATE INDEX documents_by_ts ON documents(ts);
DROP INDEX indexes_removed;
CREATE TABLE indexes_f1(index_id INTEGER NOT NULL, key BLOB NOT NULL,
 ts INTEGER NOT NULL, deleted INTEGER NOT NULL, table_id INTEGER NOT NULL,
 document_id TEXT NOT NULL, PRIMARY KEY(index_id, key, ts)) WITHOUT ROWID;
INSERT INTO indexes_f1 SELECT index_id, key, ts, deleted, table_id,
 CAST(substr(key, -28, 26) AS TEXT) FROM indexes;
CREATE TABLE current_indexes_f1(index_id INTEGER NOT NULL,
 key BLOB NOT NULL, document_id TEXT NOT NULL,
 PRIMARY KEY(index_id, key)) WITHOUT ROWID;
INSERT INTO current_indexes_f1 SELECT index_id, key,
 CAST(substr(key, -28, 26) AS TEXT) FROM current_indexes;
DROP TABLE indexes;
DROP TABLE current_indexes;
ALTER TABLE indexes_f1 RENAME TO indexes;
ALTER TABLE current_indexes_f1 RENAME TO current_indexes;
CREATE INDEX indexes_by_ts ON indexes(ts);
DROP TABLE table_counts;
UPDATE globals SET json_value = '1' WHERE key = 'schema_version';
COMMIT;
"""


def queries(ids):
    """The one-shot queries compared before and after: (udfPath, args)."""
    out = [("db/tables", {}),
           ("db/query", {"table": "messages"}),
           ("db/query", {"table": "messages", "order": "desc",
                         "limit": 17})]
    for t in range(THREADS):
        out.append(("db/query", {"table": "messages", "index": "by_thread",
                                 "range": [["thread", "eq", "t%d" % t]]}))
    out.append(("db/query", {"table": "messages", "index": "by_author_n",
                             "range": [["author", "eq", "ada"],
                                       ["n", "gte", 10], ["n", "lt", 90]],
                             "order": "desc"}))
    for i in ids[::23]:
        out.append(("db/get", {"table": "messages", "id": i}))
    return out


async def answers(c, qs, ts=None):
    res = []
    for udf, args in qs:
        p = {"udfPath": udf, "args": args}
        if ts is not None:
            p["ts"] = ts
        r = await c.call("tinyvex/query", p)
        res.append(json.dumps(r["value"], sort_keys=True))
    return res


async def write_history(st):
    """Inserts, patches that move documents between index keys, deletes,
    and a batch that writes one document twice; returns (ids, past ts
    values to read at)."""
    c = await Client.open(st.url(), "history")
    ids, marks = [], []
    for j in range(NDOCS):
        r = await c.mutate("db/insert", {"table": "messages", "doc": {
            "thread": "t%d" % (j % THREADS),
            "author": ("ada", "bob", "cy")[j % 3], "n": j, "text": "x" * j}})
        ids.append(r["value"])
    marks.append(r["ts"])
    for j in range(0, NDOCS, 3):
        r = await c.mutate("db/patch", {"table": "messages", "id": ids[j],
                                        "set": {"thread": "t%d" % (j % 5),
                                                "text": "moved"}})
    marks.append(r["ts"])
    for j in range(1, NDOCS, 10):
        r = await c.mutate("db/delete", {"table": "messages", "id": ids[j]})
    marks.append(r["ts"])
    # One mutation moving a key away and back, then a plain patch.
    r = await c.mutate("db/batch", {"ops": [
        {"op": "patch", "table": "messages", "id": ids[2],
         "set": {"thread": "elsewhere"}},
        {"op": "patch", "table": "messages", "id": ids[2],
         "set": {"thread": "t2", "n": 1002}}]})
    marks.append(r["ts"])
    await c.ws.close()
    return ids, marks


async def before(st):
    ids, marks = await write_history(st)
    c = await Client.open(st.url(), "before")
    qs = queries(ids)
    now = await answers(c, qs)
    past = {ts: await answers(c, qs, ts) for ts in marks}
    await c.ws.close()
    return ids, qs, now, past


async def after(st, ids, qs, now, past):
    c = await Client.open(st.url(), "after")
    got = await answers(c, qs)
    same = sum(a == b for a, b in zip(got, now))
    check(same == len(qs), "after the conversion %d of %d queries answer "
          "as before" % (same, len(qs)))
    for ts, want in past.items():
        got = await answers(c, qs, ts)
        same = sum(a == b for a, b in zip(got, want))
        check(same == len(qs), "at ts %d (before the upgrade) %d of %d "
              "queries answer as before" % (ts, same, len(qs)))
    # Writes and subscriptions go on.
    await c.modify(add=[(1, "db/query", {"table": "messages", "index":
                                         "by_thread", "range":
                                         [["thread", "eq", "t3"]]})])
    n0 = len(c.values[1])
    r = await c.mutate("db/insert", {"table": "messages", "doc": {
        "thread": "t3", "author": "dee", "n": 5000}})
    ok = await c.wait(lambda: len(c.values.get(1, [])) == n0 + 1, 10)
    check(ok, "a subscription after the conversion sees a new insert")
    r2 = await c.mutate("db/patch", {"table": "messages", "id": ids[0],
                                     "set": {"thread": "t3"}})
    ok = await c.wait(lambda: any(d["_id"] == ids[0]
                                  for d in c.values.get(1, [])), 10)
    check(ok and r2["ts"] > r["ts"], "and a patch of a converted document "
          "moving it into the range")
    await c.ws.close()


def convert_back(path):
    con = db_open(path, readonly=False)
    try:
        con.isolation_level = None
        con.executescript(TO_FORMAT1)
        v = con.execute("SELECT json_value FROM globals"
                        " WHERE key = 'schema_version'").fetchone()[0]
    finally:
        con.close()
    return v


def log_lines(st, needle):
    with open(os.path.join(st.dir, "writerd.log"), "rb") as f:
        return [ln for ln in f.read().decode("utf-8", "replace").splitlines()
                if needle in ln]


st = Stack(schema=SCHEMA)
try:
    st.start_writer()
    st.start_gateway()
    ids, qs, now, past = run(before(st))
    check(len(now) == len(qs) and len(past) == 4,
          "%d queries now and at %d past ts recorded" % (len(qs), len(past)))
    st.stop()
    db = os.path.join(st.dir, "tinyvex.db")
    check(convert_back(db) == "1", "the database is in format 1 again")

    st.gateways = []            # stopped: url() must not use them
    st.start_writer()           # returns once control.sock is there
    # control.sock comes before the "started" line: wait for the line.
    check(wait_for(lambda: len(log_lines(st, "started:")) == 2, 10),
          "writerd started on the format 1 file")
    conv = log_lines(st, "converting the database from format 1 to 3")
    check(len(conv) == 1, "it converted the file once (%d)" % len(conv))
    con = db_open(db)
    try:
        version = con.execute("SELECT json_value FROM globals"
                              " WHERE key = 'schema_version'").fetchone()[0]
        leftovers = con.execute("SELECT count(*) FROM sqlite_schema WHERE"
                                " name LIKE '%_v1%'").fetchone()[0]
    finally:
        con.close()
    check(version == "3" and leftovers == 0,
          "format 3, no old table left (%s, %d)" % (version, leftovers))
    st.start_gateway()
    run(after(st, ids, qs, now, past))
    check(ctl(st, "gc", "--keep", "0s") is not None,
          "GC runs on the converted file")
    check(db_integrity(db) == "ok", "integrity_check after conversion and GC")
    st.stop()
    st.start_writer()
    check(len(log_lines(st, "converting the database")) == 1,
          "a second start does not convert again")
finally:
    st.cleanup()
finish()
