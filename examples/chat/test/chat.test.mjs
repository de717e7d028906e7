// The chat example served by gatewayd's static_dir, in two headless
// Chromium pages against the real daemons and the demo provider: a
// message sent in one page appears in the other, a reply streams into
// both, older messages load on demand; a screenshot is kept in
// $TINYVEX_BUILD/chat-screenshot.png.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { TinyvexClient } from "../../../clients/js/tinyvex.js";
import { Browser, haveChromium } from "../../../clients/js/test/browser.mjs";
import { BUILD, Stack, hasMethod, waitFor } from "../../../clients/js/test/stack.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const chat = path.resolve(here, "..");
const top = path.resolve(chat, "../..");
const SHOT = path.join(BUILD, "chat-screenshot.png");
const skip = haveChromium() ? false : "chromium not installed";

let www, stack, provider, providerLog = "", browser, a, b, node;
/* What the gateway lacks, by feature: a reason to skip, or absent. */
const missing = {};

/* Skips t when the gateway lacks one of the features it needs. */
function lacks(t, ...features) {
	const why = [...new Set(features.map((f) => missing[f]).filter(Boolean))];
	if (skip || why.length === 0)
		return false;
	t.skip(why.join("; "));
	return true;
}

/* What the gateway serves: the app and the client library beside it. */
function stage() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tinyvex-chat-"));
	for (const f of ["index.html", "app.js", "style.css"])
		fs.copyFileSync(path.join(chat, f), path.join(dir, f));
	fs.copyFileSync(path.join(top, "clients/js/tinyvex.js"),
	    path.join(dir, "tinyvex.js"));
	return dir;
}

async function open(author) {
	const page = await browser.newPage();
	await page.send("Emulation.setDeviceMetricsOverride", { width: 900,
	    height: 560, deviceScaleFactor: 1, mobile: false });
	await page.eval((name) => localStorage.setItem("tinyvex-chat-author",
	    name), author).catch(() => {});
	await page.goto(`http://127.0.0.1:${stack.port}/`);
	await page.eval((name) => {
		document.getElementById("author").value = name;
		localStorage.setItem("tinyvex-chat-author", name);
	}, author);
	return page;
}

/* Waits in the page until fn() is true. */
function until(page, fn, ms = 15000) {
	return page.eval(async (src, ms) => {
		const f = eval(src);
		const end = Date.now() + ms;
		while (!f()) {
			if (Date.now() > end)
				throw new Error("timed out: " + src);
			await new Promise((r) => setTimeout(r, 20));
		}
		return true;
	}, fn.toString(), ms);
}

const texts = () => [...document.querySelectorAll("#list li .text")]
    .map((e) => e.textContent);

before(async () => {
	if (skip)
		return;
	www = stage();
	const schema = JSON.parse(fs.readFileSync(path.join(chat, "schema.json")));
	stack = new Stack({ schema, conf: `static_dir ${www}\n` });
	try {
		await stack.start();
	} catch {
		await stack.stop();
		stack = null;
		missing.static = "the gateway has no static_dir";
		missing.paginate = missing.actions = missing.static;
		return;
	}
	if (!await hasMethod(stack.url(), "tinyvex/provide", { functions: [] }))
		missing.actions = "the gateway has no actions";
	const probe = await new TinyvexClient(stack.url());
	const e = await probe.query("db/paginate", { table: "x", numItems: 1 })
	    .then(() => null, (err) => err);
	probe.close();
	if (e?.kind === "NotFound")
		missing.paginate = "the gateway has no db/paginate";
	provider = spawn(process.execPath, ["--experimental-websocket",
	    "--no-warnings", path.join(chat, "provider.mjs"), stack.url()],
	    { env: { ...process.env, TOKEN_DELAY_MS: "40" },
	    stdio: ["ignore", "pipe", "pipe"] });
	provider.stdout.on("data", (d) => { providerLog += d; });
	provider.stderr.on("data", (d) => { providerLog += d; });
	node = new TinyvexClient(stack.url());
	await waitFor(async () => (await node.query("db/query",
	    { table: "messages" })).value.length > 0, 15000,
	    "the provider's welcome thread");
	browser = await Browser.launch();
	a = await open("alice");
	b = await open("bob");
});

after(async () => {
	node?.close();
	await browser?.close();
	provider?.kill();
	await stack?.stop();
	if (www)
		fs.rmSync(www, { recursive: true, force: true });
});

test("the page is served by the gateway and connects", { skip }, async (t) => {
	if (lacks(t, "static"))
		return;
	const r = await fetch(`http://127.0.0.1:${stack.port}/`);
	assert.equal(r.status, 200);
	assert.match(await r.text(), /Tinyvex chat/);
	for (const p of [a, b]) {
		await until(p, () => document.getElementById("conn").className ===
		    "conn connected");
		await until(p, () => document.querySelectorAll("#threads li")
		    .length === 1);
		if (!missing.paginate)
			await until(p, () => document.querySelectorAll("#list li")
			    .length === 1);
	}
});

test("a message sent in one page appears in the other", { skip }, async (t) => {
	if (lacks(t, "static", "paginate"))
		return;
	await a.eval(() => {
		document.getElementById("text").value = "hello from alice";
		document.getElementById("composer").requestSubmit();
	});
	await until(b, () => [...document.querySelectorAll("#list li .text")]
	    .some((e) => e.textContent === "hello from alice"));
	const r = await a.eval(() => ({
	    mine: document.querySelector("#list li:last-child").className,
	    more: getComputedStyle(document.getElementById("load-more")).display }));
	assert.equal(r.mine, "mine");
	assert.equal(r.more, "none", "no load more button for two messages");
});

test("the reply streams into both pages token by token", { skip }, async (t) => {
	if (lacks(t, "static", "paginate", "actions"))
		return;
	/* Page a records every length the reply had on screen. */
	await a.eval(() => {
		window.lengths = [];
		new MutationObserver(() => {
			const e = document.querySelector("#list li.assistant .text");
			if (e && window.lengths[window.lengths.length - 1] !==
			    e.textContent.length)
				window.lengths.push(e.textContent.length);
		}).observe(document.getElementById("list"), { subtree: true,
		    childList: true, characterData: true });
	});
	await b.eval(() => document.getElementById("reply").click());
	await until(a, () => {
		const li = document.querySelector("#list li.assistant");
		return li !== null && !li.classList.contains("streaming");
	}, 30000);
	const { lengths, text } = await a.eval(() => ({ lengths: window.lengths,
	    text: document.querySelector("#list li.assistant .text").textContent }));
	assert.match(text, /^You wrote "hello from alice" \(3 words\)\./);
	assert.ok(lengths.length >= 5, `the reply grew in steps (${lengths})`);
	for (let i = 1; i < lengths.length; i++)
		assert.ok(lengths[i] > lengths[i - 1], `lengths grow (${lengths})`);
	await until(b, () => document.querySelector("#list li.assistant:not(.streaming)") !== null);
	assert.equal(await b.eval(() => document.querySelector(
	    "#list li.assistant .text").textContent), text);
});

test("older messages load on demand", { skip }, async (t) => {
	if (lacks(t, "static", "paginate"))
		return;
	/* A thread with a history before anyone opens it: its first page
	 * is the newest messages, and older ones load on demand. */
	const { value: threadId } = await node.mutation("db/insert",
	    { table: "threads", doc: { title: "History" } });
	/* One mutation each: the documents of one batch share a ts. */
	for (let i = 0; i < 25; i++)
		await node.mutation("db/insert", { table: "messages", doc: {
		    threadId, author: "carol", role: "user", text: `message ${i}` } });
	await until(b, () => document.querySelectorAll("#threads li").length === 2);
	await b.eval((id) => document.querySelector(`#threads li[data-id="${id}"]`)
	    .click(), threadId);
	await until(b, () => document.querySelectorAll("#list li").length === 20);
	const first = await b.eval(() => ({ texts: [...document.querySelectorAll(
	    "#list li .text")].map((e) => e.textContent),
	    more: getComputedStyle(document.getElementById("load-more")).display }));
	assert.equal(first.more, "block", "a load more button");
	assert.equal(first.texts[0], "message 5", "the newest page, oldest at the top");
	assert.equal(first.texts[19], "message 24");
	await b.eval(() => document.getElementById("load-more").click());
	await until(b, () => document.querySelectorAll("#list li").length === 25);
	/* A new message lands at the bottom of the newest page. */
	await node.mutation("db/insert", { table: "messages", doc: { threadId,
	    author: "carol", role: "user", text: "message 25" } });
	await until(b, () => document.querySelectorAll("#list li").length === 26);
	const all = await b.eval(() => ({ texts: [...document.querySelectorAll(
	    "#list li .text")].map((e) => e.textContent),
	    more: getComputedStyle(document.getElementById("load-more")).display }));
	assert.deepEqual(all.texts, Array.from({ length: 26 }, (_, i) =>
	    `message ${i}`));
	assert.equal(all.more, "none", "nothing older");
	/* Back to the first thread for the screenshot. */
	await b.eval(() => document.querySelectorAll("#threads li")[1].click());
});

test("the connection indicator follows the gateway going away and coming back", { skip }, async (t) => {
	if (lacks(t, "static"))
		return;
	await stack.killGateway();
	await until(a, () => document.getElementById("conn").className !==
	    "conn connected");
	const down = await a.eval(() => document.getElementById("conn-text")
	    .textContent);
	assert.match(down, /^(disconnected|connecting)/);
	await stack.startGateway();
	for (const p of [a, b])
		await until(p, () => document.getElementById("conn").className ===
		    "conn connected", 20000);
	assert.match(await a.eval(() => document.getElementById("conn-text")
	    .textContent), /connected \(reconnected [1-9]/);
});

test("a screenshot of the app is kept", { skip }, async (t) => {
	if (lacks(t, "static"))
		return;
	await a.eval(() => {
		const box = document.getElementById("messages");
		box.scrollTop = box.scrollHeight;
	});
	await a.screenshot(SHOT);
	const png = fs.readFileSync(SHOT);
	assert.equal(png.subarray(1, 4).toString(), "PNG");
	assert.ok(png.length > 10000, `a real picture (${png.length} bytes)`);
	console.log(`screenshot: ${SHOT}`);
});
