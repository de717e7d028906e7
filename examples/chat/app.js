// The chat example: threads on the left, the selected thread's messages
// (newest first from the server, one page at a time, shown oldest at the
// top), a send box, and a reply streamed by the demo/reply action.
import { TinyvexClient } from "./tinyvex.js";

const PAGE_SIZE = 20;		/* messages per page */
const $ = (id) => document.getElementById(id);

const url = (location.protocol === "https:" ? "wss://" : "ws://") +
    location.host + "/sync";
const client = new TinyvexClient(url);
window.tinyvex = client;	/* for the console */

const state = { threads: [], selected: null, pager: null, atBottom: true };

/* --- connection indicator ----------------------------------------------- */

client.onConnectionState((s) => {
	$("conn").className = "conn " + s.status;
	let text = s.status;
	if (s.status === "disconnected" && s.nextRetryAt !== null)
		text += `, retrying in ${Math.max(0, Math.round((s.nextRetryAt -
		    Date.now()) / 100) / 10)} s`;
	if (s.connectionCount > 0 && s.status === "connected")
		text += ` (reconnected ${s.connectionCount}\u00d7)`;
	$("conn-text").textContent = text;
	$("conn").title = s.lastCloseReason ? "last close: " +
	    s.lastCloseReason : "connection";
});

/* --- threads -------------------------------------------------------------- */

client.subscribe("db/query", { table: "threads", order: "desc" }, (threads) => {
	state.threads = threads;
	renderThreads();
	const want = new URLSearchParams(location.hash.slice(1)).get("thread");
	if (state.selected === null || !threads.some((t) => t._id ===
	    state.selected))
		select(threads.find((t) => t._id === want)?._id ??
		    threads[0]?._id ?? null);
}, showError);

function renderThreads() {
	const ul = $("threads");
	ul.replaceChildren(...state.threads.map((t) => {
		const li = document.createElement("li");
		li.textContent = t.title;
		li.dataset.id = t._id;
		li.classList.toggle("selected", t._id === state.selected);
		li.onclick = () => select(t._id);
		return li;
	}));
}

$("new-thread").onsubmit = async (ev) => {
	ev.preventDefault();
	const title = $("thread-title").value.trim();
	if (!title)
		return;
	$("thread-title").value = "";
	try {
		const { value: id } = await client.mutation("db/insert",
		    { table: "threads", doc: { title } });
		select(id);
	} catch (e) {
		showError(e);
	}
};

/* --- messages ------------------------------------------------------------- */

function select(id) {
	if (id === state.selected && state.pager !== null)
		return;
	state.selected = id;
	state.pager?.unsubscribe();
	state.pager = null;
	$("list").replaceChildren();
	$("load-more").hidden = true;
	renderThreads();
	const t = state.threads.find((x) => x._id === id);
	$("thread-name").textContent = t ? t.title : "No thread";
	if (id === null)
		return;
	history.replaceState(null, "", "#thread=" + id);
	state.atBottom = true;
	state.pager = client.paginate({ table: "messages", index: "by_thread",
	    range: [["threadId", "eq", id]], order: "desc" },
	    { initialNumItems: PAGE_SIZE }, renderMessages, showError);
}

function renderMessages({ results, status }) {
	const box = $("messages");
	const list = $("list");
	const old = new Map([...list.children].map((li) => [li.dataset.id, li]));
	const me = $("author").value;
	const items = results.slice().reverse().map((m) => {
		const li = old.get(m._id) ?? document.createElement("li");
		li.dataset.id = m._id;
		li.className = [m.role === "assistant" ? "assistant" : "",
		    m.author === me && m.role !== "assistant" ? "mine" : "",
		    m.streaming ? "streaming" : ""].join(" ").trim();
		if (li.childElementCount !== 2) {
			const who = document.createElement("div");
			who.className = "who";
			const text = document.createElement("div");
			text.className = "text";
			li.replaceChildren(who, text);
		}
		li.firstChild.textContent = m.author;
		if (li.lastChild.textContent !== m.text)
			li.lastChild.textContent = m.text;
		return li;
	});
	const wasBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
	const firstBefore = list.firstElementChild;
	const offset = firstBefore ? firstBefore.offsetTop - box.scrollTop : 0;
	list.replaceChildren(...items);
	$("load-more").hidden = status !== "canLoadMore";
	if (wasBottom || state.atBottom) {
		box.scrollTop = box.scrollHeight;
		state.atBottom = false;
	} else if (firstBefore && firstBefore.isConnected)
		box.scrollTop = firstBefore.offsetTop - offset;
}

$("load-more").onclick = () => state.pager?.loadMore(PAGE_SIZE);

$("composer").onsubmit = async (ev) => {
	ev.preventDefault();
	const text = $("text").value.trim();
	if (!text || state.selected === null)
		return;
	$("text").value = "";
	localStorage.setItem("tinyvex-chat-author", $("author").value);
	try {
		await client.mutation("db/insert", { table: "messages", doc: {
		    threadId: state.selected, author: $("author").value || "guest",
		    role: "user", text } });
		$("status").textContent = "";
	} catch (e) {
		showError(e);
	}
};

$("reply").onclick = async () => {
	if (state.selected === null)
		return;
	$("reply").disabled = true;
	$("status").textContent = "";
	try {
		await client.action("demo/reply", { threadId: state.selected });
	} catch (e) {
		showError(e.code === -32004 ? new Error("no provider serves " +
		    "demo/reply: run node --experimental-websocket " +
		    "examples/chat/provider.mjs") : e);
	} finally {
		$("reply").disabled = false;
	}
};

function showError(e) {
	$("status").textContent = (e.kind ? e.kind + ": " : "") + e.message;
}

$("author").value = localStorage.getItem("tinyvex-chat-author") ??
    "guest-" + Math.floor(Math.random() * 9000 + 1000);
