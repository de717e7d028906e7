// The client against the real daemons: each test starts its own writerd
// and gatewayd (Stack) and talks to them through the package's own
// WebSocket transport.

import Foundation
import Glibc
import Testing
@testable import Tinyvex

struct Message: Codable, Sendable, Equatable {
	var _id: String
	var text: String
	var n: Double?
}

struct NewMessage: Codable, Sendable {
	var text: String
	var n: Double?
}

struct Query: Encodable, Sendable {
	var table: String
	var limit: Int?
}

struct Insert<D: Encodable & Sendable>: Encodable, Sendable {
	var table: String
	var doc: D
}

/// Runs `body` with a fresh stack, stopping it whatever happens.
func withStack(conf: String? = nil, _ body: (Stack) async throws -> Void) async throws {
	let st = try Stack(conf: conf)
	defer {
		st.stop()
	}
	try await body(st)
}

@Suite("live")
struct LiveTests {
	@Test func subscribeMutateReadYourWrites() async throws {
		try await withStack { st in
			let c = st.client()
			defer { c.close() }
			// The sink sees results synchronously, as the client gets them:
			// the write must be there before the mutation returns.
			let seen = Collector<[Message]>(c.subscribe(to: "db/query", args: Query(table: "messages"),
			    yielding: [Message].self).compactMap { try? $0.get() })
			let sync = SyncSink()
			let (q, key) = c.core.subscribe(udfPath: "db/query", args: ["table": "messages"], sink: sync.sink)
			defer { c.core.unsubscribe(queryId: q, key: key) }
			#expect(await seen.wait { $0.last == [] })
			for i in 0..<5 {
				let r = try await c.mutationResult("db/insert",
				    args: Insert(table: "messages", doc: NewMessage(text: "hello \(i)")), returning: String.self)
				let docs = sync.latest?.arrayValue ?? []
				#expect(docs.contains { $0["_id"]?.stringValue == r.value }, "write \(i) visible before its answer")
				#expect(sync.latestTs >= r.ts)
			}
			#expect(await seen.wait { $0.last?.map(\.text) == (0..<5).map { "hello \($0)" } })
			let one: [Message] = try await c.query("db/query", args: Query(table: "messages", limit: 1))
			#expect(one.count == 1 && one.first?.text == "hello 0")
		}
	}

	@Test func sharedIdenticalSubscriptions() async throws {
		try await withStack { st in
			let c = st.client()
			defer { c.close() }
			let a = Collector(c.subscribe(to: "db/query", args: Query(table: "t"), yielding: [Message].self))
			let _: String = try await c.mutation("db/insert", args: Insert(table: "t", doc: NewMessage(text: "x")))
			#expect(await a.wait { $0.last.flatMap { try? $0.get() }?.count == 1 })
			// Same udfPath and args, keys in another order: one query.
			let b = Collector(c.subscribe(to: "db/query", args: ["table": "t"] as JSONValue,
			    yielding: [Message].self))
			let b2 = Collector(c.subscribe(to: "db/query", args: Query(table: "t"), yielding: [Message].self))
			// A new subscriber gets the cached value first.
			#expect(await b2.wait { $0.first.flatMap { try? $0.get() }?.count == 1 })
			#expect(c.core.inspect.localQueries == 1)
			let _: String = try await c.mutation("db/insert", args: Insert(table: "t", doc: NewMessage(text: "y")))
			#expect(await a.wait { $0.last.flatMap { try? $0.get() }?.count == 2 })
			#expect(await b2.wait { $0.last.flatMap { try? $0.get() }?.count == 2 })
			#expect(await b.wait { $0.last.flatMap { try? $0.get() }?.count == 2 })
			a.stop()
			b.stop()
			#expect(c.core.inspect.localQueries == 1)
			let _: String = try await c.mutation("db/insert", args: Insert(table: "t", doc: NewMessage(text: "z")))
			#expect(await b2.wait { $0.last.flatMap { try? $0.get() }?.count == 3 })
			b2.stop()
			#expect(await eventually { c.core.inspect.localQueries == 0 })
		}
	}

	@Test func undecodableDocumentYieldsDecodingThenRecovers() async throws {
		try await withStack { st in
			let c = st.client()
			defer { c.close() }
			let s = Collector(c.subscribe(to: "db/query", args: Query(table: "m"), yielding: [Message].self))
			let id: String = try await c.mutation("db/insert",
			    args: ["table": "m", "doc": ["text": 42]] as JSONValue)
			#expect(await s.wait {
				if case .failure(.decoding)? = $0.last { return true }
				return false
			})
			try await c.mutation("db/patch", args: ["table": "m", "id": .string(id), "set": ["text": "fine"]] as JSONValue)
			#expect(await s.wait { (try? $0.last?.get())?.map(\.text) == ["fine"] })
		}
	}

	@Test func queryFailedIsAValueAndRecovers() async throws {
		try await withStack(conf: "query_max_rows 3\n") { st in
			let c = st.client()
			defer { c.close() }
			let s = Collector(c.subscribe(to: "db/query", args: Query(table: "f"), yielding: [Message].self))
			var ids: [String] = []
			for i in 0..<4 {
				ids.append(try await c.mutation("db/insert", args: Insert(table: "f", doc: NewMessage(text: "\(i)"))))
			}
			#expect(await s.wait {
				if case .failure(.server(code: -32006, kind: "TooLarge", _, _))? = $0.last { return true }
				return false
			})
			try await c.mutation("db/delete", args: ["table": "f", "id": .string(ids[0])] as JSONValue)
			#expect(await s.wait { (try? $0.last?.get())?.map(\.text) == ["1", "2", "3"] })
			// An unknown index fails the same way, and the connection lives on.
			let bad = Collector(c.subscribe(to: "db/query", args: ["table": "f", "index": "nope"] as JSONValue,
			    yielding: [Message].self))
			#expect(await bad.wait {
				if case .failure(.server(code: -32004, kind: "NotFound", _, _))? = $0.last { return true }
				return false
			})
			do throws(TinyvexError) {
				let _: String = try await c.mutation("db/insert", args: ["table": "f", "doc": ["_x": 1]] as JSONValue)
				Issue.record("a reserved field was accepted")
			} catch {
				#expect(error.kind == "ValidationError" && error.code == -32003)
			}
		}
	}

	@Test func gatewayRestartResumes() async throws {
		try await withStack { st in
			let c = st.client()
			defer { c.close() }
			let states = Collector(c.connectionStates)
			let s = Collector(c.subscribe(to: "db/query", args: Query(table: "r"), yielding: [Message].self))
			let _: String = try await c.mutation("db/insert", args: Insert(table: "r", doc: NewMessage(text: "before")))
			#expect(await s.wait { (try? $0.last?.get())?.map(\.text) == ["before"] })
			#expect(await states.wait { $0.last == .connected })

			st.killGateway()
			#expect(await states.wait {
				if case .disconnected? = $0.last { return true }
				return false
			})
			// Issued while there is no connection: queued, sent once.
			let m = Task { () async throws(TinyvexError) -> String in
				try await c.mutation("db/insert", args: Insert(table: "r", doc: NewMessage(text: "while down")))
			}
			try await Task.sleep(nanoseconds: 300_000_000)
			try st.startGateway()
			let id = try await m.value
			#expect(!id.isEmpty)
			#expect(await s.wait { (try? $0.last?.get())?.map(\.text) == ["before", "while down"] })
			let all: [Message] = try await c.query("db/query", args: Query(table: "r"))
			#expect(all.filter { $0.text == "while down" }.count == 1)

			let seq = states.all
			let firstDown = seq.firstIndex { if case .disconnected = $0 { return true }; return false }
			#expect(firstDown != nil)
			if let firstDown {
				#expect(seq[..<firstDown].contains(.connected))
				#expect(seq[firstDown...].contains(.connecting))
				#expect(seq.last == .connected)
			}
			#expect(c.stats.reconnects >= 1)
			// A subscription made now still works on the new connection.
			let later = Collector(c.subscribe(to: "db/query", args: Query(table: "r", limit: 1), yielding: [Message].self))
			#expect(await later.wait { (try? $0.last?.get())?.map(\.text) == ["before"] })
			if c.core.inspect.features.contains("resume") {
				#expect(c.core.inspect.unchanged >= 1, "the re-added query named the hash it held")
			}
		}
	}

	@Test func tokenOnTheUpgradeAndInConnect() async throws {
		let token = "swift-client-token-0123456789"
		let path = FileManager.default.temporaryDirectory
		    .appendingPathComponent("tinyvex-swift-token-\(UUID().uuidString)").path
		try token.write(toFile: path, atomically: true, encoding: .utf8)
		defer { try? FileManager.default.removeItem(atPath: path) }
		try await withStack(conf: "token_file \(path)\n") { st in
			let good = st.client(TinyvexOptions(token: token))
			let bad = st.client(TinyvexOptions(token: "not-the-token-0123456789"))
			defer {
				good.close()
				bad.close()
			}
			let _: String = try await good.mutation("db/insert", args: Insert(table: "a", doc: NewMessage(text: "in")))
			let states = Collector(bad.connectionStates)
			#expect(await states.wait {
				$0.contains {
					if case .disconnected(let reason, _) = $0 { return reason.contains("403") }
					return false
				}
			})
			#expect(bad.connectionState != .connected)
		}
	}

	@Test func mutationRetriedWhileTheWriterIsDown() async throws {
		try await withStack { st in
			let c = st.client()
			defer { c.close() }
			let s = Collector(c.subscribe(to: "db/query", args: Query(table: "w"), yielding: [Message].self))
			let _: String = try await c.mutation("db/insert", args: Insert(table: "w", doc: NewMessage(text: "1")))
			st.killWriter()
			#expect(await eventually { Stack.health(st.port)?.contains("\"writer\":false") == true })
			// Answered Unavailable while the writer is away: the library
			// retries with the same requestId until it is back.
			let m = Task { () async throws(TinyvexError) -> String in
				try await c.mutation("db/insert", args: Insert(table: "w", doc: NewMessage(text: "2")))
			}
			try await Task.sleep(nanoseconds: 500_000_000)
			#expect(c.stats.mutationsInFlight == 1)
			try st.startWriter()
			let id = try await m.value
			#expect(!id.isEmpty)
			#expect(await s.wait { (try? $0.last?.get())?.map(\.text) == ["1", "2"] })
			#expect(c.stats.mutationsInFlight == 0)
		}
	}

	@Test func deadConnectionDetected() async throws {
		try await withStack { st in
			let c = st.client(TinyvexOptions(livenessTimeout: 2))
			defer { c.close() }
			let states = Collector(c.connectionStates)
			#expect(await states.wait { $0.last == .connected })
			st.signalGateway(SIGSTOP)
			var down = false
			for _ in 0..<750 where !down {
				down = states.all.contains { deadline($0) }
				try await Task.sleep(nanoseconds: 20_000_000)
			}
			st.signalGateway(SIGCONT)
			#expect(down)
			#expect(await states.wait { $0.last == .connected })
			let _: String = try await c.mutation("db/insert", args: Insert(table: "z", doc: NewMessage(text: "ok")))
		}
	}

	@Test func threeMegabyteResultArrivesInChunks() async throws {
		try await withStack(conf: "chunk_bytes 64k\n") { st in
			let c = st.client()
			defer { c.close() }
			let big = String(repeating: "abcdefghij", count: 10_000)	// 100 kB
			for b in 0..<6 {
				let ops: [JSONValue] = (0..<5).map { i in
					["op": "insert", "table": "big", "doc": ["text": .string(big), "n": .number(Double(b * 5 + i))]]
				}
				try await c.mutation("db/batch", args: ["ops": .array(ops)] as JSONValue)
			}
			let s = Collector(c.subscribe(to: "db/query", args: Query(table: "big"), yielding: [Message].self))
			#expect(await s.wait(60) { (try? $0.last?.get())?.count == 30 })
			let docs = (try? s.last?.get()) ?? []
			// A batch commits at one ts: its documents are in id order.
			#expect(docs.map { $0.n ?? -1 }.sorted() == (0..<30).map(Double.init))
			#expect(docs.allSatisfy { $0.text == big })
			#expect(c.core.inspect.chunked >= 1, "the result came in chunks")
		}
	}

	@Test func diffsEqualFullResults() async throws {
		try await withStack { st in
			let withDiff = st.client()
			var o = TinyvexOptions()
			o.features = []
			let plain = st.client(o)
			defer {
				withDiff.close()
				plain.close()
			}
			let args: JSONValue = ["table": "d", "limit": 20]
			let a = SyncSink()
			let b = SyncSink()
			let (qa, ka) = withDiff.core.subscribe(udfPath: "db/query", args: args, sink: a.sink)
			let (qb, kb) = plain.core.subscribe(udfPath: "db/query", args: args, sink: b.sink)
			defer {
				withDiff.core.unsubscribe(queryId: qa, key: ka)
				plain.core.unsubscribe(queryId: qb, key: kb)
			}
			var rng = SeededRandom(seed: 20261207)
			var ids: [String] = []
			for step in 0..<120 {
				let r: Timestamped<JSONValue>
				let roll = rng.next() % 10
				if ids.isEmpty || roll < 3 {
					r = try await withDiff.mutationResult("db/insert", args: ["table": "d",
					    "doc": ["text": .string("m\(step)"), "n": .number(Double(rng.next() % 100))]] as JSONValue)
					if let id = r.value.stringValue {
						ids.append(id)
					}
				} else {
					let id = ids[Int(rng.next() % UInt64(ids.count))]
					switch roll {
					case 3...5:
						r = try await withDiff.mutationResult("db/patch", args: ["table": "d", "id": .string(id),
						    "set": ["text": .string("m\(step)-\(rng.next() % 1000)")]] as JSONValue)
					case 6, 7:
						r = try await withDiff.mutationResult("db/patch", args: ["table": "d", "id": .string(id),
						    "set": ["n": .number(Double(rng.next() % 100))], "unset": ["extra"]] as JSONValue)
					default:
						r = try await withDiff.mutationResult("db/delete", args: ["table": "d", "id": .string(id)] as JSONValue)
						ids.removeAll { $0 == id }
					}
				}
				_ = r
				// A write of the plain client's own: when it is answered, that
				// client has been sent every change up to it.
				try await plain.mutation("db/insert", args: ["table": "sync", "doc": ["step": .number(Double(step))]] as JSONValue)
				if a.latest != b.latest {
					Issue.record("step \(step): diffed result differs from the full one")
					break
				}
			}
			#expect(a.latest?.arrayValue?.count == min(20, ids.count))
			if withDiff.core.inspect.features.contains("diff") {
				#expect(withDiff.core.inspect.diffs > 0, "the server sent diffs")
				#expect(plain.core.inspect.diffs == 0)
			}
		}
	}
}

/// Whether a state is the loss of a connection found silent.
func deadline(_ s: ConnectionState?) -> Bool {
	guard case .disconnected(let reason, _)? = s else {
		return false
	}
	return reason.contains("no frame")
}

/// A sink that records results as the client delivers them (inside its
/// lock), for checks of ordering.
final class SyncSink: @unchecked Sendable {
	private let lock = NSLock()
	private var value: JSONValue?
	private var ts: Int64 = 0
	private var count = 0

	var sink: QuerySink {
		QuerySink(deliver: { [self] r, ts in
			lock.withLock {
				if case .success(let v) = r {
					value = v
				}
				self.ts = max(self.ts, ts)
				count += 1
			}
		}, finish: {})
	}

	var latest: JSONValue? { lock.withLock { value } }
	var latestTs: Int64 { lock.withLock { ts } }
}

/// xorshift64*: the same mutation stream on every run.
struct SeededRandom {
	var state: UInt64

	init(seed: UInt64) {
		state = seed == 0 ? 1 : seed
	}

	mutating func next() -> UInt64 {
		state ^= state >> 12
		state ^= state << 25
		state ^= state >> 27
		return state &* 2685821657736338717
	}
}
