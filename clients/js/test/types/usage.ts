// The public API as an app uses it, checked against tinyvex.d.ts by
// types.test.mjs (tsc --noEmit --strict).  Nothing here runs.
import { TinyvexClient, TinyvexError } from "../../tinyvex.js";
import type { ConnectionState, Doc, PageStatus } from "../../tinyvex.js";

interface Message extends Doc {
	threadId: string;
	text: string;
}

export async function usage(url: string): Promise<void> {
	const client = new TinyvexClient(url, { token: "t", sessionId: "s",
	    logger: false });
	const unsubscribe: () => void = client.subscribe<Message[]>("db/query",
	    { table: "messages" },
	    (value: Message[], { ts }: { ts: number }) => {
		const first: string | undefined = value[0]?.text;
		void first;
		void ts;
	    },
	    (error: TinyvexError) => {
		const code: number = error.code;
		const kind: string = error.kind;
		const message: string = error.message;
		const outcome: "unknown" | undefined = error.data.outcome;
		void code; void kind; void message; void outcome;
	    });
	const { value: id, ts } = await client.mutation<string>("db/insert",
	    { table: "messages", doc: { threadId: "t1", text: "hi" } });
	const once: { value: Message[]; ts: number } =
	    await client.query<Message[]>("db/query", { table: "messages" });
	const reply: { text: string } = await client.action<{ text: string }>(
	    "agent/reply", { threadId: "t1" });
	const pager = client.paginate<Message>({ table: "messages",
	    index: "by_thread", range: [["threadId", "eq", "t1"]],
	    order: "desc" }, { initialNumItems: 20 },
	    ({ results, status }: { results: Message[]; status: PageStatus }) => {
		void results;
		void status;
	    });
	const more: boolean = pager.loadMore(20);
	pager.unsubscribe();
	const stop: () => void = client.provide("agent/*",
	    async (args, { callId, signal }) => {
		signal.addEventListener("abort", () => undefined);
		return { callId, got: args.threadId ?? null };
	    });
	const off: () => void = client.onConnectionState(
	    (state: ConnectionState) => {
		const s: "connecting" | "connected" | "disconnected" |
		    "closed" = state.status;
		const n: number = state.retries + state.connectionCount +
		    state.inflightMutations + state.inflightActions;
		const why: string | null = state.lastCloseReason;
		void s; void n; void why;
	    });
	const now: ConnectionState = client.connectionState();
	client.reconnect();
	client.close();
	void id; void ts; void once; void reply; void more; void now;
	stop();
	off();
	unsubscribe();
}
