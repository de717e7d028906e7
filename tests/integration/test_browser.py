"""A real browser against the gateway: headless Chromium loads a page
from a small HTTP server on 127.0.0.1, and the page's JavaScript opens a
WebSocket to the gateway, connects, subscribes, inserts a document and
waits for the transition carrying its own write.  The page reports what
happened back to the server that served it (GET /report) and into its
DOM, which Chromium prints at its load event (held back by an image
that the server answers once the page has reported).

Pages connect through a relay in front of the gateway (one also
connects straight to it), which records the head each upgrade sent (its
Host and Origin) and the gateway's answer, so each case checks both
what the page saw and why:
  - a page from http://localhost:PORT syncs and sees its write;
  - a page from another origin (evil.test, mapped to 127.0.0.1 inside
    Chromium) is answered 403 "Origin not allowed", its socket never
    opens (close 1006), and nothing it tried to write is stored;
  - the same page connecting to ws://evil.test:PORT (DNS rebinding) is
    answered 403 "Host not allowed";
  - with that origin in the configuration's allow_origin, it syncs, and
    a rebinding Host is still refused;
  - a page served by the gateway itself from static_dir (its script
    too, under X-Content-Type-Options: nosniff) opens the WebSocket on
    its own origin, subscribes, and shows in its DOM a document that an
    independent native client inserts while it watches.

Skips (exit 0) when Chromium is not installed."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from tvtest import Client, Stack, check, finish, free_port, run

CHROMIUM = os.environ.get("TINYVEX_CHROMIUM", "/usr/bin/chromium")
PAGE_TIMEOUT_MS = 8000		# the page gives up and reports by then
HOLD_TIMEOUT = 12		# seconds /hold waits for the page's report
RUN_TIMEOUT = 25		# seconds for one Chromium run, start to exit
TABLE = "browser"

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>pending</title></head>
<body><pre id="result"></pre>
<script>
"use strict";
var params = new URLSearchParams(location.search);
var tag = params.get("tag");
var nonce = Math.random().toString(36).slice(2);
var done = false;
var opened = false;
var version = {querySet: 0, identity: 0, ts: 0};
var chainOk = true;
var values = {};
var ntransitions = 0;
var hello = null;
var ws;

function report(r) {
	if (done)
		return;
	done = true;
	r.tag = tag;
	r.nonce = nonce;
	r.opened = opened;
	r.origin = location.origin;
	var text = JSON.stringify(r);
	document.getElementById("result").textContent = text;
	document.title = r.outcome;
	fetch("/report?r=" + encodeURIComponent(text)).catch(function () {});
	if (ws && ws.readyState === WebSocket.OPEN)
		ws.close(1000);
}

function send(id, method, p) {
	ws.send(JSON.stringify({jsonrpc: "2.0", id: id, method: method,
	    params: p}));
}

function transition(t) {
	if (JSON.stringify(t.startVersion) !== JSON.stringify(version))
		chainOk = false;
	version = t.endVersion;
	ntransitions++;
	t.modifications.forEach(function (m) {
		if (m.type === "QueryUpdated")
			values[m.queryId] = m.value;
		else
			delete values[m.queryId];
	});
}

function answer(m) {
	if (m.error) {
		report({outcome: "rpc-error", id: m.id, error: m.error});
		return;
	}
	if (m.id === 1) {
		hello = m.result;
		send(2, "tinyvex/modifyQuerySet", {baseVersion: 0, newVersion: 1,
		    modifications: [{type: "Add", queryId: 1, udfPath: "db/query",
		    args: {table: "%TABLE%"}}]});
	} else if (m.id === 2) {
		if (!Array.isArray(values[1])) {
			report({outcome: "no-initial-value", querySet: m.result});
			return;
		}
		send(3, "tinyvex/mutation", {udfPath: "db/insert",
		    args: {table: "%TABLE%", doc: {tag: tag, nonce: nonce}}});
	} else if (m.id === 3) {
		var id = m.result.value, ts = m.result.ts;
		var mine = (values[1] || []).filter(function (d) {
			return d._id === id && d.nonce === nonce;
		});
		report({outcome: mine.length === 1 && version.ts >= ts ?
		    "synced" : "write-not-seen", protocol: ws.protocol,
		    hello: hello, id: id, ts: ts, versionTs: version.ts,
		    chainOk: chainOk, transitions: ntransitions});
	}
}

// Chromium prints the DOM at the load event, which waits for this image:
// /hold answers once this page has reported.
var hold = new Image();
hold.src = "/hold?tag=" + encodeURIComponent(tag);
document.body.appendChild(hold);
setTimeout(function () { report({outcome: "timeout"}); }, %TIMEOUT%);
try {
	ws = new WebSocket(params.get("ws"), "tinyvex.v1");
} catch (e) {
	report({outcome: "exception", error: String(e)});
}
ws.onopen = function () {
	opened = true;
	send(1, "tinyvex/connect", {sessionId: "browser-" + tag + "-" + nonce});
};
ws.onmessage = function (ev) {
	var m = JSON.parse(ev.data);
	if (m.method === "tinyvex/transition")
		transition(m.params);
	else if (!m.method)
		answer(m);
};
ws.onerror = function () {};
ws.onclose = function (ev) {
	report({outcome: "closed", code: ev.code});
};
</script></body></html>
""".replace("%TABLE%", TABLE).replace("%TIMEOUT%", str(PAGE_TIMEOUT_MS))


class Web:
    """The pages' origin server: /app.html is the page, /report records
    what a page sends back (keyed by its tag), /hold answers when the
    page of its tag has reported (or after HOLD_TIMEOUT)."""

    def __init__(self):
        self.reports = {}
        self.cond = threading.Condition()
        web = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/app.html":
                    self._answer(200, "text/html; charset=utf-8", PAGE.encode())
                elif u.path == "/report":
                    q = urllib.parse.parse_qs(u.query)
                    try:
                        r = json.loads(q["r"][0])
                    except (KeyError, ValueError):
                        r = {"outcome": "bad-report"}
                    self._answer(204, None, b"")
                    with web.cond:
                        web.reports[r.get("tag")] = r
                        web.cond.notify_all()
                elif u.path == "/hold":
                    tag = urllib.parse.parse_qs(u.query).get("tag", [None])[0]
                    web.wait_report(tag, HOLD_TIMEOUT)
                    self._answer(204, None, b"")
                else:
                    self._answer(404, "text/plain", b"not found\n")

            def _answer(self, status, ctype, body):
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_report(self, tag, timeout):
        with self.cond:
            self.cond.wait_for(lambda: tag in self.reports, timeout)
            return self.reports.get(tag)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Relay:
    """A TCP relay to the gateway that records each connection's request
    head and the first bytes of the gateway's answer."""

    def __init__(self, target):
        self.target = target
        self.conns = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = {"head": b"", "answer": b""}
            with self.lock:
                self.conns.append(rec)
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pipe, args=(c, u, rec, "head"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, rec, "answer"), daemon=True).start()

    def _pipe(self, src, dst, rec, key):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    if len(rec[key]) < 8192:
                        rec[key] += data[:8192 - len(rec[key])]
                dst.sendall(data)
        except OSError:
            pass
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass

    def upgrades(self, start):
        """(headers, status, body) of each /sync request since conns[start]."""
        out = []
        with self.lock:
            recs = [dict(r) for r in self.conns[start:]]
        for r in recs:
            head = r["head"].split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            if not head[0].startswith("GET /sync "):
                continue
            hdrs = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            ans, _, body = r["answer"].partition(b"\r\n\r\n")
            try:
                status = int(ans.split(b" ", 2)[1])
            except (IndexError, ValueError):
                status = None
            out.append((hdrs, status, body))
        return out

    def close(self):
        self.sock.close()


def browse(web, url, tag):
    """Load url in headless Chromium; the page's report (None if none
    came) and the DOM Chromium printed."""
    prof = tempfile.mkdtemp(prefix="tinyvex-chromium-")
    errpath = os.path.join(prof, "stderr.log")
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions",
            "--disable-dev-shm-usage",
            "--user-data-dir=" + os.path.join(prof, "profile"),
            "--host-resolver-rules=MAP evil.test 127.0.0.1",
            "--dump-dom", url]
    dom = ""
    try:
        with open(errpath, "wb") as err:
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                 stdin=subprocess.DEVNULL)
            try:
                out, _ = p.communicate(timeout=RUN_TIMEOUT)
                dom = out.decode("utf-8", "replace")
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                print("chromium did not exit within %d s" % RUN_TIMEOUT, flush=True)
        report = web.wait_report(tag, 5)
        if report is None:
            with open(errpath, "rb") as f:
                sys.stdout.write("---- chromium stderr\n%s\n" %
                                 f.read()[-3000:].decode("utf-8", "replace"))
            sys.stdout.write("---- dom\n%s\n" % dom[-2000:])
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    print("%s: %s" % (tag, json.dumps(report)), flush=True)
    return report, dom


def dom_result(dom):
    """The page's result as shown in its <pre id=result>."""
    start = dom.find('<pre id="result">')
    end = dom.find("</pre>", start)
    if start < 0 or end < 0:
        return None
    text = dom[start + len('<pre id="result">'):end]
    for a, b in (("&quot;", '"'), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")):
        text = text.replace(a, b)
    try:
        return json.loads(text)
    except ValueError:
        return None


def check_synced(web, relay, url, tag, origin, what):
    mark = len(relay.conns)
    r, dom = browse(web, url, tag)
    r = r or {}
    check(r.get("outcome") == "synced",
          "%s: the page connected, subscribed and saw its own write (%s)"
          % (what, r.get("outcome")))
    check(r.get("protocol") == "tinyvex.v1" and (r.get("hello") or {}).get("protocol") == 1,
          "%s: subprotocol tinyvex.v1 agreed, connect answered protocol 1" % what)
    check(r.get("chainOk") is True and isinstance(r.get("ts"), int)
          and r.get("versionTs", 0) >= r.get("ts", 1),
          "%s: transitions chained; one at ts >= the write's came before its answer" % what)
    d = dom_result(dom)
    check(d is not None and d.get("outcome") == r.get("outcome") and d.get("id") == r.get("id"),
          "%s: the DOM Chromium printed shows the same result" % what)
    ups = relay.upgrades(mark)
    check(len(ups) == 1 and ups[0][1] == 101
          and ups[0][0].get("origin") == origin
          and ups[0][0].get("host") == "127.0.0.1:%d" % relay.port,
          "%s: one upgrade, Origin %s, Host 127.0.0.1, answered 101 (%s)"
          % (what, origin, [(u[0].get("origin"), u[0].get("host"), u[1]) for u in ups]))
    return r


def check_refused(web, relay, url, tag, origin, host, why, what):
    mark = len(relay.conns)
    r, _ = browse(web, url, tag)
    r = r or {}
    check(r.get("outcome") == "closed" and r.get("code") == 1006 and r.get("opened") is False,
          "%s: the page's WebSocket never opened, close code 1006 (%s %s)"
          % (what, r.get("outcome"), r.get("code")))
    ups = relay.upgrades(mark)
    check(len(ups) >= 1 and all(u[1] == 403 and why.encode() in u[2]
                                and u[0].get("origin") == origin
                                and u[0].get("host") == host for u in ups),
          "%s: the gateway answered 403 \"%s\" to Origin %s, Host %s (%s)"
          % (what, why, origin, host,
             [(u[0].get("origin"), u[0].get("host"), u[1], u[2][:60]) for u in ups]))
    return r


async def stored(st):
    """The documents of TABLE as a native client reads them."""
    c = await Client.open(st.url(), "reader")
    try:
        return (await c.call("tinyvex/query", {"udfPath": "db/query",
                                               "args": {"table": TABLE}}))["value"]
    finally:
        await c.close()


def default_policy(web):
    st = Stack()
    relay = None
    try:
        st.start_writer()
        st.start_gateway()
        relay = Relay(st.gateways[0].port)
        h = web.port
        local = "http://localhost:%d" % h
        evil = "http://evil.test:%d" % h
        r, _ = browse(web, "%s/app.html?tag=direct&ws=ws://127.0.0.1:%d/sync"
                      % (local, st.gateways[0].port), "direct")
        check((r or {}).get("outcome") == "synced",
              "localhost page straight to the gateway: synced and saw its own write")
        ok = check_synced(web, relay, "%s/app.html?tag=local&ws=ws://127.0.0.1:%d/sync"
                          % (local, relay.port), "local", local, "localhost page")
        check_refused(web, relay, "%s/app.html?tag=evil&ws=ws://127.0.0.1:%d/sync"
                      % (evil, relay.port), "evil", evil, "127.0.0.1:%d" % relay.port,
                      "Origin not allowed", "evil.test page")
        check_refused(web, relay, "%s/app.html?tag=rebind&ws=ws://evil.test:%d/sync"
                      % (evil, relay.port), "rebind", evil, "evil.test:%d" % relay.port,
                      "Host not allowed", "DNS rebinding (ws://evil.test)")
        docs = run(stored(st))
        tags = sorted(d.get("tag") for d in docs)
        mine = [d for d in docs if d.get("tag") == "local"]
        check(tags == ["direct", "local"] and mine[0].get("_id") == ok.get("id")
              and mine[0].get("nonce") == ok.get("nonce"),
              "only the localhost pages' writes are stored (%s)" % tags)
    finally:
        if relay:
            relay.close()
        st.cleanup()


def allowed_origin(web):
    evil = "http://evil.test:%d" % web.port
    st = Stack(conf="allow_origin %s\n" % evil)
    relay = None
    try:
        st.start_writer()
        st.start_gateway()
        relay = Relay(st.gateways[0].port)
        ok = check_synced(web, relay, "%s/app.html?tag=allowed&ws=ws://127.0.0.1:%d/sync"
                          % (evil, relay.port), "allowed", evil,
                          "evil.test page, origin in allow_origin")
        check_refused(web, relay, "%s/app.html?tag=allowed-rebind&ws=ws://evil.test:%d/sync"
                      % (evil, relay.port), "allowed-rebind", evil,
                      "evil.test:%d" % relay.port, "Host not allowed",
                      "allowed origin, DNS rebinding (ws://evil.test)")
        docs = run(stored(st))
        tags = sorted(d.get("tag") for d in docs)
        check(tags == ["allowed"] and docs[0].get("_id") == ok.get("id"),
              "the allowed page's write is stored, and only it (%s)" % tags)
    finally:
        if relay:
            relay.close()
        st.cleanup()


STATIC_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>pending</title></head>
<body><ul id="docs"></ul><pre id="result"></pre>
<script src="app.js"></script></body></html>
"""

# The app, served from static_dir: everything it needs comes from its own
# origin except the test's /hold and /report on the Web server.
STATIC_JS = r"""
"use strict";
var params = new URLSearchParams(location.search);
var tag = params.get("tag"), web = params.get("web"), want = params.get("want");
var done = false, subscribed = false, ws;

function tell(r) {
	fetch(web + "/report?r=" + encodeURIComponent(JSON.stringify(r)),
	    {mode: "no-cors"}).catch(function () {});
}

function report(r) {
	if (done)
		return;
	done = true;
	r.tag = tag;
	r.origin = location.origin;
	document.getElementById("result").textContent = JSON.stringify(r);
	document.title = r.outcome;
	tell(r);
	if (ws && ws.readyState === WebSocket.OPEN)
		ws.close(1000);
}

function show(docs) {
	var ul = document.getElementById("docs");
	ul.textContent = "";
	docs.forEach(function (d) {
		var li = document.createElement("li");
		li.textContent = d.text;
		ul.appendChild(li);
	});
	if (!subscribed) {
		subscribed = true;
		tell({tag: tag + "-subscribed", count: docs.length});
	}
	if (docs.some(function (d) { return d.text === want; }))
		report({outcome: "live", count: docs.length,
		    url: ws.url, protocol: ws.protocol});
}

var hold = new Image();
hold.src = web + "/hold?tag=" + encodeURIComponent(tag);
document.body.appendChild(hold);
setTimeout(function () { report({outcome: "timeout"}); }, %TIMEOUT%);
ws = new WebSocket("ws://" + location.host + "/sync", "tinyvex.v1");
ws.onopen = function () {
	ws.send(JSON.stringify({jsonrpc: "2.0", id: 1, method: "tinyvex/connect",
	    params: {sessionId: "static-" + Math.random()}}));
	ws.send(JSON.stringify({jsonrpc: "2.0", id: 2,
	    method: "tinyvex/modifyQuerySet", params: {baseVersion: 0,
	    newVersion: 1, modifications: [{type: "Add", queryId: 1,
	    udfPath: "db/query", args: {table: "live"}}]}}));
};
ws.onmessage = function (ev) {
	var m = JSON.parse(ev.data);
	if (m.error)
		report({outcome: "rpc-error", error: m.error});
	if (m.method !== "tinyvex/transition")
		return;
	m.params.modifications.forEach(function (x) {
		if (x.type === "QueryUpdated" && x.queryId === 1)
			show(x.value);
	});
};
ws.onclose = function (ev) { report({outcome: "closed", code: ev.code}); };
""".replace("%TIMEOUT%", str(PAGE_TIMEOUT_MS))


def static_app(web):
    """A page from the gateway's own static_dir syncs on its origin."""
    st = Stack()
    www = os.path.join(st.dir, "www")
    os.mkdir(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write(STATIC_HTML)
    with open(os.path.join(www, "app.js"), "w") as f:
        f.write(STATIC_JS)
    st.conf = os.path.join(st.dir, "tinyvex.conf")
    with open(st.conf, "w") as f:
        f.write("static_dir %s\n" % www)
    want = "inserted natively %d" % os.getpid()
    try:
        st.start_writer()
        st.start_gateway()
        port = st.gateways[0].port

        async def insert(text):
            c = await Client.open(st.url(), "native")
            try:
                await c.mutate("db/insert", {"table": "live", "doc": {"text": text}})
            finally:
                await c.close()

        run(insert("already there"))
        url = ("http://127.0.0.1:%d/?tag=static&web=%s&want=%s"
               % (port, urllib.parse.quote("http://127.0.0.1:%d" % web.port),
                  urllib.parse.quote(want)))
        out = {}
        t = threading.Thread(target=lambda: out.update(
            zip(("report", "dom"), browse(web, url, "static"))))
        t.start()
        sub = web.wait_report("static-subscribed", RUN_TIMEOUT)
        check(sub is not None and sub.get("count") == 1,
              "the static page subscribed over its own origin and saw the "
              "document already there (%s)" % sub)
        time.sleep(0.2)
        run(insert(want))
        t.join(RUN_TIMEOUT + 10)
        r = out.get("report") or {}
        check(r.get("outcome") == "live" and r.get("count") == 2
              and r.get("origin") == "http://127.0.0.1:%d" % port
              and r.get("url") == "ws://127.0.0.1:%d/sync" % port
              and r.get("protocol") == "tinyvex.v1",
              "the page from static_dir showed the native client's insert "
              "live, over ws://127.0.0.1:%d/sync (%s)" % (port, r))
        dom = out.get("dom") or ""
        check("<li>%s</li>" % want in dom and "<li>already there</li>" in dom,
              "the DOM Chromium printed lists both documents")
    finally:
        st.cleanup()


if not os.access(CHROMIUM, os.X_OK):
    print("skip: %s not installed" % CHROMIUM, flush=True)
    sys.exit(0)

web = Web()
try:
    default_policy(web)
    allowed_origin(web)
    static_app(web)
finally:
    web.close()
finish()
