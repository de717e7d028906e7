"""Operations against running daemons: tinyvexctl status and stats (the
writer's figures and each gateway's), schema reload by tinyvexctl and by
SIGHUP, log verbose|brief reaching both daemons, SIGHUP harmless to both,
a WAL that stays bounded under 20 s of steady writes and subscribed
reads, checkpoint, an online backup taken while writes are in flight and
restored into a fresh writerd, and a clean stop on SIGTERM."""

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import time

from tvtest import (CTL, Client, RpcError, Stack, check, ctl, finish, run,
                    sanitizer_reports, wait_for)

SCALE = float(os.environ.get("TINYVEX_TEST_SCALE", "1"))
JOURNAL_LIMIT = 4 * 1024 * 1024     # journal_size_limit in the test conf
WAL_BOUND = 2 * JOURNAL_LIMIT       # see check_wal
LOAD_SECONDS = 20                   # steady writes and reads
STATS_WAIT = 8                      # gateways report every 2 s
STOP_WITHIN = 5                     # seconds for SIGTERM

SCHEMA1 = {"tables": {"items": {"indexes": {"by_kind": ["kind"]}}}}
SCHEMA2 = {"tables": {"items": {"indexes": {"by_kind": ["kind"],
                                            "by_color": ["color"]}}}}
SCHEMA3 = {"tables": {"items": {"indexes": {"by_kind": ["kind"],
                                            "by_color": ["color"],
                                            "by_size": ["size"]}}}}
CONF = ("journal_size_limit 4M\ncheckpoint_interval 1s\n"
        "query_max_rows 100000\n")


def log_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


async def in_thread(fn):
    return await asyncio.get_event_loop().run_in_executor(None, fn)


async def status_and_stats(st):
    g1, g2 = st.gateways
    s = ctl(st, "status")
    check(s is not None and s.get("status") == "running" and
          s.get("pid") == st.writer.pid and s.get("gateways") == 2,
          "status: running, writerd's pid, 2 gateways (%s)" % s)
    p = ctl(st, "status", raw=True)
    check(p.returncode == 0 and "status:" in p.stdout and "ts:" in p.stdout,
          "status, text")

    q = ("db/query", {"table": "items", "index": "by_kind",
                      "range": [["kind", "eq", "a"]]})
    cs = [await Client.open(st.url(g1.port), "ops-%d" % k) for k in range(3)]
    for c in cs:
        await c.modify(add=[(1,) + q])
    await cs[2].modify(add=[(2, "db/query", {"table": "items"})])
    far = await Client.open(st.url(g2.port), "ops-far")
    await far.modify(add=[(1,) + q])
    for k in range(10):
        await cs[0].mutate("db/insert", {"table": "items", "doc": {
            "kind": "ab"[k % 2], "color": "red", "size": k}})
    await far.wait(lambda: len(far.values.get(1) or []) == 5)

    def gw_figures():
        s = ctl(st, "stats") or {}
        return {g.get("id"): g for g in s.get("gateways", [])}, s

    def settled():
        gws, _ = gw_figures()
        by_pid = {g.get("pid"): g.get("stats", {}) for g in gws.values()}
        return (by_pid.get(g1.pid, {}).get("connections") == 3 and
                by_pid.get(g1.pid, {}).get("mutations") == 10 and
                by_pid.get(g2.pid, {}).get("connections") == 1)

    ok = await in_thread(lambda: wait_for(settled, STATS_WAIT, 0.2))
    gws, stats = gw_figures()
    check(ok, "stats: gateways report their figures within %d s" % STATS_WAIT)
    w = stats.get("writer", {})
    check(all(type(w.get(k)) is int for k in
              ("ts", "commits", "mutations", "db_bytes", "wal_bytes",
               "revisions", "documents", "retention_floor", "gc_runs",
               "gc_max_step_us", "checkpoints", "checkpoints_truncated",
               "wal_peak_bytes")) and
          isinstance(w.get("mutations_per_s"), (int, float)) and
          w.get("documents") == 10 and w.get("commits") >= 10,
          "stats: writer figures (%d documents, %d commits, %s/s)"
          % (w.get("documents", -1), w.get("commits", -1),
             w.get("mutations_per_s")))
    by_pid = {g.get("pid"): g for g in gws.values()}
    want = ("connections", "queries", "shared_executions", "reruns",
            "transitions", "bytes_in", "bytes_out", "slow_closes",
            "mutations", "ts", "lag_us")
    for proc, conns, queries, shared in ((g1, 3, 4, 2), (g2, 1, 1, 1)):
        g = by_pid.get(proc.pid, {})
        f = g.get("stats", {})
        check(all(type(f.get(k)) is int for k in want) and
              type(g.get("stats_age_ms")) is int and
              f.get("connections") == conns and f.get("queries") == queries
              and f.get("shared_executions") == shared and
              f.get("reruns", 0) > 0 and f.get("transitions", 0) >= conns
              and f.get("bytes_out", 0) > 0 and f.get("bytes_in", 0) > 0
              and f.get("slow_closes") == 0 and f.get("lag_us", -1) >= 0,
              "stats: gateway %s: %d connections, %d queries in %d shared "
              "executions, reruns, transitions, bytes, lag (%s)"
              % (g.get("id"), conns, queries, shared, json.dumps(f)))
    p = ctl(st, "stats", raw=True)
    check(p.returncode == 0 and p.stdout.startswith("writer\n") and
          all(("gateway %s\n" % i) in p.stdout for i in gws) and
          "  connections:" in p.stdout,
          "stats, text: a writer section and one per gateway")
    return cs + [far]


async def schema_reload(st, clients):
    c = clients[0]
    by_color = {"udfPath": "db/query", "args": {
        "table": "items", "index": "by_color",
        "range": [["color", "eq", "red"]]}}
    try:
        await c.call("tinyvex/query", by_color)
        kind = None
    except RpcError as e:
        kind = e.kind
    check(kind == "NotFound", "before the reload, by_color is unknown (%s)"
          % kind)
    with open(st.schema, "w") as f:
        json.dump(SCHEMA2, f)
    r = ctl(st, "schema", "reload")
    check(r is not None and type(r.get("catalog_version")) is int,
          "schema reload: catalog_version %s" % (r or {}).get(
              "catalog_version"))
    # The gateway learns the catalog from the database.
    got = None
    end = time.time() + 5
    while time.time() < end:
        try:
            got = (await c.call("tinyvex/query", by_color))["value"]
            break
        except RpcError:
            await asyncio.sleep(0.1)
    check(got is not None and len(got) == 10 and
          all(d["color"] == "red" for d in got),
          "the new index answers through the gateway (%s rows)"
          % (None if got is None else len(got)))

    with open(st.schema, "w") as f:
        f.write('{"tables": {"items": {"indexes": {"by_kind": 7}}}}')
    p = ctl(st, "schema", "reload", raw=True)
    check(p.returncode == 1 and "by_kind" in p.stderr,
          "a bad schema: reload fails with a message (%s)"
          % p.stderr.strip()[:120])
    r = await c.call("tinyvex/query", by_color)
    check(len(r["value"]) == 10, "and changes nothing: by_color still works")

    with open(st.schema, "w") as f:
        json.dump(SCHEMA3, f)
    st.writer.send_signal(signal.SIGHUP)
    by_size = {"udfPath": "db/query", "args": {
        "table": "items", "index": "by_size",
        "range": [["size", "gte", 5]]}}
    got = None
    end = time.time() + 5
    while time.time() < end:
        try:
            got = (await c.call("tinyvex/query", by_size))["value"]
            break
        except RpcError:
            await asyncio.sleep(0.1)
    check(got is not None and [d["size"] for d in got] == [5, 6, 7, 8, 9],
          "SIGHUP reloads the schema: by_size answers (%s)"
          % (None if got is None else [d["size"] for d in got]))
    check(st.writer.poll() is None, "writerd alive after SIGHUP")


async def sighup_gateways(st, clients):
    for g in st.gateways:
        g.send_signal(signal.SIGHUP)
    await asyncio.sleep(0.5)
    check(all(g.poll() is None for g in st.gateways) and
          all((st.health(g.port) or {}).get("writer") is True
              for g in st.gateways),
          "both gateways alive and linked after SIGHUP")
    far = clients[-1]
    n = len(far.values.get(1) or [])
    await clients[0].mutate("db/insert", {"table": "items", "doc": {
        "kind": "a", "color": "green", "size": 99}})
    ok = await far.wait(lambda: len(far.values.get(1) or []) == n + 1)
    check(ok, "subscriptions still updated after SIGHUP")


async def log_levels(st, clients):
    wlog = os.path.join(st.dir, "writerd.log")
    glog = os.path.join(st.dir, "gatewayd-%d.log" % st.gateways[0].port)
    mark_w, mark_g = len(log_text(wlog)), len(log_text(glog))
    r = ctl(st, "log", "verbose")
    check(r == {"log": "verbose"}, "log verbose: %s" % r)
    await clients[0].mutate("db/insert", {"table": "items", "doc": {
        "kind": "z", "color": "x", "size": 0}})
    extra = await Client.open(st.url(st.gateways[0].port), "log-v")
    await extra.close()
    ok = await in_thread(lambda: wait_for(
        lambda: "group commit:" in log_text(wlog)[mark_w:] and
        "session" in log_text(glog)[mark_g:], 3))
    check(ok, "verbose: debug lines from writerd and from the gateway")
    r = ctl(st, "log", "brief")
    check(r == {"log": "brief"}, "log brief: %s" % r)
    await asyncio.sleep(0.3)
    mark_w, mark_g = len(log_text(wlog)), len(log_text(glog))
    await clients[0].mutate("db/insert", {"table": "items", "doc": {
        "kind": "z", "color": "y", "size": 0}})
    extra = await Client.open(st.url(st.gateways[0].port), "log-b")
    await extra.close()
    await asyncio.sleep(0.5)
    check("group commit:" not in log_text(wlog)[mark_w:] and
          "session" not in log_text(glog)[mark_g:],
          "brief: no debug lines from either daemon")


async def wal_under_load(st):
    """Steady writes from two clients, subscribed queries rerun on every
    commit on both gateways, one-shot reads in a loop: the WAL file is
    sampled every 50 ms."""
    wal = os.path.join(st.dir, "tinyvex.db-wal")
    stop = asyncio.Event()
    samples = []
    lat = []
    errors = []

    async def sampler():
        while not stop.is_set():
            try:
                samples.append((time.time(), os.path.getsize(wal)))
            except OSError:
                pass
            await asyncio.sleep(0.05)

    async def writer(k):
        c = await Client.open(st.url(), "load-%d" % k)
        inflight = {}
        n = 0
        while not stop.is_set():
            n += 1
            fut = await c.request("tinyvex/mutation", {
                "udfPath": "db/insert", "args": {"table": "load", "doc": {
                    "k": k, "n": n, "pad": "x" * 400}}})
            inflight[fut] = time.time()
            if len(inflight) >= 20:
                done, _ = await asyncio.wait(
                    list(inflight), return_when=asyncio.FIRST_COMPLETED)
                for f in done:
                    lat.append(time.time() - inflight.pop(f))
                    if "error" in f.result():
                        errors.append(f.result()["error"])
        for f, t in inflight.items():
            m = await f
            lat.append(time.time() - t)
            if "error" in m:
                errors.append(m["error"])
        await c.close()
        return n

    async def subscriber(k):
        g = st.gateways[k % len(st.gateways)]
        c = await Client.open(st.url(g.port), "watch-%d" % k)
        await c.modify(add=[(1, "db/query", {"table": "load", "order": "desc",
                                             "limit": 20})])
        await stop.wait()
        await c.close()
        return len(c.transitions)

    async def reader():
        c = await Client.open(st.url(st.gateways[1].port), "reader")
        n = 0
        while not stop.is_set():
            await c.call("tinyvex/query", {"udfPath": "db/query", "args": {
                "table": "load", "order": "desc", "limit": 50}})
            n += 1
        await c.close()
        return n

    s0 = ctl(st, "stats")["writer"]
    tasks = [asyncio.ensure_future(x) for x in
             (sampler(), writer(0), writer(1), subscriber(0), subscriber(1),
              reader())]
    t0 = time.time()
    await asyncio.sleep(LOAD_SECONDS)
    stop.set()
    res = await asyncio.gather(*tasks)
    s1 = ctl(st, "stats")["writer"]
    writes, transitions, reads = res[1] + res[2], res[3] + res[4], res[5]
    print("load: %d writes, %d transitions, %d one-shot reads in %d s; "
          "write latency median %.1f ms, max %.1f ms"
          % (writes, transitions, reads, LOAD_SECONDS,
             statistics.median(lat) * 1000 if lat else 0,
             max(lat) * 1000 if lat else 0), flush=True)
    check(writes > 0 and transitions > 0 and reads > 0 and not errors,
          "steady writes and reads for %d s (%d errors)"
          % (LOAD_SECONDS, len(errors)))
    peak = max(s for _, s in samples)
    thirds = []
    for k in range(3):
        part = [s for t, s in samples
                if k * LOAD_SECONDS / 3 <= t - t0 < (k + 1) * LOAD_SECONDS / 3]
        thirds.append(max(part) if part else 0)
    print("WAL: peak %.2f MB (journal_size_limit %.0f MB); peak per third "
          "%s MB; %d checkpoints, %d truncated; db %.1f MB"
          % (peak / 1e6, JOURNAL_LIMIT / 1e6,
             ["%.2f" % (x / 1e6) for x in thirds],
             s1["checkpoints"] - s0["checkpoints"],
             s1["checkpoints_truncated"] - s0["checkpoints_truncated"],
             s1["db_bytes"] / 1e6), flush=True)
    print("longest checkpoint %.1f ms" % (s1["checkpoint_max_us"] / 1000))
    # The WAL is checkpointed and started over as soon as it passes
    # journal_size_limit, after the commit that passed it: so it stays
    # under the limit plus one group commit's pages plus what the
    # commits of one loop turn add, far below twice the limit.
    check(peak <= WAL_BOUND,
          "WAL stays under %d MB (2 x journal_size_limit) under steady "
          "reads and writes (peak %.2f MB)" % (WAL_BOUND >> 20, peak / 1e6))
    check(thirds[2] <= max(thirds[0], JOURNAL_LIMIT) * 1.5,
          "and does not grow over time")
    check(s1["checkpoints_truncated"] > s0["checkpoints_truncated"],
          "checkpoints started the WAL over during the load")

    r = ctl(st, "checkpoint")
    check(r is not None and type(r.get("wal_frames")) is int and
          r.get("checkpointed_frames") == r.get("wal_frames") and
          r.get("truncated") == 1 and r.get("wal_bytes") == 0,
          "checkpoint: every frame copied, WAL truncated (%s)" % r)
    p = ctl(st, "checkpoint", raw=True)
    check(p.returncode == 0 and "wal_frames:" in p.stdout,
          "checkpoint, text: frames reported")


async def backup_under_writes(st, path):
    """Inserts keep going while tinyvexctl backup runs; returns the acked
    mutations, the backup's reply and when it started."""
    acked = []          # (answered at, ts, id, n)
    sent = []           # sent at
    stop = asyncio.Event()

    async def writer():
        c = await Client.open(st.url(), "ledger")
        inflight = {}
        n = 0
        while not stop.is_set():
            n += 1
            fut = await c.request("tinyvex/mutation", {
                "udfPath": "db/insert", "args": {"table": "ledger",
                                                 "doc": {"n": n}}})
            sent.append(time.time())
            inflight[fut] = n
            if len(inflight) >= 20:
                done, _ = await asyncio.wait(
                    list(inflight), return_when=asyncio.FIRST_COMPLETED)
                for f in done:
                    m = f.result()
                    k = inflight.pop(f)
                    if "result" in m:
                        acked.append((time.time(), m["result"]["ts"],
                                      m["result"]["value"], k))
            await asyncio.sleep(0)
        for f, k in inflight.items():
            m = await f
            if "result" in m:
                acked.append((time.time(), m["result"]["ts"],
                              m["result"]["value"], k))
        await c.close()

    w = asyncio.ensure_future(writer())
    await asyncio.sleep(1.0)
    t_b = time.time()
    proc = await asyncio.create_subprocess_exec(
        CTL, "-j", "-r", st.dir, "backup", path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    t_e = time.time()
    await asyncio.sleep(1.0)
    stop.set()
    await w
    try:
        b = json.loads(out)
    except ValueError:
        b = {}
    check(proc.returncode == 0 and b.get("path") == path and
          type(b.get("ts")) is int and b.get("bytes", 0) > 0,
          "backup while writing: %s %s" % (b, err.decode()[:200]))
    during = [t for t in sent if t_b <= t <= t_e]
    after = [a for a in acked if a[0] > t_e]
    print("backup took %.3f s; %d inserts sent during it, %d acked "
          "before it, %d after it" % (t_e - t_b, len(during),
                                      len([a for a in acked if a[0] < t_b]),
                                      len(after)), flush=True)
    check(after, "writes went on around the backup")
    return acked, b, t_b


async def sigterm_clean(st):
    cs = [await Client.open(st.url(g.port), "bye-%d" % g.port)
          for g in st.gateways]
    t0 = time.time()
    for g in st.gateways:
        g.send_signal(signal.SIGTERM)
    st.writer.send_signal(signal.SIGTERM)
    rcs = []
    for p in st.gateways + [st.writer]:
        try:
            rcs.append(await in_thread(lambda: p.wait(STOP_WITHIN + 5)))
        except subprocess.TimeoutExpired:
            rcs.append(None)
    took = time.time() - t0
    for c in cs:
        await c.wait(lambda: c.closed is not None, 2)
    check(rcs == [0] * len(rcs) and took < STOP_WITHIN,
          "SIGTERM: both gateways and writerd exit 0 within %d s "
          "(%s, %.2f s)" % (STOP_WITHIN, rcs, took))
    check(all(c.closed == 1001 for c in cs),
          "clients closed with 1001 (%s)" % [c.closed for c in cs])
    check(not os.path.exists(os.path.join(st.dir, "control.sock")) and
          not os.path.exists(os.path.join(st.dir, "writer.sock")),
          "writerd removed its sockets")
    tail = log_text(os.path.join(st.dir, "writerd.log")).split(
        "stopping")[-1]
    check("stopped" in tail, "writerd logged a clean stop: %r"
          % tail.strip()[-200:])


async def restored(st2, acked, b, t_b):
    c = await Client.open(st2.url(), "audit")
    r = await c.call("tinyvex/query", {"udfPath": "db/query",
                                       "args": {"table": "ledger"}})
    docs = {d["_id"]: d for d in r["value"]}
    before = [a for a in acked if a[0] < t_b]
    missing = [a for a in before if a[2] not in docs]
    check(before and not missing,
          "every insert acked before the backup began is in it "
          "(%d of %d)" % (len(before) - len(missing), len(before)))
    upto = {a[2] for a in acked if a[1] <= b["ts"]}
    check(set(docs) == upto,
          "the backup is exactly the state at its ts: %d inserts with "
          "ts <= %d, %d in the copy" % (len(upto), b["ts"], len(docs)))
    check(all(docs[a[2]]["n"] == a[3] for a in before if a[2] in docs),
          "with their values")
    s = ctl(st2, "status")
    check(s is not None and s.get("ts") == b["ts"],
          "the restored writer starts at the backup's ts")
    m = await c.mutate("db/insert", {"table": "ledger", "doc": {"n": -1}})
    check(m["ts"] > b["ts"], "and takes writes after it")
    await c.close()


async def main(st):
    t0 = time.time()
    clients = await status_and_stats(st)
    await schema_reload(st, clients)
    await sighup_gateways(st, clients)
    await log_levels(st, clients)
    for c in clients:
        await c.close()
    await wal_under_load(st)
    path = os.path.join(st.dir, "backup.db")
    acked, b, t_b = await backup_under_writes(st, path)
    await sigterm_clean(st)

    st2 = Stack(conf=CONF)
    try:
        shutil.copyfile(path, os.path.join(st2.dir, "tinyvex.db"))
        st2.start_writer()
        st2.start_gateway()
        await restored(st2, acked, b, t_b)
        st2.stop()
        bad = sanitizer_reports(st) + sanitizer_reports(st2)
        check(not bad, "no sanitizer report from the daemons%s"
              % (": %s" % bad[:3] if bad else ""))
    finally:
        st2.cleanup()
    print("test time %.1f s" % (time.time() - t0))


st = Stack(schema=SCHEMA1, conf=CONF)
try:
    st.start_writer()
    st.start_gateway()
    st.start_gateway()
    run(main(st))
finally:
    st.cleanup()
finish()
