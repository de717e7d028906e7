// Providers and actions against the real daemons: a Swift provider serves
// another client's calls (and its writes show before the answer), errors
// come back as ActionFailed, a call in flight when the gateway dies fails
// with outcome unknown, and the provider registers again after a
// reconnect.

import Foundation
import Glibc
import Testing
@testable import Tinyvex

struct ReplyArgs: Codable, Sendable {
	var threadId: String
}

struct Reply: Codable, Sendable, Equatable {
	var text: String
	var messageId: String
}

@Suite("live actions")
struct LiveActionTests {
	@Test func swiftProviderServesAnotherClient() async throws {
		try await withStack { st in
			let provider = st.client()
			let caller = st.client()
			defer {
				provider.close()
				caller.close()
			}
			try await provider.provide("agent/*") { (call: ActionCall) async throws -> any Encodable & Sendable in
				if call.udfPath == "agent/fail" {
					throw ActionError("no such thread", data: ["thread": call.args["threadId"] ?? .null])
				}
				let args = try call.args(as: ReplyArgs.self)
				let id: String = try await provider.mutation("db/insert",
				    args: ["table": "replies", "doc": ["threadId": .string(args.threadId), "text": "hello"]] as JSONValue)
				return Reply(text: "hello \(args.threadId)", messageId: id)
			}
			let sync = SyncSink()
			let (q, key) = caller.core.subscribe(udfPath: "db/query", args: ["table": "replies"], sink: sync.sink)
			defer { caller.core.unsubscribe(queryId: q, key: key) }
			let reply: Reply = try await caller.action("agent/reply", args: ReplyArgs(threadId: "t1"))
			#expect(reply.text == "hello t1")
			// What the action wrote is on the caller's screen before the answer.
			#expect(sync.latest?.arrayValue?.contains { $0["_id"]?.stringValue == reply.messageId } == true)
			do throws(TinyvexError) {
				let _: Reply = try await caller.action("agent/fail", args: ReplyArgs(threadId: "t2"))
				Issue.record("a failing action succeeded")
			} catch {
				guard case .server(let code, let kind, let message, let data) = error else {
					Issue.record("unexpected \(error)")
					return
				}
				#expect(code == -32011 && kind == "ActionFailed" && message == "no such thread")
				#expect(data?["data"]?["thread"] == "t2")
			}
			do throws(TinyvexError) {
				let _: Reply = try await caller.action("nobody/here", args: ReplyArgs(threadId: "t3"))
				Issue.record("an action without a provider succeeded")
			} catch {
				#expect(error.kind == "NotFound")
			}
			try await provider.unprovide("agent/*")
			do throws(TinyvexError) {
				let _: Reply = try await caller.action("agent/reply", args: ReplyArgs(threadId: "t4"))
				Issue.record("an action was served after unprovide")
			} catch {
				#expect(error.kind == "NotFound")
			}
		}
	}

	@Test func actionInFlightLostWithTheGateway() async throws {
		try await withStack { st in
			// The provider on a second gateway, which stays up.
			let port2 = try Stack.freePort()
			try st.startExtraGateway(port: port2)
			let provider = TinyvexClient(url: URL(string: "ws://127.0.0.1:\(port2)/sync") ?? st.url)
			let caller = st.client()
			defer {
				provider.close()
				caller.close()
			}
			let calls = Counter()
			let cancels = Counter()
			try await provider.provide("slow/run") { (call: ActionCall) async throws -> any Encodable & Sendable in
				calls.add()
				while !Task.isCancelled {
					try? await Task.sleep(nanoseconds: 50_000_000)
				}
				cancels.add()
				return "cancelled"
			}
			let states = Collector(caller.connectionStates)
			#expect(await states.wait { $0.last == .connected })
			let call = Task { () async throws(TinyvexError) -> String in
				try await caller.action("slow/run", args: ["n": 1] as JSONValue)
			}
			#expect(await eventually { calls.value == 1 })
			st.killGateway()
			let r = await call.result
			guard case .failure(let e) = r, case .connectionLost(outcomeUnknown: true)? = e as? TinyvexError else {
				Issue.record("the action in flight ended with \(r)")
				return
			}
			// The provider was told to cancel it (its caller is gone).
			#expect(await eventually { cancels.value == 1 })
			// Never resent: after the caller is back, the provider has still
			// seen one call.
			try st.startGateway()
			#expect(await states.wait { $0.last == .connected })
			try await Task.sleep(nanoseconds: 300_000_000)
			#expect(calls.value == 1)
		}
	}

	@Test func providerRegistersAgainAfterReconnect() async throws {
		try await withStack { st in
			let provider = st.client()
			defer { provider.close() }
			try await provider.provide("echo") { (call: ActionCall) async throws -> any Encodable & Sendable in
				call.args
			}
			let states = Collector(provider.connectionStates)
			st.killGateway()
			#expect(await states.wait {
				if case .disconnected? = $0.last { return true }
				return false
			})
			try st.startGateway()
			#expect(await states.wait { $0.last == .connected })
			let caller = st.client()
			defer { caller.close() }
			var echoed: JSONValue = .null
			// The registration may still be on its way right after the connect.
			for _ in 0..<100 {
				do throws(TinyvexError) {
					echoed = try await caller.action("echo", args: ["x": 42] as JSONValue)
					break
				} catch {
					try await Task.sleep(nanoseconds: 50_000_000)
				}
			}
			#expect(echoed == ["x": 42])
		}
	}
}

final class Counter: @unchecked Sendable {
	private let lock = NSLock()
	private var n = 0

	func add() {
		lock.withLock { n += 1 }
	}

	var value: Int { lock.withLock { n } }
}
