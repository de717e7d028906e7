// The protocol state machine fed frames written to the wire contract
// (tinyvex(7)), without sockets: version checks, chunk reassembly, diff
// application, resume with hashes, request bookkeeping, providers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SyncEngine, TinyvexError, applyDiff, backoffDelay, canonicalJson,
    BACKOFF_MAX_MS } from "../tinyvex.js";

const tick = () => new Promise((r) => setTimeout(r, 0));

/* An engine with a recording io and a clock whose timers run on demand. */
function harness(opts = {}) {
	const h = { sent: [], resets: [], timers: [], now: 1000 };
	h.clock = {
		now: () => h.now,
		random: () => 0.5,
		setTimeout: (f, ms) => {
			const t = { f, at: h.now + ms, done: false };
			h.timers.push(t);
			return t;
		},
		clearTimeout: (t) => { t.done = true; },
	};
	h.engine = new SyncEngine({
		sessionId: "s1", clock: h.clock, ...opts,
		io: {
			send: (text) => h.sent.push(JSON.parse(text)),
			reset: (reason) => {
				h.resets.push(reason);
				h.engine.onClose(reason);
			},
		},
	});
	h.advance = (ms) => {
		h.now += ms;
		for (const t of h.timers.filter((t) => !t.done && t.at <= h.now)) {
			t.done = true;
			t.f();
		}
	};
	h.take = () => h.sent.splice(0);
	h.frame = (obj) => h.engine.onFrame(JSON.stringify(obj));
	h.answer = (id, result) => h.frame({ jsonrpc: "2.0", id, result });
	h.fail = (id, code, kind, message, data = {}) => h.frame({ jsonrpc: "2.0",
	    id, error: { code, message, data: { kind, ...data } } });
	h.version = { querySet: 0, identity: 0, ts: 0 };
	h.transition = (mods, { querySet, ts } = {}) => {
		const end = { querySet: querySet ?? h.version.querySet, identity: 0,
		    ts: ts ?? h.version.ts };
		h.frame({ jsonrpc: "2.0", method: "tinyvex/transition", params: {
		    startVersion: h.version, endVersion: end, modifications: mods,
		    serverTs: 1 } });
		h.version = end;
	};
	/* Open and finish the handshake; returns the connect params. */
	h.connect = (features = ["diff", "resume"]) => {
		h.version = { querySet: 0, identity: 0, ts: 0 };
		h.engine.onConnecting();
		h.engine.onOpen();
		const [c] = h.take();
		assert.equal(c.method, "tinyvex/connect");
		h.answer(c.id, { protocol: 1, serverTs: 5, gatewayId: "gw",
		    limits: {}, features });
		return c.params;
	};
	return h;
}

test("connect: sessionId, features, connectionCount; resume fields later", () => {
	const h = harness();
	const p = h.connect();
	assert.deepEqual(p, { sessionId: "s1", connectionCount: 0,
	    features: ["diff", "resume"] });
	assert.equal(h.engine.state().status, "connected");
	h.transition([], { ts: 77 });
	h.engine.onClose("close 1006");
	assert.equal(h.engine.state().status, "disconnected");
	const p2 = h.connect();
	assert.deepEqual(p2, { sessionId: "s1", connectionCount: 1,
	    features: ["diff", "resume"], lastCloseReason: "close 1006",
	    maxObservedTs: 77 });
});

test("subscribe: one Add per tick; value and ts delivered; version chained", async () => {
	const h = harness();
	h.connect();
	const got = [];
	h.engine.subscribe("db/query", { table: "m" }, (v, i) => got.push([v, i.ts]));
	h.engine.subscribe("db/get", { table: "m", id: "x" }, () => {});
	assert.equal(h.sent.length, 0, "nothing sent inside subscribe");
	await tick();
	const [m] = h.take();
	assert.equal(m.method, "tinyvex/modifyQuerySet");
	assert.equal(m.params.baseVersion, 0);
	assert.equal(m.params.newVersion, 1);
	assert.equal(m.params.modifications.length, 2);
	const q = m.params.modifications[0].queryId;
	h.transition([{ type: "QueryUpdated", queryId: q, value: [], hash: "h0" }],
	    { querySet: 1, ts: 10 });
	h.answer(m.id, { querySet: 1 });
	h.transition([{ type: "QueryUpdated", queryId: q,
	    value: [{ _id: "a" }], hash: "h1" }], { ts: 20 });
	assert.deepEqual(got, [[[], 10], [[{ _id: "a" }], 20]]);
	assert.equal(h.resets.length, 0);
	assert.equal(h.engine.stats().maxObservedTs, 20);
});

test("a transition that does not start at the last endVersion resumes", async () => {
	const h = harness();
	h.connect();
	h.engine.subscribe("db/query", { table: "m" }, () => {});
	await tick();
	const [m] = h.take();
	h.transition([{ type: "QueryUpdated", queryId: 1, value: [], hash: "h" }],
	    { querySet: 1, ts: 10 });
	h.version = { querySet: 1, identity: 0, ts: 9 };	/* a gap */
	h.transition([], { ts: 30 });
	assert.equal(h.resets.length, 1);
	assert.match(h.resets[0], /transition starts at \{1, 0, 9\}, not at \{1, 0, 10\}/);
	assert.equal(h.engine.state().status, "disconnected");
	/* Later frames of the dropped socket are ignored. */
	h.answer(m.id, { querySet: 1 });
	assert.equal(h.sent.length, 0);
});

test("chunks are reassembled in order; a chunk out of order resumes", async () => {
	const h = harness();
	h.connect();
	let value;
	h.engine.subscribe("db/query", { table: "m" }, (v) => { value = v; });
	await tick();
	h.take();
	const docs = [{ _id: "a", text: "héllo wörld ".repeat(20) }, { _id: "b" }];
	const text = JSON.stringify({ startVersion: h.version,
	    endVersion: { querySet: 1, identity: 0, ts: 5 },
	    modifications: [{ type: "QueryUpdated", queryId: 1, value: docs,
	    hash: "h" }], serverTs: 1 });
	const parts = [text.slice(0, 50), text.slice(50, 120), text.slice(120)];
	parts.forEach((chunk, i) => {
		assert.equal(value, undefined, "nothing before the last part");
		h.frame({ jsonrpc: "2.0", method: "tinyvex/transitionChunk",
		    params: { transitionId: "t1", partNumber: i, totalParts: 3,
		    chunk } });
	});
	assert.deepEqual(value, docs);
	h.version = { querySet: 1, identity: 0, ts: 5 };
	h.frame({ jsonrpc: "2.0", method: "tinyvex/transitionChunk",
	    params: { transitionId: "t2", partNumber: 0, totalParts: 2,
	    chunk: "{" } });
	h.frame({ jsonrpc: "2.0", method: "tinyvex/transitionChunk",
	    params: { transitionId: "t3", partNumber: 1, totalParts: 2,
	    chunk: "}" } });
	assert.equal(h.resets.length, 1);
	assert.match(h.resets[0], /chunk of transition t3 inside transition t2/);
});

test("a plain transition inside a chunked one, and a bad frame, resume", () => {
	const h = harness();
	h.connect();
	h.frame({ jsonrpc: "2.0", method: "tinyvex/transitionChunk",
	    params: { transitionId: "t", partNumber: 0, totalParts: 2, chunk: "{" } });
	h.transition([]);
	assert.equal(h.resets.length, 1);
	h.connect();
	h.engine.onFrame("{not json");
	assert.equal(h.resets.length, 2);
	assert.match(h.resets[1], /not JSON/);
});

test("applyDiff: remove, insert, update with set/unset/append, fields, one document", () => {
	const docs = [{ _id: "a", n: 1, t: "x" }, { _id: "b", n: 2 },
	    { _id: "c", n: 3, gone: true }];
	const frozen = JSON.stringify(docs);
	const out = applyDiff(docs, [
		{ op: "remove", id: "b" },
		{ op: "insert", at: 0, doc: { _id: "d", n: 4 } },
		{ op: "update", id: "a", set: { n: 10 }, append: { t: "yz" } },
		{ op: "update", id: "c", unset: ["gone"] },
		{ op: "remove", id: "d" },
		{ op: "insert", at: 2, doc: { _id: "d", n: 5 } },
	]);
	assert.deepEqual(out, [{ _id: "a", n: 10, t: "xyz" }, { _id: "c", n: 3 },
	    { _id: "d", n: 5 }]);
	assert.equal(JSON.stringify(docs), frozen, "the old value is unchanged");
	const page = { page: [{ _id: "a" }], continueCursor: "c1", isDone: false };
	assert.deepEqual(applyDiff(page, [{ op: "insert", at: 1,
	    doc: { _id: "b" } }], { isDone: true }),
	    { page: [{ _id: "a" }, { _id: "b" }], continueCursor: "c1",
	    isDone: true });
	assert.deepEqual(applyDiff({ _id: "a", t: "to", x: 1 }, [{ op: "update",
	    append: { t: "ken" }, unset: ["x"] }]), { _id: "a", t: "token" });
	for (const [value, ops] of [
		[docs, [{ op: "remove", id: "zz" }]],
		[docs, [{ op: "insert", at: 4, doc: { _id: "e" } }]],
		[docs, [{ op: "update", id: "b", append: { n: "1" } }]],
		[docs, [{ op: "shuffle" }]],
		[null, [{ op: "update", set: { a: 1 } }]],
	])
		assert.throws(() => applyDiff(value, ops), (e) =>
		    e instanceof TinyvexError && e.kind === "ProtocolError");
});

/* The hand-written cases of the server's diff unit test
 * (tests/unit/test_diff.c): old, new, and the diff the gateway sends. */
const SERVER_CASES = [
	['[{"_id":"a","t":"hel"}]', '[{"_id":"a","t":"hello"}]',
	    '{"ops":[{"op":"update","id":"a","append":{"t":"lo"}}]}'],
	['[{"_id":"a","t":"x","n":1,"g":true}]',
	    '[{"_id":"a","t":"xy","n":2,"k":null}]',
	    '{"ops":[{"op":"update","id":"a","set":{"n":2,"k":null},' +
	    '"unset":["g"],"append":{"t":"y"}}]}'],
	['[{"_id":"a","t":"abc"}]', '[{"_id":"a","t":"ab"}]',
	    '{"ops":[{"op":"update","id":"a","set":{"t":"ab"}}]}'],
	['[{"_id":"a"},{"_id":"b"}]', '[{"_id":"b"},{"_id":"c"}]',
	    '{"ops":[{"op":"remove","id":"a"},{"op":"insert","at":1,' +
	    '"doc":{"_id":"c"}}]}'],
	['[{"_id":"a"},{"_id":"b"},{"_id":"c"}]',
	    '[{"_id":"b"},{"_id":"c"},{"_id":"a","x":1}]',
	    '{"ops":[{"op":"remove","id":"a"},{"op":"insert","at":2,' +
	    '"doc":{"_id":"a","x":1}}]}'],
	['[]', '[]', '{"ops":[]}'],
	['{"_id":"a","t":"to"}', '{"_id":"a","t":"token"}',
	    '{"ops":[{"op":"update","append":{"t":"ken"}}]}'],
	['{"page":[{"_id":"a"}],"continueCursor":"c1","isDone":false}',
	    '{"page":[{"_id":"a"},{"_id":"b"}],"continueCursor":"c2",' +
	    '"isDone":false}',
	    '{"ops":[{"op":"insert","at":1,"doc":{"_id":"b"}}],' +
	    '"fields":{"continueCursor":"c2"}}'],
];

test("applyDiff gives the new value for each of the server's diff cases", () => {
	for (const [oldText, newText, diffText] of SERVER_CASES) {
		const d = JSON.parse(diffText);
		assert.deepEqual(applyDiff(JSON.parse(oldText), d.ops, d.fields),
		    JSON.parse(newText), diffText);
	}
});

test("QueryDiff applies to the held value; without one it resumes", async () => {
	const h = harness();
	h.connect();
	const got = [];
	h.engine.subscribe("db/query", { table: "m" }, (v) => got.push(v));
	await tick();
	h.take();
	h.transition([{ type: "QueryUpdated", queryId: 1, hash: "h1",
	    value: [{ _id: "a", text: "he" }] }], { querySet: 1, ts: 1 });
	h.transition([{ type: "QueryDiff", queryId: 1, hash: "h2",
	    ops: [{ op: "update", id: "a", append: { text: "llo" } },
	    { op: "insert", at: 1, doc: { _id: "b", text: "" } }] }], { ts: 2 });
	assert.deepEqual(got[1], [{ _id: "a", text: "hello" }, { _id: "b", text: "" }]);
	/* A QueryFailed leaves nothing held: a diff after it is a broken stream. */
	h.transition([{ type: "QueryFailed", queryId: 1, error: { code: -32004,
	    kind: "NotFound", message: "no index" } }], { ts: 3 });
	h.transition([{ type: "QueryDiff", queryId: 1, ops: [] }], { ts: 4 });
	assert.equal(h.resets.length, 1);
	assert.match(h.resets[0], /holds no value/);
	/* A diff that does not apply resumes, and the re-add sends no hash. */
	h.connect();
	const [add] = h.take();
	assert.equal(add.params.modifications[0].knownHash, undefined);
	h.transition([{ type: "QueryUpdated", queryId: 1, hash: "h5",
	    value: [{ _id: "a" }] }], { querySet: 1, ts: 5 });
	h.transition([{ type: "QueryDiff", queryId: 1, ops: [{ op: "remove",
	    id: "nope" }] }], { ts: 6 });
	assert.equal(h.resets.length, 2);
	h.connect();
	const [add2] = h.take();
	assert.equal(add2.params.modifications[0].knownHash, undefined);
});

test("a transition broken part way shows what it applied before resuming", async () => {
	const h = harness();
	h.connect();
	const a = [];
	const b = [];
	h.engine.subscribe("db/query", { table: "a" }, (v) => a.push(v));
	h.engine.subscribe("db/query", { table: "b" }, (v) => b.push(v));
	await tick();
	const [m] = h.take();
	h.transition([
		{ type: "QueryUpdated", queryId: 1, value: [{ _id: "x", n: 1 }], hash: "a1" },
		{ type: "QueryUpdated", queryId: 2, value: [{ _id: "y" }], hash: "b1" },
	], { querySet: 1, ts: 1 });
	h.answer(m.id, { querySet: 1 });
	/* Query 1 changes; query 2's diff names a document not held. */
	h.transition([
		{ type: "QueryUpdated", queryId: 1, value: [{ _id: "x", n: 2 }], hash: "a2" },
		{ type: "QueryDiff", queryId: 2, ops: [{ op: "remove", id: "nope" }] },
	], { ts: 2 });
	assert.equal(h.resets.length, 1);
	assert.deepEqual(a.at(-1), [{ _id: "x", n: 2 }],
	    "the value whose hash the resume names is on screen");
	/* The resume names a2; the server answers QueryUnchanged for it. */
	h.connect();
	const [re] = h.take();
	assert.equal(re.params.modifications[0].knownHash, "a2");
	h.transition([{ type: "QueryUnchanged", queryId: 1, hash: "a2" }],
	    { querySet: 1, ts: 3 });
	assert.deepEqual(a.at(-1), [{ _id: "x", n: 2 }]);
});

test("resume: one modifyQuerySet from 0 with knownHash and pinned endCursor; QueryUnchanged keeps the value", async () => {
	const h = harness();
	h.connect();
	const got = [];
	h.engine.subscribe("db/query", { table: "m" }, (v) => got.push(v));
	const pages = [];
	h.engine.subscribe("db/paginate", { table: "m", numItems: 2, cursor: null },
	    (v) => pages.push(v));
	await tick();
	const [m] = h.take();
	h.transition([
		{ type: "QueryUpdated", queryId: 1, value: [{ _id: "a" }], hash: "ha" },
		{ type: "QueryUpdated", queryId: 2, value: { page: [{ _id: "a" }],
		    continueCursor: "end1", isDone: true }, hash: "hp" },
	], { querySet: 1, ts: 10 });
	h.answer(m.id, { querySet: 1 });
	h.engine.onClose("close 1006");
	h.engine.onConnecting();
	h.engine.onClose("close 1006");	/* an attempt that failed */
	assert.equal(h.engine.state().retries, 2);
	assert.equal(h.engine.state().lastCloseReason, "close 1006");
	h.connect();
	assert.equal(h.engine.state().retries, 2, "not reset before the re-adds are answered");
	const [re] = h.take();
	assert.equal(re.method, "tinyvex/modifyQuerySet");
	assert.deepEqual(re.params.modifications, [
		{ type: "Add", queryId: 1, udfPath: "db/query", args: { table: "m" },
		    knownHash: "ha" },
		{ type: "Add", queryId: 2, udfPath: "db/paginate", args: {
		    cursor: null, numItems: 2, table: "m", endCursor: "end1" },
		    knownHash: "hp" },
	]);
	assert.equal(re.params.baseVersion, 0);
	h.transition([{ type: "QueryUnchanged", queryId: 1, hash: "ha" },
	    { type: "QueryUpdated", queryId: 2, value: { page: [],
	    continueCursor: "end1", isDone: true }, hash: "hq" }],
	    { querySet: 1, ts: 11 });
	h.answer(re.id, { querySet: 1 });
	assert.equal(h.engine.state().retries, 0);
	assert.equal(got.length, 1, "QueryUnchanged delivers nothing new");
	assert.equal(pages.length, 2);
	assert.equal(h.engine.stats().queryUnchanged, 1);
	/* A diff may follow QueryUnchanged: the value is held. */
	h.transition([{ type: "QueryDiff", queryId: 1, ops: [{ op: "remove",
	    id: "a" }], hash: "h0" }], { ts: 12 });
	assert.deepEqual(got[1], []);
	/* QueryUnchanged with another hash than the one held is broken. */
	h.engine.onClose("x");
	h.connect();
	h.take();
	h.transition([{ type: "QueryUnchanged", queryId: 1, hash: "ha" }],
	    { querySet: 1, ts: 13 });
	assert.equal(h.resets.length, 1);
});

test("identical subscriptions share one query; cached value arrives asynchronously", async () => {
	const h = harness();
	h.connect();
	assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3] } }),
	    canonicalJson({ a: { c: [3], d: 2 }, b: 1 }));
	const a = [];
	const b = [];
	const offA = h.engine.subscribe("db/query", { table: "m", order: "desc" },
	    (v) => a.push(v));
	await tick();
	const [m] = h.take();
	h.transition([{ type: "QueryUpdated", queryId: 1, value: [1], hash: "h" }],
	    { querySet: 1, ts: 3 });
	h.answer(m.id, { querySet: 1 });
	const offB = h.engine.subscribe("db/query", { order: "desc", table: "m" },
	    (v, i) => b.push([v, i.ts]));
	assert.deepEqual(b, [], "not delivered inside subscribe");
	await tick();
	assert.deepEqual(b, [[[1], 3]]);
	assert.equal(h.take().length, 0, "no second Add");
	offA();
	await tick();
	assert.equal(h.take().length, 0, "no Remove while one subscriber is left");
	offB();
	await tick();
	const [rm] = h.take();
	assert.deepEqual(rm.params, { baseVersion: 1, newVersion: 2,
	    modifications: [{ type: "Remove", queryId: 1 }] });
	/* Modifications for the removed query still in flight are ignored. */
	h.transition([{ type: "QueryUpdated", queryId: 1, value: [2] }], { ts: 4 });
	assert.equal(a.length, 1);
	assert.equal(h.resets.length, 0);
});

test("QueryFailed reaches onError, the subscription stays and recovers", async () => {
	const h = harness();
	h.connect();
	const ev = [];
	h.engine.subscribe("db/query", { table: "m", index: "by_x" },
	    (v) => ev.push(["value", v]), (e) => ev.push(["error", e]));
	await tick();
	h.take();
	h.transition([{ type: "QueryFailed", queryId: 1, error: { code: -32004,
	    kind: "NotFound", message: "no index by_x" } }], { querySet: 1, ts: 1 });
	assert.equal(ev.length, 1);
	assert.ok(ev[0][1] instanceof TinyvexError);
	assert.equal(ev[0][1].code, -32004);
	assert.equal(ev[0][1].kind, "NotFound");
	assert.equal(ev[0][1].message, "no index by_x");
	h.transition([{ type: "QueryUpdated", queryId: 1, value: [], hash: "h" }],
	    { ts: 2 });
	assert.deepEqual(ev[1], ["value", []]);
});

test("subscriptions changed while disconnected are queued, not sent", async () => {
	const h = harness();
	h.connect();
	h.engine.onClose("close 1006");
	const off = h.engine.subscribe("db/query", { table: "a" }, () => {});
	h.engine.subscribe("db/query", { table: "b" }, () => {});
	off();
	await tick();
	assert.equal(h.sent.length, 0);
	h.connect();
	const [m] = h.take();
	assert.deepEqual(m.params.modifications.map((x) => x.args.table), ["b"]);
});

test("mutations: requestId always, resent after reconnect with the same requestId, in order", async () => {
	const h = harness();
	h.connect();
	const p1 = h.engine.mutation("db/insert", { table: "m", doc: { n: 1 } });
	const [s1] = h.take();
	assert.equal(s1.method, "tinyvex/mutation");
	assert.equal(s1.params.requestId, 1);
	assert.equal(h.engine.state().inflightMutations, 1);
	h.engine.onClose("close 1006");
	const p2 = h.engine.mutation("db/insert", { table: "m", doc: { n: 2 } });
	assert.equal(h.sent.length, 0, "nothing sent while disconnected");
	h.connect();
	const sent = h.take();
	assert.deepEqual(sent.map((x) => [x.method, x.params.requestId]),
	    [["tinyvex/mutation", 1], ["tinyvex/mutation", 2]]);
	/* The transition with the write comes first, then the answer. */
	h.transition([], { ts: 50 });
	h.answer(sent[0].id, { value: "id1", ts: 50 });
	h.answer(sent[1].id, { value: "id2", ts: 51 });
	assert.deepEqual(await p1, { value: "id1", ts: 50 });
	assert.deepEqual(await p2, { value: "id2", ts: 51 });
	assert.equal(h.engine.state().inflightMutations, 0);
});

test("Unavailable and Overloaded are retried with backoff until a recorded outcome or the deadline", async () => {
	const h = harness({ mutationDeadlineMs: 5000 });
	h.connect();
	const p = h.engine.mutation("db/insert", { table: "m", doc: {} });
	let [s] = h.take();
	h.fail(s.id, -32008, "Unavailable", "writer link down", { outcome: "unknown" });
	assert.equal(h.sent.length, 0, "not at once");
	h.advance(backoffDelay(0, () => 0.5));
	[s] = h.take();
	assert.equal(s.params.requestId, 1);
	h.fail(s.id, -32007, "Overloaded", "queue full");
	h.advance(BACKOFF_MAX_MS);
	[s] = h.take();
	assert.equal(s.params.requestId, 1);
	h.fail(s.id, -32005, "Conflict", "unique index by_x");
	await assert.rejects(p, (e) => e.kind === "Conflict" && e.code === -32005);
	/* Past the deadline the app gets the error. */
	const q = h.engine.mutation("db/insert", { table: "m", doc: {} });
	[s] = h.take();
	h.now += 6000;
	h.fail(s.id, -32008, "Unavailable", "writer link down", { outcome: "unknown" });
	await assert.rejects(q, (e) => e.kind === "Unavailable" &&
	    e.data.outcome === "unknown");
});

test("actions in flight fail Unavailable/unknown on connection loss and are never resent", async () => {
	const h = harness();
	h.connect();
	const a = h.engine.action("demo/reply", { x: 1 });
	const [s] = h.take();
	assert.equal(s.method, "tinyvex/action");
	assert.equal(h.engine.state().inflightActions, 1);
	h.engine.onClose("close 1006");
	await assert.rejects(a, (e) => e instanceof TinyvexError &&
	    e.code === -32008 && e.kind === "Unavailable" &&
	    e.data.outcome === "unknown");
	assert.equal(h.engine.state().inflightActions, 0);
	/* One made while disconnected waits and is sent after connect. */
	const b = h.engine.action("demo/reply", {});
	h.connect();
	const sent = h.take();
	assert.deepEqual(sent.map((x) => x.method), ["tinyvex/action"]);
	h.answer(sent[0].id, { value: "hi", ts: 9 });
	assert.equal(await b, "hi");
	const c = h.engine.action("demo/fail", {});
	const [s2] = h.take();
	h.fail(s2.id, -32011, "ActionFailed", "nope", { data: { why: 1 } });
	await assert.rejects(c, (e) => e.code === -32011 &&
	    e.kind === "ActionFailed" && e.data.data.why === 1);
});

test("providers: registered after connect and again after reconnect; calls answered; cancel aborts", async () => {
	const h = harness();
	const seen = [];
	h.engine.provide("agent/*", async (args, ctx) => {
		seen.push([args, ctx.callId, ctx.udfPath]);
		if (args.wait)
			await new Promise((r) => ctx.signal.addEventListener("abort", r));
		if (args.fail)
			throw new TinyvexError(-32000, "Bad", "failed here", { kind: "Bad", n: 1 });
		return { echo: args.x, aborted: ctx.signal.aborted };
	});
	h.connect();
	let [p] = h.take();
	assert.deepEqual([p.method, p.params], ["tinyvex/provide",
	    { functions: ["agent/*"] }]);
	h.answer(p.id, { providerId: "p1" });
	h.frame({ jsonrpc: "2.0", id: "c1", method: "tinyvex/runAction",
	    params: { udfPath: "agent/echo", args: { x: 5 }, sessionId: "z" } });
	await tick();
	assert.deepEqual(h.take(), [{ jsonrpc: "2.0", id: "c1",
	    result: { echo: 5, aborted: false } }]);
	h.frame({ jsonrpc: "2.0", id: "c2", method: "tinyvex/runAction",
	    params: { udfPath: "agent/x", args: { fail: true } } });
	await tick();
	assert.deepEqual(h.take(), [{ jsonrpc: "2.0", id: "c2", error: {
	    code: -32000, message: "failed here", data: { kind: "Bad", n: 1 } } }]);
	h.frame({ jsonrpc: "2.0", id: "c3", method: "tinyvex/runAction",
	    params: { udfPath: "agent/wait", args: { wait: true, x: 1 } } });
	await tick();
	h.frame({ jsonrpc: "2.0", method: "tinyvex/cancelAction",
	    params: { id: "c3" } });
	await tick();
	assert.deepEqual(h.take(), [{ jsonrpc: "2.0", id: "c3",
	    result: { echo: 1, aborted: true } }]);
	h.frame({ jsonrpc: "2.0", id: "c4", method: "tinyvex/runAction",
	    params: { udfPath: "other/x", args: {} } });
	assert.equal(h.take()[0].error.code, -32004);
	h.engine.onClose("close 1006");
	h.connect();
	[p] = h.take();
	assert.equal(p.method, "tinyvex/provide");
	assert.equal(seen.length, 3);
});

test("a registration answered Unavailable (writer link down) is sent again", async () => {
	const h = harness();
	h.engine.provide("agent/*", () => 1);
	h.connect();
	let [p] = h.take();
	h.fail(p.id, -32008, "Unavailable", "writer link down");
	assert.deepEqual(h.take(), []);
	h.advance(BACKOFF_MAX_MS);
	[p] = h.take();
	assert.deepEqual([p?.method, p?.params], ["tinyvex/provide",
	    { functions: ["agent/*"] }], "retried after a backoff");
	h.answer(p.id, { providerId: "p1" });
	h.advance(BACKOFF_MAX_MS);
	assert.deepEqual(h.take(), []);
	/* Refused for good (no such right): not sent again on this
	 * connection; a retry due after the connection is gone is not sent. */
	const off = h.engine.provide("tool/x", () => 2);
	[p] = h.take();
	h.fail(p.id, -32009, "Unauthorized", "browsers may not provide");
	h.advance(BACKOFF_MAX_MS);
	assert.deepEqual(h.take(), []);
	off();
	h.take();
	h.engine.provide("late/x", () => 3);
	[p] = h.take();
	h.fail(p.id, -32007, "Overloaded", "busy");
	h.engine.onClose("close 1006");
	h.advance(BACKOFF_MAX_MS);
	assert.deepEqual(h.take(), []);
});

test("a refused modifyQuerySet reaches the subscribers and resumes", async () => {
	const h = harness();
	h.connect();
	const errs = [];
	h.engine.subscribe("db/query", { table: "m" }, () => {}, (e) => errs.push(e));
	await tick();
	const [m] = h.take();
	h.fail(m.id, -32006, "TooLarge", "over maxQueries");
	assert.equal(errs.length, 1);
	assert.equal(errs[0].kind, "TooLarge");
	assert.equal(h.resets.length, 1);
});

test("a query the server refused is not re-added on every resume", async () => {
	const h = harness();
	h.connect();
	const ok = [];
	h.engine.subscribe("db/query", { table: "a" }, (v) => ok.push(v));
	await tick();
	const [m1] = h.take();
	h.transition([{ type: "QueryUpdated", queryId: 1, value: [], hash: "a" }],
	    { querySet: 1, ts: 1 });
	h.answer(m1.id, { querySet: 1 });
	const errs = [];
	h.engine.subscribe("db/query", { table: "b" }, () => {},
	    (e) => errs.push(e));
	await tick();
	const [m2] = h.take();
	h.fail(m2.id, -32006, "TooLarge", "over maxQueries");
	assert.equal(errs.length, 1);
	assert.equal(h.resets.length, 1);
	/* The resume re-adds the query that was accepted, not the refused
	 * one: refused again, it would drop every connection after it. */
	h.connect();
	const [re] = h.take();
	assert.deepEqual(re.params.modifications.map((x) => x.queryId), [1]);
	h.transition([{ type: "QueryUnchanged", queryId: 1, hash: "a" }],
	    { querySet: 1, ts: 2 });
	h.answer(re.id, { querySet: 1 });
	assert.equal(h.resets.length, 1);
	assert.equal(h.engine.state().retries, 0);
	/* A new subscriber sees the error; unsubscribing sends no Remove. */
	const late = [];
	const off = h.engine.subscribe("db/query", { table: "b" }, () => {},
	    (e) => late.push(e));
	await tick();
	assert.equal(late[0]?.kind, "TooLarge");
	off();
	await tick();
	assert.deepEqual(h.take(), []);
});

test("backoff: full jitter under a doubling ceiling capped at 10 s", () => {
	assert.equal(backoffDelay(0, () => 0.999), 99);
	assert.equal(backoffDelay(3, () => 0.5), 400);
	assert.equal(backoffDelay(30, () => 0.5), 5000);
	assert.equal(backoffDelay(7, () => 0), 0);
});
