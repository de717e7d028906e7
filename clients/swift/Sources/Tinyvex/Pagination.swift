// A paginated subscription: one live `db/paginate` query per page, each
// page starting where the one before it ended.  The server pins a page's
// end after its first result, so pages never overlap and never leave a gap
// while documents come and go; after a reconnect each page is re-added
// with that end as `endCursor` (done by the protocol layer).  The results
// are the pages concatenated.

import Foundation

/// Where a paginated subscription stands.
public enum PaginationStatus: Sendable, Equatable {
	/// A page has no result yet.
	case loading
	/// More documents follow the last page: `loadMore` adds a page.
	case canLoadMore
	/// The last page reaches the end of the index.
	case exhausted
}

/// One state of a paginated subscription.
public struct PaginationState<T: Sendable>: Sendable {
	/// Every page's documents, in order.
	public var results: [T]
	public var status: PaginationStatus
	/// The latest error of a page (a failed query, a document that does
	/// not decode), nil when every page is fine.
	public var error: TinyvexError?
}

/// A paginated subscription, from `TinyvexClient.paginate`.  Iterate it
/// (once) for every new state; `results` and `status` give the latest.
public final class TinyvexPagination<T: Decodable & Sendable>: AsyncSequence, @unchecked Sendable {
	public typealias Element = PaginationState<T>

	private struct Page {
		var queryId: Int
		var key: Int
		var value: JSONValue?
		var error: TinyvexError?
	}

	private let core: ClientCore
	private let base: [String: JSONValue]
	private let stream: AsyncStream<PaginationState<T>>
	private let cont: AsyncStream<PaginationState<T>>.Continuation
	private let lock = NSLock()
	// Guarded by `lock`.
	private var pages: [Page] = []
	private var latest: PaginationState<T>
	private var cancelled = false

	init(core: ClientCore, args: JSONValue, initialNumItems: Int) {
		self.core = core
		(stream, cont) = AsyncStream.makeStream(of: PaginationState<T>.self,
		    bufferingPolicy: .bufferingNewest(TinyvexClient.subscriptionBuffer))
		latest = PaginationState(results: [], status: .loading, error: nil)
		guard case .object(let o) = args else {
			base = [:]
			let e = TinyvexError.decoding("paginate args must be an object")
			latest.error = e
			cont.yield(latest)
			cont.finish()
			return
		}
		base = o
		cont.onTermination = { [weak self] _ in
			// Not here: this may run inside the client's lock.
			Task.detached {
				self?.cancel()
			}
		}
		addPage(cursor: nil, numItems: initialNumItems)
	}

	deinit {
		cancel()
	}

	public func makeAsyncIterator() -> AsyncStream<PaginationState<T>>.Iterator {
		stream.makeAsyncIterator()
	}

	/// The documents of every page, as last seen.
	public var results: [T] {
		lock.withLock { latest.results }
	}

	public var status: PaginationStatus {
		lock.withLock { latest.status }
	}

	public var state: PaginationState<T> {
		lock.withLock { latest }
	}

	/// Adds a page of up to `numItems` documents after the last one;
	/// false (nothing done) unless the status is `canLoadMore`.
	@discardableResult
	public func loadMore(_ numItems: Int) -> Bool {
		let cursor: String? = lock.withLock {
			guard !cancelled, latest.status == .canLoadMore, let last = pages.last?.value,
			    last["isDone"]?.boolValue == false else {
				return nil
			}
			return last["continueCursor"]?.stringValue
		}
		guard let cursor else {
			return false
		}
		addPage(cursor: cursor, numItems: numItems)
		return true
	}

	/// Stops every page's subscription and ends the sequence.
	public func cancel() {
		let all: [Page] = lock.withLock {
			if cancelled {
				return []
			}
			cancelled = true
			let all = pages
			pages = []
			return all
		}
		// Not synchronously: this may run (from deinit, or the stream's
		// end) inside the client's lock.
		let core = self.core
		Task.detached {
			for p in all where p.queryId >= 0 {
				core.unsubscribe(queryId: p.queryId, key: p.key)
			}
		}
		cont.finish()
	}

	private func addPage(cursor: String?, numItems: Int) {
		var args = base
		args["numItems"] = .number(Double(numItems))
		args["cursor"] = cursor.map { .string($0) } ?? .null
		let index: Int = lock.withLock {
			pages.append(Page(queryId: -1, key: -1))
			latest.status = .loading
			return pages.count - 1
		}
		// Results may arrive (from another thread) before subscribe
		// returns: they carry the page's index, not its queryId.
		let sink = QuerySink(deliver: { [weak self] r, _ in
			self?.update(page: index, r)
		}, finish: { [weak self] in
			self?.cont.finish()
		})
		let (q, key) = core.subscribe(udfPath: "db/paginate", args: .object(args), sink: sink)
		let orphan: Bool = lock.withLock {
			guard !cancelled, index < pages.count else {
				return true
			}
			pages[index].queryId = q
			pages[index].key = key
			return false
		}
		if orphan {
			core.unsubscribe(queryId: q, key: key)
		}
	}

	private func update(page index: Int, _ r: Result<JSONValue, TinyvexError>) {
		let s: PaginationState<T>? = lock.withLock {
			guard !cancelled, index < pages.count else {
				return nil
			}
			switch r {
			case .success(let v):
				pages[index].value = v
				pages[index].error = nil
			case .failure(let e):
				pages[index].error = e
			}
			latest = compose()
			return latest
		}
		if let s {
			cont.yield(s)
		}
	}

	/// Under `lock`: the pages' documents and the status.
	private func compose() -> PaginationState<T> {
		var results: [T] = []
		var error: TinyvexError?
		var status = PaginationStatus.canLoadMore
		for p in pages {
			if let e = p.error {
				error = e
			}
			guard let v = p.value else {
				status = .loading
				continue
			}
			guard let docs = v["page"]?.arrayValue else {
				error = .invalidResponse("db/paginate result without page")
				continue
			}
			for d in docs {
				do throws(TinyvexError) {
					results.append(try d.decode(T.self))
				} catch let e {
					error = e
				}
			}
		}
		if status != .loading, let last = pages.last?.value, last["isDone"]?.boolValue != false {
			status = .exhausted
		}
		return PaginationState(results: results, status: status, error: error)
	}
}

extension TinyvexClient {
	/// A paginated `db/paginate` subscription: `args` holds `table`,
	/// `index`, `range`, `order` (as for `db/query`); the first page
	/// has up to `initialNumItems` documents, `loadMore(n)` adds one.
	public func paginate<T: Decodable & Sendable>(args: some Encodable & Sendable,
	    initialNumItems: Int, yielding type: T.Type = T.self) -> TinyvexPagination<T> {
		let a: JSONValue
		do {
			a = try JSONValue(encoding: args)
		} catch {
			a = .null
		}
		return TinyvexPagination(core: core, args: a, initialNumItems: initialNumItems)
	}
}
