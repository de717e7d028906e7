// Types of tinyvex.js, the Tinyvex client (written by hand; the module
// has no build step).

export type Json = null | boolean | number | string | Json[] |
    { [key: string]: Json };
export type Args = { [key: string]: Json | undefined };

/** A document as stored: the app's fields plus _id and _creationTime. */
export interface Doc {
	_id: string;
	_creationTime: number;
	[field: string]: Json;
}

export declare const PROTOCOL: "tinyvex.v1";
export declare const FEATURES: readonly string[];
export declare const BACKOFF_INITIAL_MS: number;
export declare const BACKOFF_MAX_MS: number;
export declare const DEAD_AFTER_MS: number;
export declare const MUTATION_DEADLINE_MS: number;

export declare const ErrorCode: {
	readonly ParseError: -32700;
	readonly InvalidRequest: -32600;
	readonly MethodNotFound: -32601;
	readonly InvalidParams: -32602;
	readonly InternalError: -32603;
	readonly NotConnected: -32001;
	readonly BaseVersionMismatch: -32002;
	readonly ValidationError: -32003;
	readonly NotFound: -32004;
	readonly Conflict: -32005;
	readonly TooLarge: -32006;
	readonly Overloaded: -32007;
	readonly Unavailable: -32008;
	readonly Unauthorized: -32009;
	readonly OutOfRetention: -32010;
	readonly ActionFailed: -32011;
};

/** Every failure is one of these: the server's code, kind, message and
 * data (kind "ProtocolError" for a broken frame sequence, found by the
 * library). */
export declare class TinyvexError extends Error {
	constructor(code: number, kind: string, message: string,
	    data?: { kind: string; [key: string]: unknown });
	readonly code: number;
	readonly kind: string;
	readonly data: { kind: string; outcome?: "unknown"; [key: string]: unknown };
	static fromRpc(err: unknown): TinyvexError;
	static fromQueryFailed(err: unknown): TinyvexError;
	static connectionLost(what: string): TinyvexError;
}

export type ConnectionStatus = "connecting" | "connected" | "disconnected" |
    "closed";

export interface ConnectionState {
	status: ConnectionStatus;
	/** Reconnect attempts since the last fully resumed connection. */
	retries: number;
	/** Connections this client opened before the current one. */
	connectionCount: number;
	inflightMutations: number;
	inflightActions: number;
	lastCloseReason: string | null;
	/** When disconnected: the time (ms since the epoch) of the next try. */
	nextRetryAt: number | null;
}

export interface Logger {
	debug?(...args: unknown[]): void;
	info?(...args: unknown[]): void;
	warn?(...args: unknown[]): void;
	error?(...args: unknown[]): void;
}

export interface ClientOptions {
	/** A WebSocket constructor; default globalThis.WebSocket. */
	WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
	/** Sent as `token` in tinyvex/connect. */
	token?: string;
	/** Sent as `token` in tinyvex/provide (the gateway's provider_token). */
	providerToken?: string;
	/** Scopes idempotency of mutations; random by default. */
	sessionId?: string;
	/** `true` logs to the console; default silent. */
	logger?: Logger | boolean;
	/** How long a mutation answered Unavailable/Overloaded is retried
	 * (default 60000 ms). */
	mutationDeadlineMs?: number;
	/** No frame for this long is a dead connection (default 45000 ms). */
	deadAfterMs?: number;
}

export interface Update {
	/** The ts the value is consistent at (microseconds). */
	ts: number;
}

export type PageStatus = "loading" | "canLoadMore" | "exhausted";

export interface Pager<T = Doc> {
	/** Adds a page of n more items; false when none can follow now. */
	loadMore(n: number): boolean;
	unsubscribe(): void;
	readonly results: T[];
	readonly status: PageStatus;
}

export interface PaginateArgs {
	table: string;
	index?: string;
	range?: [string, "eq" | "gt" | "gte" | "lt" | "lte", Json][];
	order?: "asc" | "desc";
}

export interface CallContext {
	callId: string;
	/** Aborted when the caller goes away, the call times out, or this
	 * connection is lost. */
	signal: AbortSignal;
	udfPath: string;
	sessionId?: string;
}

export interface Stats {
	transitions: number;
	chunks: number;
	queryUpdated: number;
	queryDiff: number;
	queryUnchanged: number;
	queryFailed: number;
	protocolErrors: number;
	mutationsSent: number;
	actionsSent: number;
	callsServed: number;
	/** The features the gateway accepted ("diff", "resume"). */
	features: string[];
	queries: number;
	maxObservedTs: number;
	gatewayId: string | null;
}

export declare class TinyvexClient {
	constructor(url: string, options?: ClientOptions);
	readonly sessionId: string;
	subscribe<T = Json>(udfPath: string, args: Args,
	    onUpdate: (value: T, info: Update) => void,
	    onError?: (error: TinyvexError) => void): () => void;
	mutation<T = Json>(udfPath: string, args: Args):
	    Promise<{ value: T; ts: number }>;
	query<T = Json>(udfPath: string, args: Args):
	    Promise<{ value: T; ts: number }>;
	action<T = Json>(udfPath: string, args: Args): Promise<T>;
	paginate<T = Doc>(args: PaginateArgs, options: { initialNumItems: number },
	    onUpdate: (page: { results: T[]; status: PageStatus }) => void,
	    onError?: (error: TinyvexError) => void): Pager<T>;
	provide(nameOrPattern: string,
	    handler: (args: Args, context: CallContext) => unknown):
	    () => void;
	onConnectionState(listener: (state: ConnectionState) => void):
	    () => void;
	connectionState(): ConnectionState;
	stats(): Stats;
	reconnect(): void;
	close(): void;
}

/** The I/O-free protocol state machine the client is built on. */
export declare class SyncEngine {
	constructor(options: {
		io: { send(text: string): void; reset(reason: string): void };
		sessionId?: string;
		token?: string;
		providerToken?: string;
		logger?: Logger | boolean;
		mutationDeadlineMs?: number;
		clock?: {
			now(): number;
			setTimeout(f: () => void, ms: number): unknown;
			clearTimeout(t: unknown): void;
			random(): number;
		};
		onState?: (state: ConnectionState) => void;
	});
	onConnecting(): void;
	onOpen(): void;
	onFrame(text: string): void;
	/** Returns the delay before the next attempt, in ms. */
	onClose(reason: string): number | null;
	close(): void;
	state(): ConnectionState;
	stats(): Stats;
	subscribe: TinyvexClient["subscribe"];
	mutation: TinyvexClient["mutation"];
	query: TinyvexClient["query"];
	action: TinyvexClient["action"];
	provide: TinyvexClient["provide"];
}

export declare function canonicalJson(value: unknown): string;
export declare function applyDiff<V>(value: V, ops: unknown[],
    fields?: { [key: string]: Json }): V;
export declare function backoffDelay(retries: number,
    random?: () => number): number;
export declare function randomSessionId(): string;
