// A Combine publisher per subscription, where Combine exists.  Combine's
// failure ends a publisher for good, so a query error is not sent as a
// failure: the publisher keeps the last good value and goes on when the
// query recovers (use `subscribe` to see errors as values).  It fails
// with `.closed` when the client closes.

#if canImport(Combine)
import Combine
import Foundation

extension TinyvexClient {
	/// Every new result of the query, decoded as `T`.
	public func publisher<T: Decodable & Sendable>(for udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:]),
	    yielding type: T.Type = T.self) -> AnyPublisher<T, TinyvexError> {
		let a: JSONValue
		do {
			a = try JSONValue(encoding: args)
		} catch {
			return Fail(error: error).eraseToAnyPublisher()
		}
		let client = self
		return SubscriptionPublisher<T> {
			client.subscribe(to: udfPath, args: a, yielding: T.self)
		}.eraseToAnyPublisher()
	}
}

struct SubscriptionPublisher<T: Sendable>: Publisher {
	typealias Output = T
	typealias Failure = TinyvexError

	let make: @Sendable () -> AsyncStream<Result<T, TinyvexError>>

	func receive<S: Subscriber>(subscriber: S) where S.Input == T, S.Failure == TinyvexError {
		subscriber.receive(subscription: StreamSubscription(subscriber: subscriber, make: make))
	}
}

/// Runs the stream in a task from the first demand to cancel().
final class StreamSubscription<S: Subscriber>: Subscription, @unchecked Sendable
    where S.Failure == TinyvexError, S.Input: Sendable {
	private let lock = NSLock()
	private var subscriber: S?
	private var task: Task<Void, Never>?
	private let make: @Sendable () -> AsyncStream<Result<S.Input, TinyvexError>>

	init(subscriber: S, make: @escaping @Sendable () -> AsyncStream<Result<S.Input, TinyvexError>>) {
		self.subscriber = subscriber
		self.make = make
	}

	func request(_ demand: Subscribers.Demand) {
		lock.lock()
		defer { lock.unlock() }
		guard task == nil, subscriber != nil, demand > 0 else {
			return
		}
		let stream = make()
		task = Task { [self] in
			for await r in stream {
				if case .success(let v) = r {
					_ = current()?.receive(v)
				}
			}
			if !Task.isCancelled {
				current()?.receive(completion: .failure(.closed))
			}
		}
	}

	private func current() -> S? {
		lock.lock()
		defer { lock.unlock() }
		return subscriber
	}

	func cancel() {
		lock.lock()
		let t = task
		task = nil
		subscriber = nil
		lock.unlock()
		t?.cancel()
	}
}
#endif
