// Paginated subscriptions against the real daemons: pages loaded with
// loadMore while another client inserts and deletes never overlap and
// never leave a gap, and survive a gateway restart (re-added with their
// pinned ends).

import Foundation
import Glibc
import Testing
@testable import Tinyvex

struct PageQuery: Encodable, Sendable {
	var table: String
}

@Suite("live pagination")
struct LivePaginationTests {
	/// The pages' ids equal a full read of the table, in order, once the
	/// writes have settled.
	static func settled(_ page: TinyvexPagination<Message>, _ reader: TinyvexClient) async -> Bool {
		await eventually(20) {
			guard let all: [Message] = try? await reader.query("db/query", args: PageQuery(table: "p")) else {
				return false
			}
			return page.results.map(\._id) == all.map(\._id)
		}
	}

	@Test func loadMoreWhileAnotherClientWrites() async throws {
		try await withStack { st in
			let reader = st.client()
			let writer = st.client()
			defer {
				reader.close()
				writer.close()
			}
			var ids: [String] = []
			for b in 0..<3 {
				let ops: [JSONValue] = (0..<10).map { i in
					["op": "insert", "table": "p", "doc": ["text": .string("seed \(b * 10 + i)")]]
				}
				let r: [String] = try await writer.mutation("db/batch", args: ["ops": .array(ops)] as JSONValue)
				ids += r
			}
			let page = reader.paginate(args: PageQuery(table: "p"), initialNumItems: 7, yielding: Message.self)
			defer { page.cancel() }
			let states = Collector(page)
			#expect(await states.wait { $0.last?.status == .canLoadMore && $0.last?.results.count == 7 })

			// Another client inserts and deletes while pages are added.
			let churn = Task { () async throws -> [String] in
				var rng = SeededRandom(seed: 4242)
				var live = ids
				for step in 0..<60 {
					if live.isEmpty || rng.next() % 3 != 0 {
						let id: String = try await writer.mutation("db/insert",
						    args: Insert(table: "p", doc: NewMessage(text: "churn \(step)")))
						live.append(id)
					} else {
						let id = live.remove(at: Int(rng.next() % UInt64(live.count)))
						try await writer.mutation("db/delete", args: ["table": "p", "id": .string(id)] as JSONValue)
					}
				}
				return live
			}
			var loads = 0
			while loads < 40 {
				let status = await eventually { page.status != .loading } ? page.status : .loading
				if status == .exhausted {
					break
				}
				if page.loadMore(5) {
					loads += 1
				}
				try await Task.sleep(nanoseconds: 10_000_000)
			}
			_ = try await churn.value
			#expect(loads >= 4)
			#expect(await Self.settled(page, reader), "pages equal the table: no gap, no duplicate")
			#expect(page.status == .exhausted)
			// No state ever held a document twice.
			#expect(states.all.allSatisfy { Set($0.results.map(\._id)).count == $0.results.count })
			#expect(states.all.allSatisfy { $0.error == nil })

			// A document added after the end lands on the last page.
			let _: String = try await writer.mutation("db/insert", args: Insert(table: "p", doc: NewMessage(text: "tail")))
			#expect(await Self.settled(page, reader))
			#expect(page.results.last?.text == "tail")
			// Cancelling removes every page's query.
			#expect(reader.core.inspect.localQueries >= 5)
			page.cancel()
			#expect(await eventually { reader.core.inspect.localQueries == 0 })
		}
	}

	@Test func pagesSurviveAGatewayRestart() async throws {
		try await withStack { st in
			let c = st.client()
			defer { c.close() }
			for i in 0..<12 {
				let _: String = try await c.mutation("db/insert", args: Insert(table: "p", doc: NewMessage(text: "\(i)")))
			}
			let page = c.paginate(args: PageQuery(table: "p"), initialNumItems: 5, yielding: Message.self)
			defer { page.cancel() }
			#expect(await eventually { page.status == .canLoadMore })
			#expect(page.loadMore(5))
			#expect(await eventually { page.results.count == 10 && page.status == .canLoadMore })
			let states = Collector(c.connectionStates)
			st.killGateway()
			#expect(await states.wait {
				if case .disconnected? = $0.last { return true }
				return false
			})
			// Written while the client is away: inside the first page.
			let other = TinyvexClient(url: st.url)
			defer { other.close() }
			try st.startGateway()
			let all: [Message] = try await other.query("db/query", args: PageQuery(table: "p"))
			try await other.mutation("db/delete", args: ["table": "p", "id": .string(all[1]._id)] as JSONValue)
			#expect(await states.wait { $0.last == .connected })
			// Re-added with their ends: still two pages, 4 + 5 documents, the
			// next page starting where it did.
			#expect(await eventually { page.results.map(\.text) == ["0", "2", "3", "4", "5", "6", "7", "8", "9"] })
			#expect(page.status == .canLoadMore)
			#expect(page.loadMore(10))
			#expect(await eventually { page.results.count == 11 && page.status == .exhausted })
		}
	}
}
