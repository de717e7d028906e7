// Headless Chromium (Debian's chromium) driven over the DevTools protocol
// with Node's own WebSocket, and a small HTTP server for the test pages:
// the pages come from http://127.0.0.1:PORT, an origin the gateway allows.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

export const CHROMIUM = process.env.TINYVEX_CHROMIUM ?? "/usr/bin/chromium";
const LAUNCH_TIMEOUT_MS = 20000;	/* Chromium prints its DevTools URL by then */
const CALL_TIMEOUT_MS = 30000;		/* one DevTools command */

export function haveChromium() {
	try {
		fs.accessSync(CHROMIUM, fs.constants.X_OK);
		return true;
	} catch {
		return false;
	}
}

export class Browser {
	static async launch() {
		const prof = fs.mkdtempSync(path.join(os.tmpdir(), "tinyvex-chromium-"));
		const proc = spawn(CHROMIUM, ["--headless", "--no-sandbox",
		    "--disable-gpu", "--disable-quic", "--no-first-run",
		    "--disable-background-networking", "--disable-component-update",
		    "--disable-sync", "--disable-default-apps", "--disable-extensions",
		    "--disable-dev-shm-usage", "--remote-debugging-port=0",
		    "--remote-allow-origins=*", `--user-data-dir=${prof}`,
		    "--window-size=1100,760", "about:blank"],
		    { stdio: ["ignore", "ignore", "pipe"] });
		let err = "";
		const url = await new Promise((resolve, reject) => {
			const t = setTimeout(() => reject(new Error(
			    "chromium gave no DevTools URL:\n" + err.slice(-2000))),
			    LAUNCH_TIMEOUT_MS);
			proc.stderr.on("data", (d) => {
				err += d;
				const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
				if (m) {
					clearTimeout(t);
					resolve(m[1]);
				}
			});
			proc.once("exit", (c) => reject(new Error(
			    `chromium exited ${c}:\n${err.slice(-2000)}`)));
		});
		const ws = new WebSocket(url);
		await new Promise((resolve, reject) => {
			ws.onopen = resolve;
			ws.onerror = () => reject(new Error("DevTools socket failed"));
		});
		return new Browser(proc, ws, prof);
	}

	constructor(proc, ws, prof) {
		this.proc = proc;
		this.ws = ws;
		this.prof = prof;
		this.nextId = 1;
		this.pending = new Map();
		this.pages = new Map();
		ws.onmessage = (ev) => {
			const m = JSON.parse(ev.data);
			if (m.id !== undefined) {
				const p = this.pending.get(m.id);
				this.pending.delete(m.id);
				if (p === undefined)
					return;
				clearTimeout(p.timer);
				if (m.error)
					p.reject(new Error(`${p.method}: ${m.error.message}`));
				else
					p.resolve(m.result);
			} else if (m.sessionId !== undefined)
				this.pages.get(m.sessionId)?.event(m.method, m.params);
		};
	}

	send(method, params = {}, sessionId) {
		const id = this.nextId++;
		const msg = { id, method, params };
		if (sessionId !== undefined)
			msg.sessionId = sessionId;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.pending.delete(id);
				reject(new Error(`${method}: no answer`));
			}, CALL_TIMEOUT_MS);
			this.pending.set(id, { resolve, reject, timer, method });
			this.ws.send(JSON.stringify(msg));
		});
	}

	async newPage(url) {
		const { targetId } = await this.send("Target.createTarget",
		    { url: "about:blank" });
		const { sessionId } = await this.send("Target.attachToTarget",
		    { targetId, flatten: true });
		const page = new Page(this, sessionId, targetId);
		this.pages.set(sessionId, page);
		await page.send("Page.enable");
		await page.send("Runtime.enable");
		if (url !== undefined)
			await page.goto(url);
		return page;
	}

	async close() {
		try {
			await this.send("Browser.close");
		} catch {
			/* it may be gone already */
		}
		this.ws.close();
		if (this.proc.exitCode === null) {
			const t = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
			await new Promise((r) => this.proc.once("exit", r));
			clearTimeout(t);
		}
		fs.rmSync(this.prof, { recursive: true, force: true });
	}
}

export class Page {
	constructor(browser, sessionId, targetId) {
		this.browser = browser;
		this.sessionId = sessionId;
		this.targetId = targetId;
		this.waiters = [];
		this.console = [];
	}

	send(method, params) {
		return this.browser.send(method, params, this.sessionId);
	}

	event(method, params) {
		if (method === "Runtime.consoleAPICalled")
			this.console.push(params.args.map((a) => a.value ??
			    a.description).join(" "));
		else if (method === "Runtime.exceptionThrown")
			this.console.push("exception: " +
			    params.exceptionDetails?.exception?.description);
		for (const w of this.waiters.filter((w) => w.method === method)) {
			this.waiters.splice(this.waiters.indexOf(w), 1);
			w.resolve(params);
		}
	}

	waitEvent(method) {
		return new Promise((resolve) => this.waiters.push({ method, resolve }));
	}

	async goto(url) {
		const loaded = this.waitEvent("Page.loadEventFired");
		await this.send("Page.navigate", { url });
		await loaded;
	}

	/* Runs fn(...args) in the page (its source is sent) and returns its
	 * (awaited) value, which must be JSON. */
	async eval(fn, ...args) {
		const expression = `(${fn.toString()})(...${JSON.stringify(args)})`;
		const r = await this.send("Runtime.evaluate", { expression,
		    awaitPromise: true, returnByValue: true });
		if (r.exceptionDetails)
			throw new Error("in page: " + (r.exceptionDetails.exception
			    ?.description ?? r.exceptionDetails.text));
		return r.result.value;
	}

	async screenshot(file) {
		/* A tab in the background draws no frames to capture. */
		await this.send("Page.bringToFront");
		const { data } = await this.send("Page.captureScreenshot",
		    { format: "png" });
		fs.mkdirSync(path.dirname(file), { recursive: true });
		fs.writeFileSync(file, Buffer.from(data, "base64"));
	}

	async close() {
		await this.browser.send("Target.closeTarget",
		    { targetId: this.targetId });
	}
}

const TYPES = { ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript",
    ".css": "text/css", ".png": "image/png" };

/* Serves files of dir (and extra routes: path -> text) on 127.0.0.1. */
export async function serve(dir, extra = {}) {
	const server = http.createServer((req, res) => {
		const u = new URL(req.url, "http://x");
		let body = extra[u.pathname];
		let type = TYPES[path.extname(u.pathname)] ?? "text/plain";
		if (body === undefined) {
			const file = path.join(dir, path.normalize(u.pathname));
			if (!file.startsWith(dir) || !fs.existsSync(file) ||
			    !fs.statSync(file).isFile()) {
				res.writeHead(404).end("not found\n");
				return;
			}
			body = fs.readFileSync(file);
		}
		res.writeHead(200, { "Content-Type": type,
		    "Cache-Control": "no-store" }).end(body);
	});
	await new Promise((r) => server.listen(0, "127.0.0.1", r));
	server.origin = `http://127.0.0.1:${server.address().port}`;
	return server;
}
