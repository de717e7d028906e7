// QueryDiff: ops applied, in order, to the array of documents a query
// holds (the result of db/query, the page of db/paginate), or one update
// of the document of a db/get.  The result must be exactly what a
// QueryUpdated would have carried; anything that cannot apply (an id
// not held, an index out of range, an append to a non-string) is a
// protocol error.

enum Diff {
	static func apply(ops: [JSONValue], fields: JSONValue?, to value: JSONValue,
	    udfPath: String?) throws(TinyvexError) -> JSONValue {
		switch value {
		case .array(let docs):
			return .array(try applyList(ops, docs))
		case .object(var o):
			if udfPath == "db/paginate" || (udfPath != "db/get" && o["page"]?.arrayValue != nil &&
			    ops.allSatisfy({ $0["id"] != nil || $0["op"]?.stringValue == "insert" })) {
				guard let page = o["page"]?.arrayValue else {
					throw TinyvexError.invalidResponse("QueryDiff: paginate result without page")
				}
				o["page"] = .array(try applyList(ops, page))
				if let f = fields {
					guard let fo = f.objectValue else {
						throw TinyvexError.invalidResponse("QueryDiff: fields is not an object")
					}
					for (k, v) in fo where k != "page" {
						o[k] = v
					}
				}
				return .object(o)
			}
			guard ops.count == 1, ops[0]["op"]?.stringValue == "update", ops[0]["id"] == nil else {
				throw TinyvexError.invalidResponse("QueryDiff on a document: one update without id expected")
			}
			return .object(try update(o, ops[0]))
		default:
			throw TinyvexError.invalidResponse("QueryDiff on a value that is no array or object")
		}
	}

	private static func index(of id: String, in docs: [JSONValue]) -> Int? {
		docs.firstIndex { $0["_id"]?.stringValue == id }
	}

	static func applyList(_ ops: [JSONValue], _ list: [JSONValue]) throws(TinyvexError) -> [JSONValue] {
		var docs = list
		for op in ops {
			switch op["op"]?.stringValue {
			case "remove":
				guard let id = op["id"]?.stringValue, let i = index(of: id, in: docs) else {
					throw TinyvexError.invalidResponse("QueryDiff: remove of an id not held")
				}
				docs.remove(at: i)
			case "insert":
				guard let at = op["at"]?.intValue, at >= 0, at <= docs.count,
				    let doc = op["doc"], doc.objectValue != nil else {
					throw TinyvexError.invalidResponse("QueryDiff: bad insert")
				}
				docs.insert(doc, at: at)
			case "update":
				guard let id = op["id"]?.stringValue, let i = index(of: id, in: docs),
				    let o = docs[i].objectValue else {
					throw TinyvexError.invalidResponse("QueryDiff: update of an id not held")
				}
				docs[i] = .object(try update(o, op))
			default:
				throw TinyvexError.invalidResponse("QueryDiff: unknown op \(op.jsonText.prefix(100))")
			}
		}
		return docs
	}

	static func update(_ doc: [String: JSONValue], _ op: JSONValue) throws(TinyvexError) -> [String: JSONValue] {
		var o = doc
		if let set = op["set"] {
			guard let s = set.objectValue else {
				throw TinyvexError.invalidResponse("QueryDiff: set is not an object")
			}
			for (k, v) in s {
				o[k] = v
			}
		}
		if let unset = op["unset"] {
			guard let u = unset.arrayValue else {
				throw TinyvexError.invalidResponse("QueryDiff: unset is not a list")
			}
			for k in u {
				guard let name = k.stringValue else {
					throw TinyvexError.invalidResponse("QueryDiff: unset of a non-string")
				}
				o[name] = nil
			}
		}
		if let append = op["append"] {
			guard let a = append.objectValue else {
				throw TinyvexError.invalidResponse("QueryDiff: append is not an object")
			}
			for (k, v) in a {
				guard let suffix = v.stringValue, let old = o[k]?.stringValue else {
					throw TinyvexError.invalidResponse("QueryDiff: append to \(k), which is no string")
				}
				o[k] = .string(old + suffix)
			}
		}
		return o
	}
}
