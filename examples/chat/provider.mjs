// The demo provider of the chat example: serves the action demo/reply,
// which streams an answer into the thread token by token, each token one
// mutation that every open window receives as it happens.
//   node --experimental-websocket examples/chat/provider.mjs [ws://127.0.0.1:7878/sync]
import { TinyvexClient } from "../../clients/js/tinyvex.js";

const TOKEN_DELAY_MS = Number(process.env.TOKEN_DELAY_MS ?? 80); /* between tokens */
const url = process.argv[2] ?? "ws://127.0.0.1:7878/sync";
const client = new TinyvexClient(url, { logger: { warn: console.warn,
    error: console.error } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function answer(text) {
	if (!text)
		return "Nobody has said anything here yet. Write a message and " +
		    "press Reply again.";
	const quote = text.length > 60 ? text.slice(0, 57) + "..." : text;
	const words = text.split(/\s+/).filter(Boolean).length;
	return `You wrote "${quote}" (${words} word${words === 1 ? "" : "s"}). ` +
	    "This reply is written by a provider process: each token is a " +
	    "db/patch on one message, and every open window receives it " +
	    "as it is committed.";
}

client.provide("demo/reply", async ({ threadId }, { signal }) => {
	if (typeof threadId !== "string")
		throw new Error("demo/reply needs a threadId");
	const { value: recent } = await client.query("db/query", {
	    table: "messages", index: "by_thread",
	    range: [["threadId", "eq", threadId]], order: "desc", limit: 20 });
	const last = recent.find((m) => m.role !== "assistant");
	const tokens = answer(last?.text).match(/\S+\s*/g);
	const { value: id } = await client.mutation("db/insert", {
	    table: "messages", doc: { threadId, author: "demo/reply",
	    role: "assistant", text: "", streaming: true } });
	let text = "";
	for (const tok of tokens) {
		if (signal.aborted)
			break;
		await sleep(TOKEN_DELAY_MS);
		text += tok;
		await client.mutation("db/patch", { table: "messages", id,
		    set: { text } });
	}
	await client.mutation("db/patch", { table: "messages", id,
	    set: { streaming: false } });
	return { messageId: id, tokens: tokens.length };
});

let status = null;
client.onConnectionState((s) => {
	if (s.status !== status && (s.status === "connected" || status ===
	    "connected"))
		console.error(`provider: ${s.status}` + (s.status === "connected" ?
		    `, serving demo/reply on ${url}` : ""));
	status = s.status;
});

/* A first thread, so that a new user sees something to click. */
const { value: threads } = await client.query("db/query",
    { table: "threads", limit: 1 });
if (threads.length === 0) {
	const { value: threadId } = await client.mutation("db/insert",
	    { table: "threads", doc: { title: "Welcome" } });
	await client.mutation("db/insert", { table: "messages", doc: {
	    threadId, author: "tinyvex", role: "user",
	    text: "Open this page in two windows, write in one, and watch the " +
	    "other. Press Reply for a streamed answer." } });
}
