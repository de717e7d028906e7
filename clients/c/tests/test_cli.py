"""The tinyvex command against the real daemons: bad arguments, query and
mutate, watch while another client writes (and across a gateway
restart), provide with a shell script that streams its answer through
`tinyvex mutate`, export while writes go on, export then import into an
empty server, and an interrupted import run again."""

import asyncio
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "integration"))
import tvtest  # noqa: E402
from tvtest import check, Client, RpcError  # noqa: E402

TINYVEX = os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="tinyvex-cli-")
ENV = dict(os.environ, PATH=os.path.dirname(TINYVEX) + ":" + os.environ["PATH"])
ENV.pop("TINYVEX_URL", None)


SAN_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
san_reports = []


def tv(url, *args, stdin=None, timeout=120):
    r = subprocess.run([TINYVEX, "-u", url] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=timeout,
                       env=ENV)
    if any(m in r.stderr for m in SAN_MARKS):
        san_reports.append((args, r.stderr[:2000]))
    return r


def readline(p, timeout=20):
    """One line of p's stdout within timeout seconds, or None.  A thread
    reads, so lines already buffered are not waited for again."""
    if not hasattr(p, "lines"):
        p.lines = queue.Queue()

        def pump():
            for line in p.stdout:
                p.lines.put(line)
            p.lines.put(None)
        threading.Thread(target=pump, daemon=True).start()
    try:
        return p.lines.get(timeout=timeout)
    except queue.Empty:
        return None


def bad_args(url):
    cases = [[], ["bogus"], ["query"], ["mutate", "db/insert"],
             ["watch", "a", "{}", "x"], ["tables", "x"], ["provide", "x"],
             ["provide", "x", "--"], ["provide", "x", "-c", "0", "--", "true"],
             ["provide", "x", "true"], ["export"], ["export", "f.zip", "_bad"],
             ["import", "f.txt"], ["import", "f.jsonl"],
             ["import", "f.zip", "--table"], ["-z", "query", "a"]]
    ok = True
    for args in cases:
        r = tv(url, *args)
        if r.returncode != 1 or "usage:" not in r.stderr:
            ok = False
            print("  %r: %d %r" % (args, r.returncode, r.stderr[:200]))
    check(ok, "bad arguments: usage message and exit 1 (%d cases)" % len(cases))
    r = tv(url, "query", "db/query", "[1]")
    check(r.returncode == 1 and "JSON object" in r.stderr,
          "ARGS_JSON that is no object: exit 1")


async def query_mutate(st, url):
    r = tv(url, "mutate", "db/insert", '{"table":"m","doc":{"a":1,"big":12345678901234567}}')
    check(r.returncode == 0, "mutate exits 0")
    doc_id = json.loads(r.stdout)
    r = tv(url, "query", "db/get", json.dumps({"table": "m", "id": doc_id}))
    doc = json.loads(r.stdout)
    check(r.returncode == 0 and doc["a"] == 1 and doc["_id"] == doc_id,
          "query prints the value")
    check("e+" not in r.stdout, "integers are printed as integers")
    r = tv(url, "mutate", "db/patch", json.dumps({"table": "m", "id": "x", "set": {}}))
    check(r.returncode == 1 and "ValidationError" in r.stderr,
          "a failed mutation: exit 1 and the error on stderr")
    r = tv("ws://127.0.0.1:%d/sync" % tvtest.free_port(), "query", "db/query",
           '{"table":"m"}', timeout=30)
    check(r.returncode == 1 and "cannot connect" in r.stderr,
          "no server: exit 1")


async def watch(st, url):
    p = subprocess.Popen([TINYVEX, "-u", url, "watch", "db/query",
                          '{"table":"w"}'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        first = readline(p)
        check(first is not None and json.loads(first)["value"] == [],
              "watch: the first line is the empty table")
        c = await Client.open(url, session="writer")
        ids, last_ts, ok = [], 0, True
        for i in range(5):
            r = await c.mutate("db/insert", {"table": "w", "doc": {"i": i}})
            ids.append(r["value"])
            line = readline(p)
            u = json.loads(line) if line else {}
            if ([d["_id"] for d in u.get("value", [])] != ids or
                    u["ts"] < r["ts"] or u["ts"] <= last_ts):
                ok = False
                print("  line %r" % line)
            last_ts = u.get("ts", 0)
        check(ok, "watch: one line per write, in order, with its ts")
        await c.close()
        # The gateway restarts: watch keeps going.
        g = st.gateways.pop()
        port = g.port
        g.kill()
        g.wait()
        st.start_gateway(port=port)
        c = await Client.open(url, session="writer2")
        await c.mutate("db/insert", {"table": "w", "doc": {"i": 99}})
        seen = False
        for _ in range(5):
            line = readline(p, 30)
            if line and len(json.loads(line)["value"]) == 6:
                seen = True
                break
        check(seen, "watch: keeps going across a reconnect")
        await c.close()
        # A query that fails prints an error line and the watch stays.
        p.send_signal(signal.SIGTERM)
        check(p.wait(10) == 0, "watch: exits 0 on SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    p = subprocess.Popen([TINYVEX, "-u", url, "watch", "db/query",
                          '{"table":"w","index":"nope"}'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    line = readline(p)
    check(line is not None and json.loads(line)["error"]["kind"] == "NotFound",
          "watch: a failing query prints {ts, error}")
    p.kill()
    p.wait()
    bad = "ws://127.0.0.1:%d/sync" % tvtest.free_port()
    r = subprocess.run([TINYVEX, "-u", bad, "watch", "db/query", "{}"],
                       capture_output=True, text=True, timeout=30, env=ENV)
    check(r.returncode != 0 and "cannot connect" in r.stderr,
          "watch: exits non-zero when it cannot connect at first")


STREAM_SCRIPT = r"""#!/bin/sh
# Stream an answer into a document, one token per mutation.
args=$(cat)
id=$(tinyvex -j mutate db/insert '{"table":"answers","doc":{"text":""}}') || exit 1
text=""
for t in Hello , world !; do
	text="$text$t"
	tinyvex -j mutate db/patch "{\"table\":\"answers\",\"id\":$id,\"set\":{\"text\":\"$text\"}}" >/dev/null || exit 1
done
echo "{\"id\":$id,\"args\":$args}"
"""

SLEEP_SCRIPT = """#!/bin/sh
echo $$ > "$1"
exec sleep 120
"""

FAIL_SCRIPT = """#!/bin/sh
echo "something bad happened" >&2
exit 3
"""


async def provide(st, url):
    c = await Client.open(url, session="caller")
    try:
        await c.call("tinyvex/provide", {"functions": ["probe/x"]})
    except RpcError as e:
        if e.kind == "MethodNotFound":
            print("skip provide: this server has no providers yet")
            await c.close()
            return
    await c.close()
    script = os.path.join(TMP, "stream.sh")
    with open(script, "w") as f:
        f.write(STREAM_SCRIPT)
    fail = os.path.join(TMP, "fail.sh")
    with open(fail, "w") as f:
        f.write(FAIL_SCRIPT)
    sleeper = os.path.join(TMP, "sleep.sh")
    with open(sleeper, "w") as f:
        f.write(SLEEP_SCRIPT)
    pidfile = os.path.join(TMP, "sleep.pid")
    procs = [subprocess.Popen([TINYVEX, "-u", url, "provide", "demo/sleep",
                               "--", "sh", sleeper, pidfile], env=ENV),
             subprocess.Popen([TINYVEX, "-u", url, "provide", "demo/stream",
                               "-c", "2", "--", "sh", script], env=ENV),
             subprocess.Popen([TINYVEX, "-u", url, "provide", "demo/fail",
                               "--", "sh", fail], env=ENV)]
    try:
        c = await Client.open(url, session="caller2")
        await c.modify(add=[(1, "db/query", {"table": "answers"})])
        texts = []
        c_prev = c._transition

        def seen(t, size, chunked=False):
            c_prev(t, size, chunked)
            for d in c.values.get(1, []):
                if not texts or texts[-1] != d["text"]:
                    texts.append(d["text"])
        c._transition = seen
        r = None
        for _ in range(300):
            try:
                r = await c.call("tinyvex/action", {"udfPath": "demo/stream",
                                                    "args": {"q": "hi"}}, timeout=60)
                break
            except RpcError as e:
                if e.kind != "NotFound":
                    raise
                await asyncio.sleep(0.1)
        check(r is not None and r["value"]["args"] == {"q": "hi"},
              "provide: the script's stdout is the action's value")
        check(texts == ["", "Hello", "Hello,", "Hello,world", "Hello,world!"],
              "provide: the answer streamed token by token before the reply (%r)" % texts)
        err = None
        for _ in range(300):
            try:
                await c.call("tinyvex/action", {"udfPath": "demo/fail", "args": {}})
            except RpcError as e:
                err = e
                if e.kind != "NotFound":
                    break
                await asyncio.sleep(0.1)
        check(err is not None and err.kind == "ActionFailed" and
              "something bad happened" in err.err.get("message", "") and
              err.err["data"].get("data", {}).get("exitCode") == 3,
              "provide: a non-zero exit is ActionFailed with its stderr")
        await c.close()
        # A caller that goes away cancels the call: the child is killed.
        c = await Client.open(url, session="leaver")
        for _ in range(100):
            await c.request("tinyvex/action", {"udfPath": "demo/sleep", "args": {}})
            if tvtest.wait_for(lambda: os.path.exists(pidfile), 1):
                break
        pid = 0
        if tvtest.wait_for(lambda: os.path.exists(pidfile) and
                           open(pidfile).read().strip() != "", 10):
            pid = int(open(pidfile).read())
        await c.close()

        def gone():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # A zombie until its parent reaps it counts as gone.
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split()[2] == "Z"
            except OSError:
                return True
            return False
        check(pid > 0 and tvtest.wait_for(gone, 20),
              "provide: a cancelled call's process is killed")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)


def zip_docs(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            table, _, rest = name.partition("/")
            assert rest == "documents.jsonl", name
            out[table] = [json.loads(x) for x in z.read(name).decode().splitlines() if x]
    return out


def strip(doc):
    return {k: v for k, v in doc.items()
            if k not in ("_id", "_creationTime", "tinyvexId", "tinyvexCreationTime")}


def canon(docs):
    return sorted(json.dumps(strip(d), sort_keys=True) for d in docs)


async def export_import(st, url):
    c = await Client.open(url, session="seed")
    # e1 gets batches: documents sharing a _creationTime across pages.
    for b in range(10):
        await c.mutate("db/batch", {"ops": [
            {"op": "insert", "table": "e1", "doc": {"b": b, "i": i, "s": "x" * (i % 7)}}
            for i in range(250)]})
    for i in range(40):
        await c.mutate("db/insert", {"table": "e2", "doc": {"i": i, "nested": {"a": [i, None, True]}}})
    r = tv(url, "tables")
    have_tables = r.returncode == 0
    if have_tables:
        tables = {t["name"]: t for t in json.loads(r.stdout)}
        check(tables.get("e2", {}).get("documents") == 40 and
              any(i["name"] == "by_creation_time" for i in tables["e2"]["indexes"]),
              "tables: every table with its count and indexes")
    names = [] if have_tables else ["e1", "e2", "w", "m"]
    print("  db/tables %s" % ("available" if have_tables else "missing: tables named"))
    stop = asyncio.Event()
    writes = [0]

    async def writer():
        rnd = random.Random(5)
        w = await Client.open(url, session="busy")
        while not stop.is_set():
            t = rnd.choice(["e1", "e2"])
            await w.mutate("db/insert", {"table": t, "doc": {"late": writes[0]}})
            writes[0] += 1
            await asyncio.sleep(0)
        await w.close()
    task = asyncio.ensure_future(writer())
    await asyncio.sleep(0.2)
    zpath = os.path.join(TMP, "snap.zip")
    p = await asyncio.create_subprocess_exec(
        TINYVEX, "-u", url, "export", zpath, *names,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV)
    out, err = await p.communicate()
    await asyncio.sleep(0.2)
    stop.set()
    await task
    check(p.returncode == 0, "export exits 0 (%s)" % err.decode().strip())
    summary = json.loads(out)
    ts = summary["ts"]
    docs = zip_docs(zpath)
    print("  export at ts %d: %r, %d writes meanwhile" % (ts, summary["tables"], writes[0]))
    check(writes[0] > 0, "writes went on during the export")
    exact = True
    for t in ("e1", "e2"):
        at = await c.call("tinyvex/query", {"udfPath": "db/query",
                                            "args": {"table": t}, "ts": ts})
        want = [dict(strip(d), tinyvexId=d["_id"], tinyvexCreationTime=d["_creationTime"])
                for d in at["value"]]
        if docs.get(t) != want:
            exact = False
            print("  %s: %d exported, %d at ts" % (t, len(docs.get(t, [])), len(want)))
    check(exact, "export holds exactly the documents at its ts")
    check(len(docs["e1"]) >= 2500, "a table of several pages exported whole")
    await c.close()

    # Into an empty server.
    st2 = tvtest.Stack()
    try:
        st2.start_writer()
        st2.start_gateway()
        url2 = st2.url()
        r = tv(url2, "import", zpath)
        check(r.returncode == 0, "import exits 0 (%s)" % r.stderr.strip())
        c2 = await Client.open(url2, session="check")
        equal = True
        for t, want in docs.items():
            got = await c2.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": t}})
            if canon(got["value"]) != canon(want):
                equal = False
                print("  %s: %d imported, %d exported" % (t, len(got["value"]), len(want)))
        check(equal, "export then import into an empty server: equal data")
        r = tv(url2, "import", zpath)
        got = await c2.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": "e2"}})
        check(r.returncode == 0 and len(got["value"]) == len(docs["e2"]),
              "import run twice adds nothing")

        # An import killed halfway, then run again.
        n = 9000
        jl = os.path.join(TMP, "big.jsonl")
        with open(jl, "w") as f:
            for i in range(n):
                f.write(json.dumps({"i": i, "pad": "p" * 40}) + "\n")
        p = subprocess.Popen([TINYVEX, "-u", url2, "import", jl, "--table", "big"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        count = 0
        while p.poll() is None:
            got = await c2.call("tinyvex/query", {"udfPath": "db/query",
                                                  "args": {"table": "big"}})
            count = len(got["value"])
            if count > 0:
                p.kill()
                break
            await asyncio.sleep(0.005)
        p.wait()
        got = await c2.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": "big"}})
        before = len(got["value"])
        print("  killed the import at %d of %d documents" % (before, n))
        check(0 < before < n, "the first import was interrupted halfway")
        r = tv(url2, "import", jl, "--table", "big")
        got = await c2.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": "big"}})
        ivals = sorted(d["i"] for d in got["value"])
        check(r.returncode == 0 and ivals == list(range(n)),
              "the rerun completes it without duplicates (%d documents)" % len(ivals))
        await c2.close()
    finally:
        st2.cleanup()


def token():
    """A gateway that requires a token: -t and TINYVEX_TOKEN give it."""
    tok = "c-client-token-0123456789"
    path = os.path.join(TMP, "token")
    with open(path, "w") as f:
        f.write(tok + "\n")
    st3 = tvtest.Stack(conf="token_file %s\n" % path)
    try:
        st3.start_writer()
        st3.start_gateway()
        url = st3.url()
        r = tv(url, "query", "db/query", '{"table":"t"}', timeout=30)
        check(r.returncode == 1 and "Unauthorized" in r.stderr,
              "token: refused without it")
        r = subprocess.run([TINYVEX, "-u", url, "-t", tok, "query", "db/query",
                            '{"table":"t"}'], capture_output=True, text=True,
                           timeout=60, env=ENV)
        check(r.returncode == 0 and r.stdout.strip() == "[]", "token: -t")
        r = subprocess.run([TINYVEX, "-u", url, "query", "db/query", '{"table":"t"}'],
                           capture_output=True, text=True, timeout=60,
                           env=dict(ENV, TINYVEX_TOKEN=tok))
        check(r.returncode == 0 and r.stdout.strip() == "[]", "token: TINYVEX_TOKEN")
    finally:
        st3.cleanup()


async def writer_down(st, url):
    """A mutation while the writer is down is answered Unavailable, and the
    library resends it (same requestId) until the writer is back."""
    st.kill_writer()
    p = subprocess.Popen([TINYVEX, "-u", url, "mutate", "db/insert",
                          '{"table":"wd","doc":{"once":1}}'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    time.sleep(1.5)
    still = p.poll() is None
    st.start_writer()
    out, err = p.communicate(timeout=90)
    check(still and p.returncode == 0 and out.strip().startswith('"'),
          "mutate while the writer is down: retried until it is back (%s)"
          % err.strip()[:120])
    r = tv(url, "query", "db/query", '{"table":"wd"}')
    check(r.returncode == 0 and len(json.loads(r.stdout)) == 1,
          "the retried mutation applied once")


async def main(st):
    url = st.url()
    bad_args(url)
    await query_mutate(st, url)
    await watch(st, url)
    await writer_down(st, url)
    await provide(st, url)
    await export_import(st, st.url())
    token()
    for args, err in san_reports[:3]:
        print("  %r:\n%s" % (args, err))
    check(not san_reports, "no sanitizer reports from tinyvex (%d)" % len(san_reports))


tvtest.run_stack(main)
