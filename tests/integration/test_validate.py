"""Validators of the schema file through the real daemons.

  - inserts, patches (checked on the merged document), replaces and
    batches through a gateway get ValidationError with data.path (e.g.
    "meta.tags[2]"), the document is not written, and a table without
    validators still takes anything;
  - an idempotent mutation refused by a validator is refused again, with
    the same data.path, when it is resent;
  - a schema that the stored documents do not satisfy is refused as a
    whole by tinyvexctl schema reload and by SIGHUP, naming a failing
    document and path: its new index is not built, and the running
    validators stay;
  - once the data conforms, the same schema applies, and from then on
    its validators are enforced; a reload that changes only validators
    (the catalog already matches) applies them too;
  - writerd refuses to start with a schema the stored data violates."""

import json
import os
import signal
import time

from tvtest import Client, RpcError, Stack, check, ctl, finish, run, wait_for

SCHEMA = {"tables": {
    "threads": {},
    "messages": {
        "fields": {"threadId": {"id": "threads"},
                   "role": {"enum": ["user", "assistant"]},
                   "text": "string", "tokens": "number?",
                   "meta": {"object": {"tags": {"array": "string"}},
                            "optional": True}},
        "strict": True,
        "indexes": {"by_thread": ["threadId"]}},
    "notes": {},
}}

# The same, with validators on notes and a new index on it.
SCHEMA_NOTES = json.loads(json.dumps(SCHEMA))
SCHEMA_NOTES["tables"]["notes"] = {
    "fields": {"title": "string", "stars": {"union": ["number", "null"], "optional": True}},
    "indexes": {"by_title": ["title"]}}


async def refused(c, udf, args, path, what, request_id=None):
    try:
        r = await c.mutate(udf, args, request_id=request_id)
    except RpcError as e:
        data = e.err.get("data", {})
        ok = e.kind == "ValidationError" and data.get("path") == path
        check(ok, "%s: ValidationError, data.path %r (%s %s: %s)"
              % (what, path, e.kind, data.get("path"), e.err.get("message")))
        return e.err
    check(False, "%s: refused (it was accepted: %s)" % (what, r))
    return None


async def count(c, table):
    r = await c.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": table}})
    return r["value"]


async def mutations(st):
    c = await Client.open(st.url(), "validate")
    try:
        tid = (await c.mutate("db/insert", {"table": "threads", "doc": {"name": "t"}}))["value"]
        good = {"threadId": tid, "role": "user", "text": "hello"}
        mid = (await c.mutate("db/insert", {"table": "messages", "doc": good}))["value"]
        check(isinstance(mid, str), "a conforming message is inserted")
        full = dict(good, tokens=3, meta={"tags": ["a", "b"], "free": 1})
        r = await c.mutate("db/insert", {"table": "messages", "doc": full})
        check(isinstance(r.get("value"), str),
              "with every optional field, and an extra field in a non-strict object")

        # Insert: one refusal per rule.
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, meta={"tags": ["a", "b", 3]})}, "meta.tags[2]", "insert: a number in tags")
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, meta={"tags": "a"})}, "meta.tags", "insert: tags not an array")
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, role="system")}, "role", "insert: role not in the enum")
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, threadId="nope")}, "threadId", "insert: threadId not an id")
        await refused(c, "db/insert", {"table": "messages", "doc": {
            "threadId": tid, "role": "user"}}, "text", "insert: text missing")
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, tokens="3")}, "tokens", "insert: tokens not a number")
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, extra=1)}, "extra", "insert: an undeclared field (strict)")
        await refused(c, "db/insert", {"table": "messages", "doc": dict(
            good, extra=1, role=5)}, "role",
            "insert: a declared field fails before an undeclared one")

        # Patch: checked on the merged document.
        await refused(c, "db/patch", {"table": "messages", "id": mid,
                                      "set": {"role": "bot"}}, "role", "patch: set role")
        await refused(c, "db/patch", {"table": "messages", "id": mid,
                                      "unset": ["text"]}, "text", "patch: unset a required field")
        await refused(c, "db/patch", {"table": "messages", "id": mid,
                                      "set": {"meta": {"tags": [1]}}}, "meta.tags[0]",
                      "patch: set a nested field")
        r = await c.mutate("db/patch", {"table": "messages", "id": mid,
                                        "set": {"tokens": 7}, "unset": []})
        check(r.get("value") is None, "a conforming patch is applied")
        r = await c.mutate("db/patch", {"table": "messages", "id": mid, "unset": ["tokens"]})
        check(r.get("value") is None, "unsetting an optional field is fine")

        # Replace.
        await refused(c, "db/replace", {"table": "messages", "id": mid,
                                        "doc": {"text": "x"}}, "threadId", "replace: fields missing")
        r = await c.mutate("db/replace", {"table": "messages", "id": mid,
                                          "doc": dict(good, text="replaced")})
        check(r.get("value") is None, "a conforming replace is applied")

        # Batch: the whole batch is refused, with the op's path.
        before = len(await count(c, "messages"))
        err = await refused(c, "db/batch", {"ops": [
            {"op": "insert", "table": "messages", "doc": good},
            {"op": "insert", "table": "messages", "doc": dict(good, meta={"tags": [None]})}]},
            "meta.tags[0]", "batch: the second op")
        check(err is not None and "ops[1]" in err.get("message", ""),
              "batch: the message names ops[1]")
        check(len(await count(c, "messages")) == before,
              "the refused batch wrote nothing (%d messages)" % before)

        # What was stored is exactly what conformed.
        docs = await count(c, "messages")
        check(len(docs) == 2 and any(d.get("text") == "replaced" for d in docs),
              "only the conforming messages are stored (%d)" % len(docs))

        # Idempotency: the refusal is the recorded outcome, path included.
        bad = {"table": "messages", "doc": dict(good, meta={"tags": ["x", False]})}
        e1 = await refused(c, "db/insert", bad, "meta.tags[1]", "idempotent insert",
                           request_id="bad-1")
        e2 = await refused(c, "db/insert", {"table": "messages", "doc": good},
                           "meta.tags[1]", "its resend (other args) replays the outcome",
                           request_id="bad-1")
        check(e1 is not None and e2 is not None and e1.get("message") == e2.get("message"),
              "the resend gets the same error")

        # No validators on notes (yet): anything goes.
        r = await c.mutate("db/insert", {"table": "notes", "doc": {"title": 5}})
        check(isinstance(r.get("value"), str), "a table without validators takes anything")
        return r["value"]
    finally:
        await c.close()


async def notes_now(st, expect_refused):
    c = await Client.open(st.url(), "notes")
    try:
        if expect_refused:
            await refused(c, "db/insert", {"table": "notes", "doc": {"title": 5}},
                          "title", "notes: the new validator is enforced")
            await refused(c, "db/insert", {"table": "notes", "doc": {"title": "t", "stars": "5"}},
                          "stars", "notes: a union refuses a string")
            r = await c.mutate("db/insert", {"table": "notes", "doc": {"title": "t", "stars": None}})
            check(isinstance(r.get("value"), str), "notes: a union takes null")
        else:
            r = await c.mutate("db/insert", {"table": "notes", "doc": {"title": 6}})
            check(isinstance(r.get("value"), str),
                  "notes still has no validator: the refused schema did not apply")
            await refused(c, "db/insert", {"table": "messages", "doc": {"text": 1}},
                          "threadId", "messages keeps its validators")
    finally:
        await c.close()


async def index_exists(st, table, index):
    c = await Client.open(st.url(), "ix")
    try:
        try:
            await c.call("tinyvex/query", {"udfPath": "db/query",
                                           "args": {"table": table, "index": index}})
            return True
        except RpcError:
            return False
    finally:
        await c.close()


async def fix_notes(st, ids):
    c = await Client.open(st.url(), "fix")
    try:
        for i in ids:
            await c.mutate("db/patch", {"table": "notes", "id": i, "set": {"title": "fixed"}})
    finally:
        await c.close()


def log_since(path, mark):
    with open(path, "rb") as f:
        f.seek(mark)
        return f.read().decode("utf-8", "replace")


def write_schema(st, schema):
    with open(st.schema, "w") as f:
        json.dump(schema, f)


def main():
    st = Stack(schema=SCHEMA)
    try:
        st.start_writer()
        st.start_gateway()
        note_id = run(mutations(st))
        run(notes_now(st, expect_refused=False))
        c = run(count_notes(st))
        bad_ids = [d["_id"] for d in c if not isinstance(d.get("title"), str)]

        # Reload with validators the stored notes violate: refused whole.
        write_schema(st, SCHEMA_NOTES)
        p = ctl(st, "schema", "reload", raw=True)
        out = p.stdout + p.stderr
        check(p.returncode == 1 and "title" in out and any(i in out for i in bad_ids),
              "schema reload refused, naming a failing document and the path title (%r)"
              % out.strip()[:300])
        check(note_id in bad_ids, "the note inserted without validators is among them")
        check(not run(index_exists(st, "notes", "by_title")),
              "the refused schema's new index was not built")
        run(notes_now(st, expect_refused=False))

        # SIGHUP: refused the same way, and logged.
        bad_ids.append(run(last_note(st)))
        log = os.path.join(st.dir, "writerd.log")
        mark = os.path.getsize(log)
        st.writer.send_signal(signal.SIGHUP)
        found = wait_for(lambda: "does not conform" in log_since(log, mark), 10)
        check(found, "SIGHUP: the schema is refused, and the log says which document")
        check(st.writer.poll() is None, "writerd still runs after the refused SIGHUP")
        check(not run(index_exists(st, "notes", "by_title")),
              "after SIGHUP still no new index")
        run(notes_now(st, expect_refused=False))

        # The data fixed, the same schema applies.
        notes = run(count_notes(st))
        run(fix_notes(st, [d["_id"] for d in notes if not isinstance(d.get("title"), str)]))
        r = ctl(st, "schema", "reload")
        check(r is not None, "schema reload applies once the data conforms (%s)" % r)
        version = (r or {}).get("catalog_version")
        check(run(index_exists(st, "notes", "by_title")), "its index is built")
        run(notes_now(st, expect_refused=True))

        # Validators alone change: the catalog matches, they apply all the same.
        only = json.loads(json.dumps(SCHEMA_NOTES))
        del only["tables"]["notes"]["fields"]["stars"]
        write_schema(st, only)
        r = ctl(st, "schema", "reload")
        check(r is not None and r.get("catalog_version") == version,
              "a reload that changes only validators is applied, the catalog "
              "as it was (%s)" % r)
        run(stars_free(st))

        # At start: a schema the stored data violates stops writerd.
        st.writer.send_signal(signal.SIGTERM)
        st.writer.wait(10)
        bad = json.loads(json.dumps(SCHEMA_NOTES))
        bad["tables"]["notes"]["fields"]["title"] = "number"
        write_schema(st, bad)
        started = True
        mark = os.path.getsize(log)
        try:
            st.start_writer()
        except RuntimeError:
            started = False
        text = log_since(log, mark)
        check(not started and "does not conform" in text and "field title" in text,
              "writerd refuses to start with a schema the data violates")
        write_schema(st, only)
        st.start_writer()
        check(st.writer.poll() is None, "and starts with the schema the data satisfies")
        time.sleep(0.2)
    finally:
        st.cleanup()
    finish()


async def stars_free(st):
    c = await Client.open(st.url(), "stars")
    try:
        r = await c.mutate("db/insert", {"table": "notes", "doc": {"title": "t", "stars": "5"}})
        check(isinstance(r.get("value"), str),
              "the validator of stars is gone: a string is taken")
        await refused(c, "db/insert", {"table": "notes", "doc": {"title": 1}},
                      "title", "title is still checked")
    finally:
        await c.close()


async def _notes(st):
    c = await Client.open(st.url(), "list")
    try:
        return await count(c, "notes")
    finally:
        await c.close()


def count_notes(st):
    return _notes(st)


async def last_note(st):
    c = await Client.open(st.url(), "last")
    try:
        docs = await count(c, "notes")
        return docs[-1]["_id"]
    finally:
        await c.close()


main()
