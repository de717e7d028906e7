// The protocol state machine without sockets: fed frames as the server
// sends them (recorded from gatewayd, or written to the contract for the
// protocol additions), checked on the frames it sends back and the events
// it gives the app.

import Foundation
import Testing
@testable import Tinyvex

/// Drives a SyncProtocol like the client does, keeping what it produced.
struct Driver {
	var sm = SyncProtocol(config: ProtocolConfig(sessionId: "test-session"))
	var sent: [JSONValue] = []
	var events: [ProtocolEvent] = []

	mutating func take() {
		let (f, e) = sm.drain()
		sent += f.compactMap { try? JSONValue(parsing: $0) }
		events += e
	}

	mutating func feed(_ text: String, now: Double = 0) {
		sm.receive(text, now: now)
		take()
	}

	/// The last frame sent with this method.
	func last(_ method: String) -> JSONValue? {
		sent.last { $0["method"]?.stringValue == method }
	}

	/// Opens a connection and answers its connect.
	mutating func connect(features: [String] = []) {
		sm.connectionOpened()
		take()
		let id = last("tinyvex/connect")?["id"]?.intValue ?? -1
		let f = features.map { "\"\($0)\"" }.joined(separator: ",")
		feed(#"{"jsonrpc":"2.0","id":\#(id),"result":{"protocol":1,"serverTs":1000,"gatewayId":"g1","limits":{"maxMessageBytes":1048576,"maxQueries":1024,"chunkBytes":524288},"features":[\#(f)]}}"#)
	}

	mutating func answer(_ method: String, _ result: String) {
		let id = last(method)?["id"]?.intValue ?? -1
		feed(#"{"jsonrpc":"2.0","id":\#(id),"result":\#(result)}"#)
	}

	var changes: [QueryChange] {
		events.compactMap {
			if case .queryChanged(let c) = $0 { return c }
			return nil
		}
	}

	var fatal: TinyvexError? {
		for e in events {
			if case .fatal(let err) = e { return err }
		}
		return nil
	}

	func answered(_ key: Int) -> Result<JSONValue, TinyvexError>? {
		for e in events {
			if case .answered(let k, let r) = e, k == key { return r }
		}
		return nil
	}
}

func transition(_ from: (Int, Int), _ to: (Int, Int), _ mods: String) -> String {
	#"{"jsonrpc":"2.0","method":"tinyvex/transition","params":{"startVersion":{"querySet":\#(from.0),"identity":0,"ts":\#(from.1)},"endVersion":{"querySet":\#(to.0),"identity":0,"ts":\#(to.1)},"modifications":[\#(mods)],"serverTs":\#(to.1)}}"#
}

@Suite("protocol")
struct ProtocolTests {
	// Frames recorded from gatewayd (protocol 1, no additions accepted):
	// the answer to a connect, a subscription to db/query, an insert.
	static let recorded: [String] = [
		#"{"jsonrpc":"2.0","id":1,"result":{"protocol":1,"serverTs":1796641830297083,"gatewayId":"gw-6275-41899","limits":{"maxMessageBytes":1048576,"maxQueries":1024,"chunkBytes":524288}}}"#,
		#"{"jsonrpc":"2.0","method":"tinyvex/transition","params":{"startVersion":{"querySet":0,"identity":0,"ts":0},"endVersion":{"querySet":1,"identity":0,"ts":0},"modifications":[{"type":"QueryUpdated","queryId":0,"value":[]}],"serverTs":1796641830297383}}"#,
		#"{"jsonrpc":"2.0","id":2,"result":{"querySet":1}}"#,
		#"{"jsonrpc":"2.0","method":"tinyvex/transition","params":{"startVersion":{"querySet":1,"identity":0,"ts":0},"endVersion":{"querySet":1,"identity":0,"ts":1796641830297616},"modifications":[{"type":"QueryUpdated","queryId":0,"value":[{"_id":"01m9835dcsn9hwbagcf4q4qc6z","_creationTime":1796641830297.616,"text":"hi"}]}],"serverTs":1796641830302377}}"#,
		#"{"jsonrpc":"2.0","id":3,"result":{"value":"01m9835dcsn9hwbagcf4q4qc6z","ts":1796641830297616}}"#,
	]

	@Test func recordedSession() throws {
		var d = Driver()
		d.sm.connectionOpened()
		d.take()
		let c = try #require(d.last("tinyvex/connect"))
		#expect(c["params"]?["sessionId"] == "test-session")
		#expect(c["params"]?["connectionCount"] == 0)
		#expect(c["params"]?["features"] == ["diff", "resume"])
		let (q, cached) = d.sm.subscribe(udfPath: "db/query", args: ["table": "messages"])
		#expect(q == 0 && cached == nil)
		d.take()
		#expect(d.last("tinyvex/modifyQuerySet") == nil, "nothing but connect before its answer")
		d.feed(Self.recorded[0])
		let m = try #require(d.last("tinyvex/modifyQuerySet"))
		#expect(m["params"]?["baseVersion"] == 0 && m["params"]?["newVersion"] == 1)
		#expect(m["params"]?["modifications"] == [["type": "Add", "queryId": 0, "udfPath": "db/query",
		    "args": ["table": "messages"]]])
		d.feed(Self.recorded[1])
		d.feed(Self.recorded[2])
		#expect(d.events.contains { if case .resumed = $0 { return true }; return false })
		d.sm.mutation(key: 7, udfPath: "db/insert", args: ["table": "messages", "doc": ["text": "hi"]], now: 0)
		d.take()
		let mut = try #require(d.last("tinyvex/mutation"))
		#expect(mut["id"] == 3 && mut["params"]?["requestId"] == "r7")
		d.feed(Self.recorded[3])
		d.feed(Self.recorded[4])
		#expect(d.changes.count == 2)
		#expect(d.changes.last?.result == .value([["_id": "01m9835dcsn9hwbagcf4q4qc6z",
		    "_creationTime": 1796641830297.616, "text": "hi"]], hash: nil))
		#expect(d.changes.last?.ts == 1796641830297616)
		let r = try #require(d.answered(7))
		#expect(try r.get()["value"] == "01m9835dcsn9hwbagcf4q4qc6z")
		// The change was handed out before the answer.
		let iChange = d.events.lastIndex { if case .queryChanged = $0 { return true }; return false }
		let iAnswer = d.events.firstIndex { if case .answered(7, _) = $0 { return true }; return false }
		#expect(iChange != nil && iAnswer != nil && (iChange ?? 0) < (iAnswer ?? 0))
		#expect(d.fatal == nil)
		#expect(d.sm.maxObservedTs == 1796641830297616)
	}

	@Test func brokenVersionChainIsFatal() {
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[]}"#))
		#expect(d.fatal == nil)
		d.feed(transition((1, 4), (1, 9), #"{"type":"QueryUpdated","queryId":0,"value":[]}"#))
		#expect(d.fatal != nil)
	}

	@Test func queryFailedThenRecovers() {
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t", "index": "nope"])
		d.take()
		d.feed(transition((0, 0), (1, 5),
		    #"{"type":"QueryFailed","queryId":0,"error":{"code":-32004,"kind":"NotFound","message":"no index"}}"#))
		#expect(d.changes.last?.result == .failed(.server(code: -32004, kind: "NotFound", message: "no index", data: nil)))
		// A diff needs a held value: after a failure, none is held.
		d.feed(transition((1, 5), (1, 6), #"{"type":"QueryDiff","queryId":0,"ops":[]}"#))
		#expect(d.fatal != nil)
		d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
		d.take()
		d.feed(transition((0, 0), (1, 5),
		    #"{"type":"QueryFailed","queryId":0,"error":{"code":-32006,"kind":"TooLarge","message":"big"}}"#))
		d.feed(transition((1, 5), (1, 7), #"{"type":"QueryUpdated","queryId":0,"value":[{"_id":"a"}]}"#))
		#expect(d.changes.map(\.ts) == [5, 7])
		#expect(d.changes.last?.result == .value([["_id": "a"]], hash: nil))
		#expect(d.fatal == nil)
	}

	@Test func chunksReassembleInOrderOnly() throws {
		let t = transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[{"_id":"a","text":"héllo wörld, a long enough value"}]}"#)
		let params = try #require(try JSONValue(parsing: t)["params"]).jsonText
		// Cut on character boundaries, as the server cuts on UTF-8 ones.
		let chars = Array(params)
		let parts = stride(from: 0, to: chars.count, by: 17).map { String(chars[$0..<min($0 + 17, chars.count)]) }
		func chunk(_ i: Int, _ total: Int, _ text: String, id: String = "t1") -> String {
			JSONValue.object(["jsonrpc": "2.0", "method": "tinyvex/transitionChunk", "params": [
			    "transitionId": .string(id), "partNumber": .number(Double(i)),
			    "totalParts": .number(Double(total)), "chunk": .string(text)]]).jsonText
		}
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
		d.take()
		for (i, p) in parts.enumerated() {
			#expect(d.changes.isEmpty)
			d.feed(chunk(i, parts.count, p))
		}
		#expect(d.fatal == nil)
		#expect(d.changes.count == 1)
		#expect(d.changes.first?.result == .value([["_id": "a", "text": "héllo wörld, a long enough value"]], hash: nil))

		var e = Driver()
		e.connect()
		_ = e.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
		e.take()
		e.feed(chunk(0, parts.count, parts[0]))
		e.feed(chunk(2, parts.count, parts[2]))
		#expect(e.fatal != nil)

		var f = Driver()
		f.connect()
		f.feed(chunk(0, 3, parts[0]))
		f.feed(transition((0, 0), (0, 1), ""))
		#expect(f.fatal != nil, "a transition inside a chunked one")
	}

	@Test func diffsApplyToListsPagesAndDocuments() throws {
		let list: JSONValue = [["_id": "a", "text": "x"], ["_id": "b", "text": "y", "k": 1], ["_id": "c"]]
		let ops: [JSONValue] = [
			["op": "remove", "id": "a"],
			["op": "insert", "at": 2, "doc": ["_id": "d", "text": "new"]],
			["op": "update", "id": "b", "set": ["text": "Y"], "unset": ["k"], "append": ["text": "!"]],
			["op": "update", "id": "d", "append": ["text": " token"]],
		]
		let out = try Diff.apply(ops: ops, fields: nil, to: list, udfPath: "db/query")
		#expect(out == [["_id": "b", "text": "Y!"], ["_id": "c"], ["_id": "d", "text": "new token"]])
		let page: JSONValue = ["page": list, "continueCursor": "c1", "isDone": false]
		let p2 = try Diff.apply(ops: [["op": "remove", "id": "c"]], fields: ["isDone": true, "continueCursor": "c2"],
		    to: page, udfPath: "db/paginate")
		#expect(p2 == ["page": [["_id": "a", "text": "x"], ["_id": "b", "text": "y", "k": 1]],
		    "continueCursor": "c2", "isDone": true])
		let doc: JSONValue = ["_id": "a", "text": "hel", "page": 3]
		let d2 = try Diff.apply(ops: [["op": "update", "append": ["text": "lo"], "set": ["page": 4]]], fields: nil,
		    to: doc, udfPath: "db/get")
		#expect(d2 == ["_id": "a", "text": "hello", "page": 4])
		for bad: JSONValue in [["op": "remove", "id": "zz"], ["op": "insert", "at": 9, "doc": ["_id": "q"]],
		    ["op": "update", "id": "c", "append": ["text": "x"]], ["op": "explode"]] {
			#expect(throws: TinyvexError.self) {
				_ = try Diff.apply(ops: [bad], fields: nil, to: list, udfPath: "db/query")
			}
		}
	}

	@Test func resumeWithKnownHashAndDiffs() throws {
		var d = Driver()
		d.connect(features: ["diff", "resume"])
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[{"_id":"a","text":"he"}],"hash":"h1"}"#))
		d.feed(transition((1, 5), (1, 6), #"{"type":"QueryDiff","queryId":0,"ops":[{"op":"update","id":"a","append":{"text":"llo"}}],"hash":"h2"}"#))
		#expect(d.changes.last?.result == .value([["_id": "a", "text": "hello"]], hash: "h2"))
		d.sm.connectionLost(reason: "server closed (1001)")
		d.take()
		d.sm.connectionOpened()
		d.take()
		let c = try #require(d.last("tinyvex/connect"))
		#expect(c["params"]?["connectionCount"] == 1)
		#expect(c["params"]?["lastCloseReason"] == "server closed (1001)")
		#expect(c["params"]?["maxObservedTs"] == 6)
		d.answer("tinyvex/connect", #"{"protocol":1,"serverTs":7,"gatewayId":"g2","limits":{},"features":["diff","resume"]}"#)
		let m = try #require(d.last("tinyvex/modifyQuerySet"))
		#expect(m["params"]?["baseVersion"] == 0)
		#expect(m["params"]?["modifications"]?.arrayValue?.first?["knownHash"] == "h2")
		let before = d.changes.count
		d.feed(transition((0, 0), (1, 8), #"{"type":"QueryUnchanged","queryId":0,"hash":"h2"}"#))
		#expect(d.changes.count == before, "the value held is kept, nothing new to show")
		d.feed(transition((1, 8), (1, 9), #"{"type":"QueryDiff","queryId":0,"ops":[{"op":"insert","at":1,"doc":{"_id":"b"}}],"hash":"h3"}"#))
		#expect(d.changes.last?.result == .value([["_id": "a", "text": "hello"], ["_id": "b"]], hash: "h3"))
		#expect(d.fatal == nil)
		d.feed(transition((1, 9), (1, 10), #"{"type":"QueryUnchanged","queryId":0,"hash":"other"}"#))
		#expect(d.fatal != nil)
	}

	@Test func resumedEqualValueIsNotAChange() {
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "a"])
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "b"])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[{"_id":"x"}]},{"type":"QueryUpdated","queryId":1,"value":[]}"#))
		#expect(d.changes.count == 2)
		d.sm.connectionLost(reason: "x")
		d.connect()
		// Without "resume" the server sends values again: only a different
		// one is news.
		d.feed(transition((0, 0), (1, 6), #"{"type":"QueryUpdated","queryId":0,"value":[{"_id":"x"}]},{"type":"QueryUpdated","queryId":1,"value":[{"_id":"y"}]}"#))
		#expect(d.changes.count == 3)
		#expect(d.changes.last?.queryId == 1)
		// On the same connection an update is always news.
		d.feed(transition((1, 6), (1, 7), #"{"type":"QueryUpdated","queryId":0,"value":[{"_id":"x"}]}"#))
		#expect(d.changes.count == 4)
	}

	@Test func changesBeforeABadModificationAreDelivered() {
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "a"])
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "b"])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[],"hash":"h0"},{"type":"QueryDiff","queryId":1,"ops":[]}"#))
		#expect(d.fatal != nil)
		// Its hash would be named on resume: the subscriber must have seen it.
		#expect(d.changes.map(\.queryId) == [0])
	}

	@Test func refusedResumeIsNotRepeated() throws {
		var d = Driver()
		// Subscribed while disconnected: the resume is the first Add.
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "a"])
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "b"])
		d.connect()
		let id = try #require(d.last("tinyvex/modifyQuerySet")?["id"]?.intValue)
		d.feed(#"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32006,"message":"over maxQueries","data":{"kind":"TooLarge"}}}"#)
		#expect(d.fatal != nil)
		let rejected = d.events.filter {
			if case .queryRejected(_, .server(code: -32006, kind: "TooLarge", _, _)) = $0 { return true }
			return false
		}
		#expect(rejected.count == 2, "the subscribers are told")
		// Re-added, the same queries would be refused again, and the
		// connection after this one dropped in turn, forever.
		d.sm.connectionLost(reason: "refused")
		d.sent = []
		d.connect()
		#expect(d.last("tinyvex/modifyQuerySet") == nil)
		#expect(d.events.contains { if case .resumed = $0 { return true }; return false })
	}

	@Test func cachedResultKeepsItsTsWhileDisconnected() {
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "a"])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[]}"#))
		d.feed(transition((1, 5), (1, 9), ""))
		#expect(d.sm.remote.ts(0) == 9, "unchanged since, and consistent at the latest")
		d.sm.connectionLost(reason: "x")
		// A second subscriber now gets the value held, at a ts it is
		// consistent at, not 0.
		let (q, cached) = d.sm.subscribe(udfPath: "db/query", args: ["table": "a"])
		#expect(q == 0 && cached != nil)
		#expect(d.sm.remote.ts(q) == 5)
	}

	@Test func mutationsResentActionsLost() throws {
		var d = Driver()
		d.connect()
		d.sm.mutation(key: 1, udfPath: "db/insert", args: ["table": "t", "doc": [:]], now: 0)
		d.sm.action(key: 2, udfPath: "agent/run", args: [:])
		d.take()
		let first = try #require(d.last("tinyvex/mutation"))
		d.sm.connectionLost(reason: "gone")
		d.take()
		#expect(d.answered(2).map { if case .failure(.connectionLost(outcomeUnknown: true)) = $0 { return true }; return false } == true)
		// As every Tinyvex client reports it: -32008, Unavailable,
		// data.outcome "unknown".
		if case .failure(let e)? = d.answered(2) {
			#expect(e.code == -32008 && e.kind == "Unavailable")
			#expect(e.data?["outcome"] == "unknown" && e.data?["kind"] == "Unavailable")
			#expect(!e.message.isEmpty)
		}
		#expect(d.answered(1) == nil)
		// Issued while disconnected: nothing goes out on a dead socket.
		let sentBefore = d.sent.count
		d.sm.mutation(key: 3, udfPath: "db/insert", args: ["table": "t", "doc": ["n": 3]], now: 0)
		_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
		d.sm.action(key: 4, udfPath: "agent/run", args: [:])
		d.take()
		#expect(d.sent.count == sentBefore)
		d.connect()
		let after = d.sent[sentBefore...].filter { $0["method"] == "tinyvex/mutation" }
		#expect(after.map { $0["params"]?["requestId"] } == ["r1", "r3"])
		#expect(after.first?["params"] == first["params"])
		#expect(d.sent[sentBefore...].contains { $0["method"] == "tinyvex/action" }, "an action never sent goes out now")
		// Unavailable: retried by the library, same requestId.
		let id1 = after.first?["id"]?.intValue ?? -1
		d.feed(#"{"jsonrpc":"2.0","id":\#(id1),"error":{"code":-32008,"message":"writer down","data":{"kind":"Unavailable","outcome":"unknown"}}}"#, now: 1)
		#expect(d.answered(1) == nil)
		#expect(d.events.contains { if case .retry(1, _) = $0 { return true }; return false })
		d.sm.retry(key: 1, now: 2)
		d.take()
		#expect(d.last("tinyvex/mutation")?["params"]?["requestId"] == "r1")
		let id1b = d.last("tinyvex/mutation")?["id"]?.intValue ?? -1
		// Past the deadline the error reaches the caller.
		d.feed(#"{"jsonrpc":"2.0","id":\#(id1b),"error":{"code":-32007,"message":"busy","data":{"kind":"Overloaded"}}}"#, now: 100)
		#expect(d.answered(1).map { if case .failure(.server(-32007, "Overloaded", _, _)) = $0 { return true }; return false } == true)
		// A recorded outcome (ValidationError) is final at once.
		let id3 = d.sent.last { $0["params"]?["requestId"] == "r3" }?["id"]?.intValue ?? -1
		d.feed(#"{"jsonrpc":"2.0","id":\#(id3),"error":{"code":-32003,"message":"bad","data":{"kind":"ValidationError","path":"x"}}}"#, now: 100)
		#expect(d.answered(3).map { if case .failure(.server(-32003, "ValidationError", "bad", ["kind": "ValidationError", "path": "x"])) = $0 { return true }; return false } == true)
	}

	@Test func livePagesAreReaddedWithTheirEnd() throws {
		var d = Driver()
		d.connect()
		_ = d.sm.subscribe(udfPath: "db/paginate", args: ["table": "t", "numItems": 2, "cursor": nil])
		_ = d.sm.subscribe(udfPath: "db/paginate", args: ["table": "t", "numItems": 2, "cursor": "c2"])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":{"page":[{"_id":"a"},{"_id":"b"}],"continueCursor":"c2","isDone":false}}"#))
		d.feed(transition((1, 5), (2, 6), #"{"type":"QueryUpdated","queryId":1,"value":{"page":[{"_id":"c"}],"continueCursor":"c3","isDone":true}}"#))
		// A later result does not move the pinned end.
		d.feed(transition((2, 6), (2, 7), #"{"type":"QueryUpdated","queryId":0,"value":{"page":[{"_id":"a"}],"continueCursor":"c2","isDone":false}}"#))
		d.sm.connectionLost(reason: "x")
		d.connect()
		let m = try #require(d.last("tinyvex/modifyQuerySet"))
		let adds = m["params"]?["modifications"]?.arrayValue ?? []
		#expect(adds.count == 2)
		#expect(adds.first?["args"]?["endCursor"] == "c2")
		#expect(adds.last?["args"]?["endCursor"] == "c3", "a page that was done keeps the end of the index")
		#expect(adds.first?["args"]?["cursor"] == .null && adds.last?["args"]?["cursor"] == "c2")
	}

	@Test func providerCallsAnsweredAndRenewed() throws {
		var d = Driver()
		d.connect()
		d.sm.provide(key: 1, functions: ["agent/*"])
		d.take()
		d.answer("tinyvex/provide", #"{"providerId":"p1"}"#)
		#expect(d.sm.provided == ["agent/*"])
		d.feed(#"{"jsonrpc":"2.0","id":"call-9","method":"tinyvex/runAction","params":{"udfPath":"agent/reply","args":{"x":1},"sessionId":"s2"}}"#)
		let info = try #require(d.events.compactMap { if case .runAction(let i) = $0 { return i }; return nil }.first)
		#expect(info.udfPath == "agent/reply" && info.args == ["x": 1] && info.sessionId == "s2")
		d.sm.actionResult(info, .success(["ok": true]))
		d.take()
		#expect(d.sent.last == ["jsonrpc": "2.0", "id": "call-9", "result": ["ok": true]])
		d.feed(#"{"jsonrpc":"2.0","id":"call-10","method":"tinyvex/runAction","params":{"udfPath":"agent/x","args":{}}}"#)
		d.feed(#"{"jsonrpc":"2.0","method":"tinyvex/cancelAction","params":{"id":"call-10"}}"#)
		#expect(d.events.contains { if case .cancelAction("\"call-10\"") = $0 { return true }; return false })
		// A call of a connection that is gone is not answered on the next.
		let stale = try #require(d.events.compactMap { if case .runAction(let i) = $0, i.udfPath == "agent/x" { return i }; return nil }.first)
		d.sm.connectionLost(reason: "x")
		let n = d.sent.count
		d.connect()
		#expect(d.sent[n...].contains { $0["method"] == "tinyvex/provide" && $0["params"]?["functions"] == ["agent/*"] })
		d.sm.actionResult(stale, .failure(ProviderError(code: -1, message: "late", data: nil)))
		d.take()
		#expect(!d.sent.contains { $0["id"] == "call-10" })
	}

	@Test func renewalRefusedForGoodIsNotRepeated() throws {
		var d = Driver()
		d.connect()
		d.sm.provide(key: 1, functions: ["agent/*"])
		d.take()
		d.answer("tinyvex/provide", #"{"providerId":"p1"}"#)
		d.sm.connectionLost(reason: "x")
		d.connect()
		d.sm.mutation(key: 2, udfPath: "db/insert", args: ["table": "t", "doc": [:]], now: 0)
		d.take()
		// The provider token changed meanwhile: refused for good.  The
		// connection stays, its mutation is answered, and the next one
		// does not ask again.
		let id = try #require(d.last("tinyvex/provide")?["id"]?.intValue)
		d.feed(#"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32009,"message":"provider token refused","data":{"kind":"Unauthorized"}}}"#)
		#expect(d.fatal == nil)
		#expect(d.sm.provided.isEmpty)
		d.answer("tinyvex/mutation", #"{"value":"x","ts":5}"#)
		#expect(d.answered(2) != nil)
		d.sm.connectionLost(reason: "y")
		let n = d.sent.count
		d.connect()
		#expect(!d.sent[n...].contains { $0["method"] == "tinyvex/provide" })
	}

	@Test func unprovidedFunctionsAreNotRenewed() {
		var d = Driver()
		d.connect()
		d.sm.provide(key: 1, functions: ["a/*"])
		d.take()
		d.answer("tinyvex/provide", #"{"providerId":"p1"}"#)
		d.sm.provide(key: 2, functions: ["b"])
		d.take()
		d.answer("tinyvex/provide", #"{"providerId":"p1"}"#)
		d.sm.unprovide(key: 3, functions: ["a/*"])
		d.take()
		#expect(d.last("tinyvex/unprovide")?["params"]?["functions"] == ["a/*"])
		d.answer("tinyvex/unprovide", "{}")
		d.sm.connectionLost(reason: "x")
		let n = d.sent.count
		d.connect()
		#expect(d.sent[n...].filter { $0["method"] == "tinyvex/provide" }.map { $0["params"]?["functions"] } == [["b"]])
	}

	@Test func garbageNeverCrashes() {
		let frames = ["", "nul", "[1,2]", "{}", #"{"id":"x"}"#, #"{"id":null,"error":{"code":-32700,"message":"parse"}}"#,
		    #"{"method":"tinyvex/transition","params":{}}"#, #"{"method":"tinyvex/transition","params":{"startVersion":{"querySet":0,"identity":0,"ts":0},"endVersion":{"querySet":"1"},"modifications":[]}}"#,
		    #"{"method":"tinyvex/transitionChunk","params":{"transitionId":"a","partNumber":0,"totalParts":0,"chunk":""}}"#,
		    #"{"method":"tinyvex/transitionChunk","params":{"transitionId":"a","partNumber":0,"totalParts":1,"chunk":"{"}}"#,
		    #"{"method":"tinyvex/runAction","id":1,"params":{}}"#, "\u{0}", "[[[[[[[[[[", "{\"a\":\"\\ud800\"}",
		    String(repeating: "[", count: 10000)]
		for f in frames {
			var d = Driver()
			d.connect()
			_ = d.sm.subscribe(udfPath: "db/query", args: ["table": "t"])
			d.take()
			d.feed(f)
			// Fatal: the client resumes on a new connection.
			#expect(d.fatal != nil, "\(f.prefix(60))")
		}
	}

	@Test func identicalSubscriptionsShareOneQuery() {
		var d = Driver()
		d.connect()
		let a = d.sm.subscribe(udfPath: "db/query", args: ["table": "t", "limit": 2])
		d.take()
		d.feed(transition((0, 0), (1, 5), #"{"type":"QueryUpdated","queryId":0,"value":[]}"#))
		let b = d.sm.subscribe(udfPath: "db/query", args: ["limit": 2, "table": "t"])
		d.take()
		#expect(a.queryId == b.queryId)
		#expect(b.cached == .value([], hash: nil), "the new subscriber gets the value held")
		#expect(d.sent.filter { $0["method"] == "tinyvex/modifyQuerySet" }.count == 1)
		d.sm.unsubscribe(queryId: a.queryId)
		d.take()
		#expect(d.sent.filter { $0["method"] == "tinyvex/modifyQuerySet" }.count == 1)
		d.sm.unsubscribe(queryId: a.queryId)
		d.take()
		let rm = d.last("tinyvex/modifyQuerySet")
		#expect(rm?["params"]?["modifications"] == [["type": "Remove", "queryId": 0]])
		#expect(rm?["params"]?["baseVersion"] == 1 && rm?["params"]?["newVersion"] == 2)
	}
}
