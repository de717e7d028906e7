// The client in headless Chromium against the real daemons: read your
// own writes, shared subscriptions, QueryFailed and recovery, pagination
// while others write, an action served by a Node provider, and a gateway
// killed and started again.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { TinyvexClient } from "../tinyvex.js";
import { Browser, haveChromium, serve } from "./browser.mjs";
import { Stack, hasMethod, sleep, waitFor } from "./stack.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const MAX_ROWS = 50;		/* query_max_rows of the test gateway */
const skip = haveChromium() ? false : "chromium not installed";

let stack, web, browser, page, node;

before(async () => {
	if (skip)
		return;
	/* Small chunks: large transitions reach the page in parts. */
	stack = await new Stack({ conf: `query_max_rows ${MAX_ROWS}\n` +
	    "chunk_bytes 1024\n" }).start();
	web = await serve(path.resolve(here, ".."), { "/blank.html":
	    "<!doctype html><meta charset=utf-8><title>tinyvex test</title>" });
	browser = await Browser.launch();
	page = await browser.newPage(`${web.origin}/blank.html`);
	node = new TinyvexClient(stack.url());
	await page.eval(async (url) => {
		const m = await import("/tinyvex.js");
		window.tv = m;
		window.client = new m.TinyvexClient(url);
		window.states = [];
		window.client.onConnectionState((s) => {
			if (window.states[window.states.length - 1] !== s.status)
				window.states.push(s.status);
		});
		window.until = async (pred, ms = 10000) => {
			const end = Date.now() + ms;
			while (!pred()) {
				if (Date.now() > end)
					throw new Error("timed out: " + pred);
				await new Promise((r) => setTimeout(r, 10));
			}
		};
	}, stack.url());
});

after(async () => {
	node?.close();
	await browser?.close();
	web?.close();
	await stack?.stop();
});

async function supports(udfPath, args) {
	try {
		await node.query(udfPath, args);
		return true;
	} catch (e) {
		return !(e.kind === "NotFound" && /function|udf/i.test(e.message));
	}
}

test("subscribe, mutate: the write is on screen before the promise resolves", { skip }, async () => {
	const r = await page.eval(async () => {
		const c = window.client;
		let latest = null;
		await new Promise((r) => c.subscribe("db/query", { table: "ryw" },
		    (v) => { latest = v; r(); }));
		window.rywLatest = () => latest;
		const before = latest.length;
		const m = await c.mutation("db/insert", { table: "ryw",
		    doc: { text: "hello" } });
		return { before, saw: latest.some((d) => d._id === m.value),
		    ts: m.ts, status: c.connectionState().status };
	});
	assert.equal(r.before, 0);
	assert.equal(r.saw, true);
	assert.ok(Number.isInteger(r.ts) && r.ts > 0);
	assert.equal(r.status, "connected");
	const { value } = await node.query("db/query", { table: "ryw" });
	assert.equal(value.length, 1);
	assert.equal(value[0].text, "hello");
});

test("identical subscriptions share one query; the cached value comes asynchronously", { skip }, async () => {
	const r = await page.eval(async () => {
		const c = window.client;
		const q0 = c.stats().queries;
		const a = [];
		const b = [];
		c.subscribe("db/query", { table: "shared", order: "desc" },
		    (v) => a.push(v.length));
		await window.until(() => a.length === 1);
		let inside = true;
		let sync = false;
		c.subscribe("db/query", { order: "desc", table: "shared" }, (v) => {
			if (inside)
				sync = true;
			b.push(v.length);
		});
		inside = false;
		await window.until(() => b.length === 1);
		const q1 = c.stats().queries;
		await c.mutation("db/insert", { table: "shared", doc: { n: 1 } });
		return { added: q1 - q0, a, b, sync };
	});
	assert.equal(r.added, 1);
	assert.equal(r.sync, false);
	assert.deepEqual(r.a, [0, 1]);
	assert.deepEqual(r.b, [0, 1]);
});

test("QueryFailed reaches onError, the subscription stays and recovers", { skip }, async () => {
	const docs = Array.from({ length: MAX_ROWS + 1 }, (_, i) => ({ op: "insert",
	    table: "big", doc: { i, pad: "x".repeat(40) } }));
	const r = await page.eval(async (ops) => {
		const c = window.client;
		const ev = [];
		c.subscribe("db/query", { table: "big" },
		    (v) => ev.push(["value", v.length]),
		    (e) => ev.push(["error", e.code, e.kind, e instanceof window.tv.TinyvexError]));
		await window.until(() => ev.length === 1);
		const { value: ids } = await c.mutation("db/batch", { ops });
		await window.until(() => ev.length === 2);
		await c.mutation("db/delete", { table: "big", id: ids[0] });
		await window.until(() => ev.length === 3);
		return { ev, chunks: c.stats().chunks };
	}, docs);
	assert.deepEqual(r.ev, [["value", 0], ["error", -32006, "TooLarge", true],
	    ["value", MAX_ROWS]]);
	assert.ok(r.chunks > 0, `the ${MAX_ROWS}-document result came in chunks`);
});

test("pagination: loadMore while others insert and delete, no gap, no duplicate", { skip }, async (t) => {
	if (!await supports("db/paginate", { table: "pg", numItems: 1 })) {
		t.skip("the gateway has no db/paginate");
		return;
	}
	const ops = Array.from({ length: 12 }, (_, i) => ({ op: "insert",
	    table: "pg", doc: { n: i } }));
	const { value: ids } = await node.mutation("db/batch", { ops });
	await page.eval(async () => {
		window.pg = { last: null, n: 0 };
		window.pager = window.client.paginate({ table: "pg", order: "desc" },
		    { initialNumItems: 5 }, (r) => { window.pg.last = r;
		    window.pg.n++; });
		await window.until(() => window.pg.last?.status === "canLoadMore");
	});
	/* Others write while the page loads more. */
	const writes = (async () => {
		await node.mutation("db/delete", { table: "pg", id: ids[9] });
		await node.mutation("db/insert", { table: "pg", doc: { n: 100 } });
		await node.mutation("db/delete", { table: "pg", id: ids[3] });
		await node.mutation("db/insert", { table: "pg", doc: { n: 101 } });
	})();
	const statuses = await page.eval(async () => {
		const seen = [];
		while (window.pg.last.status !== "exhausted") {
			await window.until(() => window.pg.last.status !== "loading");
			seen.push(window.pg.last.status);
			if (window.pg.last.status === "canLoadMore")
				window.pager.loadMore(4);
			await new Promise((r) => setTimeout(r, 30));
		}
		return seen;
	});
	await writes;
	await node.mutation("db/delete", { table: "pg", id: ids[6] });
	const { value: all } = await node.query("db/query", { table: "pg",
	    order: "desc" });
	const want = all.map((d) => d.n);
	const got = await page.eval(async (n) => {
		await window.until(() => window.pg.last.results.length === n);
		return window.pg.last.results.map((d) => d.n);
	}, want.length);
	assert.deepEqual(got, want);
	assert.equal(new Set(got).size, got.length);
	assert.ok(statuses.includes("canLoadMore"));
});

test("an action served by a Node provider, its writes seen before its answer", { skip }, async (t) => {
	if (!await hasMethod(stack.url(), "tinyvex/provide", { functions: [] })) {
		t.skip("the gateway has no actions");
		return;
	}
	const provider = new TinyvexClient(stack.url());
	const stop = provider.provide("test/*", async (args, { callId }) => {
		const { value: id } = await provider.mutation("db/insert",
		    { table: "acts", doc: { text: args.text, callId } });
		return { id, upper: args.text.toUpperCase() };
	});
	try {
		await waitFor(async () => {
			const e = await node.action("test/ping", { text: "p" })
			    .then(() => null, (err) => err);
			return e === null;
		}, 10000, "the provider to be reachable");
		const r = await page.eval(async () => {
			const c = window.client;
			let latest = [];
			c.subscribe("db/query", { table: "acts" }, (v) => { latest = v; });
			const v = await c.action("test/shout", { text: "hi" });
			return { v, saw: latest.some((d) => d._id === v.id) };
		});
		assert.equal(r.v.upper, "HI");
		assert.equal(r.saw, true);
	} finally {
		stop();
		provider.close();
	}
});

test("gatewayd killed and started again: disconnected, connected, everything back, a write made meanwhile applied once", { skip }, async () => {
	const before = await page.eval(async () => {
		const c = window.client;
		window.states = ["connected"];
		window.getValues = [];
		const { value: id } = await c.mutation("db/insert", { table: "ryw",
		    doc: { text: "kept" } });
		c.subscribe("db/get", { table: "ryw", id }, (v) =>
		    window.getValues.push(v?.text ?? null));
		await window.until(() => window.getValues.length === 1);
		return { stats: c.stats(), n: window.rywLatest().length };
	});
	await stack.killGateway();
	await page.eval(async () => {
		await window.until(() => window.client.connectionState().status !==
		    "connected");
		window.pending = window.client.mutation("db/insert", { table: "ryw",
		    doc: { text: "offline" } });
		window.pendingResult = null;
		window.pending.then((r) => { window.pendingResult = r; });
	});
	await sleep(300);
	await stack.startGateway();
	const r = await page.eval(async () => {
		await window.until(() => window.pendingResult !== null, 20000);
		const c = window.client;
		return { states: window.states, state: c.connectionState(),
		    stats: c.stats(), id: window.pendingResult.value,
		    latest: window.rywLatest().map((d) => d._id),
		    getValues: window.getValues };
	});
	assert.deepEqual(r.states.slice(0, 2), ["connected", "disconnected"]);
	assert.equal(r.states[r.states.length - 1], "connected");
	assert.equal(r.state.connectionCount >= 1, true);
	assert.match(r.state.lastCloseReason, /close/);
	assert.ok(r.latest.includes(r.id), "the offline write is on screen");
	assert.equal(r.latest.length, before.n + 1);
	assert.deepEqual(r.getValues, ["kept"], "the unchanged document was not sent again to the subscriber");
	const { value } = await node.query("db/query", { table: "ryw" });
	assert.equal(value.filter((d) => d.text === "offline").length, 1);
	if (r.stats.features.includes("resume"))
		assert.ok(r.stats.queryUnchanged > before.stats.queryUnchanged,
		    "unchanged queries came back as QueryUnchanged");
});
