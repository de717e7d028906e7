// The client under Node against the real daemons: a subscriber and a
// writer, a provider streaming an action's answer into a document, and a
// connection that goes silent after a mutation was applied (its answer
// lost): the client declares it dead, resumes, resends with the same
// requestId, and the write exists once.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";
import { TinyvexClient } from "../tinyvex.js";
import { Stack, hasMethod, waitFor } from "./stack.mjs";

let stack;
const clients = [];

function client(url = stack.url(), opts = {}) {
	const c = new TinyvexClient(url, opts);
	clients.push(c);
	return c;
}

/* A TCP relay to the gateway; mute() stops forwarding what the gateway
 * sends on the connections open now, as a dead network would. */
class Relay {
	constructor(port) {
		this.conns = new Set();
		this.server = net.createServer((c) => {
			const conn = { c, muted: false };
			const u = net.connect(port, "127.0.0.1");
			this.conns.add(conn);
			c.on("data", (d) => u.write(d));
			u.on("data", (d) => {
				if (!conn.muted)
					c.write(d);
			});
			const end = () => {
				c.destroy();
				u.destroy();
				this.conns.delete(conn);
			};
			c.on("close", end);
			u.on("close", end);
			c.on("error", end);
			u.on("error", end);
		});
	}

	listen() {
		return new Promise((r) => this.server.listen(0, "127.0.0.1", () => {
			this.port = this.server.address().port;
			r(this);
		}));
	}

	mute() {
		for (const conn of this.conns)
			conn.muted = true;
	}

	close() {
		for (const conn of this.conns)
			conn.c.destroy();
		this.server.close();
	}
}

before(async () => {
	stack = await new Stack().start();
});

after(async () => {
	for (const c of clients)
		c.close();
	await stack?.stop();
});

test("a subscriber sees another client's writes; the writer sees its own first", async () => {
	const reader = client();
	const writer = client();
	const seen = [];
	reader.subscribe("db/query", { table: "notes", order: "desc" },
	    (v, { ts }) => seen.push([v.map((d) => d.text), ts]));
	let mine = [];
	writer.subscribe("db/query", { table: "notes" }, (v) => { mine = v; });
	await waitFor(() => seen.length === 1, 10000, "first result");
	const r1 = await writer.mutation("db/insert", { table: "notes",
	    doc: { text: "one" } });
	assert.ok(mine.some((d) => d._id === r1.value), "own write before the answer");
	await writer.mutation("db/insert", { table: "notes", doc: { text: "two" } });
	await waitFor(() => seen.length === 3, 10000, "two updates");
	assert.deepEqual(seen.map((s) => s[0]), [[], ["one"], ["two", "one"]]);
	assert.ok(seen[1][1] === r1.ts, "the update carries the write's ts");
	const e = await writer.mutation("db/insert", { table: "notes",
	    doc: { _bad: 1 } }).catch((err) => err);
	assert.equal(e.code, -32003);
	assert.equal(e.kind, "ValidationError");
});

test("the client as a provider: an answer streamed token by token, read live by a subscriber", async (t) => {
	if (!await hasMethod(stack.url(), "tinyvex/provide", { functions: [] })) {
		t.skip("the gateway has no actions");
		return;
	}
	const provider = client();
	const caller = client();
	const tokens = ["Tiny", "vex ", "streams ", "this."];
	provider.provide("stream/*", async (args, { signal }) => {
		if (args.probe)
			return "here";
		const { value: id } = await provider.mutation("db/insert",
		    { table: "answers", doc: { text: "", done: false } });
		for (const tok of tokens) {
			if (signal.aborted)
				break;
			await provider.mutation("db/patch", { table: "answers", id,
			    set: { text: (await provider.query("db/get",
			    { table: "answers", id })).value.text + tok } });
		}
		await provider.mutation("db/patch", { table: "answers", id,
		    set: { done: true } });
		return { id, tokens: tokens.length };
	});
	const texts = [];
	caller.subscribe("db/query", { table: "answers" }, (v) => {
		if (v.length === 1)
			texts.push(v[0].text);
	});
	await waitFor(async () => await caller.action("stream/probe",
	    { probe: true }).then(() => true, () => false), 10000, "the provider");
	const r = await caller.action("stream/answer", { q: "what?" });
	assert.equal(r.tokens, 4);
	const { value: doc } = await caller.query("db/get", { table: "answers",
	    id: r.id });
	assert.equal(doc.text, "Tinyvex streams this.");
	assert.equal(doc.done, true);
	assert.ok(texts.includes("Tiny") && texts.includes("Tinyvex streams "),
	    `the subscriber saw the answer grow (${JSON.stringify(texts)})`);
	assert.equal(provider.stats().callsServed >= 2, true);
});

test("a silent connection is declared dead; the mutation whose answer was lost is resent and applied once", async () => {
	const relay = await new Relay(stack.port).listen();
	try {
		const c = client(`ws://127.0.0.1:${relay.port}/sync`,
		    { deadAfterMs: 1500 });
		const watcher = client();
		await c.mutation("db/insert", { table: "once", doc: { n: 0 } });
		relay.mute();
		const p = c.mutation("db/insert", { table: "once", doc: { n: 1 } });
		await waitFor(async () => (await watcher.query("db/query",
		    { table: "once" })).value.length === 2, 10000, "the write stored");
		assert.equal(c.connectionState().inflightMutations, 1);
		const r = await p;
		const st = c.connectionState();
		assert.match(st.lastCloseReason, /no frame for 1500 ms/);
		assert.equal(st.connectionCount, 1);
		assert.equal(st.status, "connected");
		const { value } = await watcher.query("db/query", { table: "once" });
		assert.deepEqual(value.map((d) => d.n), [0, 1]);
		assert.equal(value[1]._id, r.value, "the resend got the first outcome");
		assert.equal(c.stats().mutationsSent, 3);
	} finally {
		relay.close();
	}
});

test("random writes: every subscribed value equals a fresh read after each write (diffs applied where the gateway sends them)", async () => {
	const c = client();
	let seed = 12345;
	const rand = (n) => {
		seed = (seed * 1103515245 + 12345) % 2147483648;
		return seed % n;
	};
	const shapes = [
		["db/query", { table: "rnd" }],
		["db/query", { table: "rnd", order: "desc", limit: 5 }],
	];
	const latest = shapes.map(() => undefined);
	shapes.forEach(([u, a], i) => c.subscribe(u, a, (v) => { latest[i] = v; }));
	const ids = [];
	for (let i = 0; i < 3; i++)
		ids.push((await c.mutation("db/insert", { table: "rnd",
		    doc: { t: "", n: i } })).value);
	let getValue;
	c.subscribe("db/get", { table: "rnd", id: ids[0] }, (v) => { getValue = v; });
	for (let step = 0; step < 80; step++) {
		const id = ids[rand(ids.length)];
		const r = rand(10);
		if (r < 2 || ids.length < 2)
			ids.push((await c.mutation("db/insert", { table: "rnd",
			    doc: { t: "x".repeat(rand(4)), n: step } })).value);
		else if (r < 6)
			await c.mutation("db/patch", { table: "rnd", id: ids[rand(2)],
			    set: { t: (await c.query("db/get", { table: "rnd",
			    id: ids[0] })).value.t + "tok" + step } }).catch(() => {});
		else if (r < 7)
			await c.mutation("db/patch", { table: "rnd", id,
			    set: { m: step }, unset: ["n"] }).catch(() => {});
		else if (r < 8)
			await c.mutation("db/replace", { table: "rnd", id,
			    doc: { t: "r", n: -step } }).catch(() => {});
		else if (id !== ids[0]) {
			await c.mutation("db/delete", { table: "rnd", id });
			ids.splice(ids.indexOf(id), 1);
		}
		for (const [i, [u, a]] of shapes.entries())
			assert.deepEqual(latest[i], (await c.query(u, a)).value,
			    `step ${step}, ${JSON.stringify(a)}`);
		assert.deepEqual(getValue, (await c.query("db/get", { table: "rnd",
		    id: ids[0] })).value, `step ${step}, db/get`);
	}
	const s = c.stats();
	console.log(`features ${s.features}, QueryDiff ${s.queryDiff}, ` +
	    `QueryUpdated ${s.queryUpdated}`);
	assert.equal(s.protocolErrors, 0);
	if (s.features.includes("diff"))
		assert.ok(s.queryDiff > 20, `diffs were sent (${s.queryDiff})`);
});

test("reconnect() and close(): state, counters, subscriptions carried over, pending work rejected", async () => {
	const c = client();
	const statuses = [];
	c.onConnectionState((s) => {
		if (statuses[statuses.length - 1] !== s.status)
			statuses.push(s.status);
	});
	let latest;
	c.subscribe("db/query", { table: "rc" }, (v) => { latest = v; });
	await c.mutation("db/insert", { table: "rc", doc: { n: 1 } });
	assert.equal(latest.length, 1);
	c.reconnect();
	const p = c.mutation("db/insert", { table: "rc", doc: { n: 2 } });
	assert.equal(c.connectionState().inflightMutations, 1);
	await p;
	assert.equal(latest.length, 2, "the subscription lives on the new connection");
	const st = c.connectionState();
	assert.equal(st.connectionCount, 1);
	assert.equal(st.lastCloseReason, "reconnect requested");
	assert.equal(st.retries, 0);
	assert.deepEqual(statuses.slice(-3), ["disconnected", "connecting",
	    "connected"]);
	const q = c.query("db/query", { table: "rc" });
	c.close();
	const e = await q.then(() => null, (err) => err);
	assert.ok(e === null || e.kind === "Unavailable");
	assert.equal(c.connectionState().status, "closed");
	await assert.rejects(c.mutation("db/insert", { table: "rc", doc: {} }),
	    (err) => err.code === -32008 && err.data.outcome === "unknown");
});

test("an action in flight when the caller's connection drops: the caller gets Unavailable/unknown, the provider's signal is aborted", async () => {
	const relay = await new Relay(stack.port).listen();
	const provider = client();
	let started = false;
	let aborted = false;
	provider.provide("slow/*", (args, { signal }) => {
		if (args.probe)
			return "here";
		started = true;
		return new Promise((resolve) => signal.addEventListener("abort",
		    () => {
			aborted = true;
			resolve("cancelled");
		}));
	});
	try {
		const caller = client(`ws://127.0.0.1:${relay.port}/sync`);
		await waitFor(async () => await caller.action("slow/probe",
		    { probe: true }).then(() => true, () => false), 10000,
		    "the provider");
		const sent = caller.stats().actionsSent;
		const p = caller.action("slow/wait", {}).then(() => null, (e) => e);
		await waitFor(() => started, 10000, "the call to start");
		relay.close();
		const e = await p;
		assert.ok(e !== null, "the action failed");
		assert.equal(e.code, -32008);
		assert.equal(e.kind, "Unavailable");
		assert.equal(e.data.outcome, "unknown");
		await waitFor(() => aborted, 10000, "the provider's signal");
		await new Promise((r) => setTimeout(r, 300));
		assert.equal(caller.stats().actionsSent, sent + 1, "never resent");
	} finally {
		relay.close();
	}
});

test("a provider registers again after its gateway restarts", async () => {
	const provider = client();
	provider.provide("again/*", (args) => ({ n: args.n }));
	const caller = client();
	const call = (n) => caller.action("again/x", { n }).then((v) => v.n,
	    () => null);
	await waitFor(async () => await call(1) === 1, 10000, "the provider");
	await stack.killGateway();
	await stack.startGateway();
	await waitFor(async () => await call(2) === 2, 15000,
	    "the provider after the restart");
	assert.ok(provider.connectionState().connectionCount >= 1);
	assert.equal(provider.stats().callsServed >= 2, true);
});
