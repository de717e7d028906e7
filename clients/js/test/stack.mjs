// The real daemons for the tests: writerd and gatewayds on a temporary
// state directory, from $TINYVEX_BUILD.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const BUILD = process.env.TINYVEX_BUILD ??
    path.resolve(here, "../../../build");
const START_TIMEOUT_MS = 10000;	/* a daemon answers by then */

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(pred, timeoutMs = 10000, what = "condition") {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = await pred();
		if (v)
			return v;
		if (Date.now() > end)
			throw new Error(`timed out waiting for ${what}`);
		await sleep(20);
	}
}

export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.listen(0, "127.0.0.1", () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
		s.on("error", reject);
	});
}

async function health(port) {
	try {
		const r = await fetch(`http://127.0.0.1:${port}/healthz`);
		return await r.json();
	} catch {
		return null;
	}
}

export class Stack {
	constructor({ schema, conf } = {}) {
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "tinyvex-js-"));
		this.schema = null;
		this.conf = null;
		if (schema !== undefined) {
			this.schema = path.join(this.dir, "schema.json");
			fs.writeFileSync(this.schema, JSON.stringify(schema));
		}
		if (conf !== undefined) {
			this.conf = path.join(this.dir, "tinyvex.conf");
			fs.writeFileSync(this.conf, conf);
		}
		this.writer = null;
		this.gateways = new Map();	/* port -> child */
	}

	log(name) {
		return fs.openSync(path.join(this.dir, name + ".log"), "a");
	}

	async start() {
		await this.startWriter();
		this.port = await freePort();
		await this.startGateway(this.port);
		return this;
	}

	async startWriter() {
		const args = ["-d", "-r", this.dir];
		if (this.schema)
			args.push("-s", this.schema);
		if (this.conf)
			args.push("-f", this.conf);
		this.writer = spawn(path.join(BUILD, "writerd/writerd"), args,
		    { stdio: ["ignore", "ignore", this.log("writerd")] });
		const sock = path.join(this.dir, "control.sock");
		await waitFor(() => fs.existsSync(sock) ||
		    this.writer.exitCode !== null, START_TIMEOUT_MS, "writerd");
		if (this.writer.exitCode !== null)
			throw new Error("writerd exited " + this.writer.exitCode);
	}

	async startGateway(port = this.port, extra = []) {
		const args = ["-d", "-r", this.dir, "-l", `127.0.0.1:${port}`];
		if (this.conf)
			args.push("-f", this.conf);
		const p = spawn(path.join(BUILD, "gatewayd/gatewayd"),
		    [...args, ...extra],
		    { stdio: ["ignore", "ignore", this.log(`gatewayd-${port}`)] });
		this.gateways.set(port, p);
		await waitFor(async () => p.exitCode !== null ||
		    (await health(port))?.writer === true, START_TIMEOUT_MS,
		    "gatewayd");
		if (p.exitCode !== null)
			throw new Error("gatewayd exited " + p.exitCode);
		return p;
	}

	url(port = this.port) {
		return `ws://127.0.0.1:${port}/sync`;
	}

	async killGateway(port = this.port, signal = "SIGKILL") {
		const p = this.gateways.get(port);
		this.gateways.delete(port);
		if (p.exitCode === null) {
			const done = new Promise((r) => p.once("exit", r));
			p.kill(signal);
			await done;
		}
	}

	async stop() {
		const procs = [...this.gateways.values()];
		if (this.writer)
			procs.push(this.writer);
		this.gateways.clear();
		await Promise.all(procs.map((p) => {
			if (p.exitCode !== null || p.signalCode !== null)
				return null;
			const done = new Promise((r) => p.once("exit", r));
			p.kill("SIGTERM");
			const t = setTimeout(() => p.kill("SIGKILL"), 10000);
			return done.then(() => clearTimeout(t));
		}));
		this.writer = null;
		if (!process.env.TINYVEX_KEEP)
			fs.rmSync(this.dir, { recursive: true, force: true });
	}
}

/* One JSON-RPC call on a fresh connection, after connect: the answer
 * message ({result} or {error}). */
export async function rawCall(url, method, params) {
	const ws = new WebSocket(url, "tinyvex.v1");
	const answers = new Map();
	let wake = () => {};
	ws.onmessage = (ev) => {
		const m = JSON.parse(ev.data);
		if (m.id !== undefined)
			answers.set(m.id, m);
		wake();
	};
	await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
	const call = async (id, meth, p) => {
		ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: meth, params: p }));
		while (!answers.has(id))
			await new Promise((r) => { wake = r; });
		return answers.get(id);
	};
	try {
		await call(1, "tinyvex/connect", { sessionId: "probe" });
		return await call(2, method, params);
	} finally {
		ws.close();
	}
}

/* Whether the gateway knows a method (not MethodNotFound). */
export async function hasMethod(url, method, params = {}) {
	const m = await rawCall(url, method, params);
	return m.error?.code !== -32601;
}
