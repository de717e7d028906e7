// A JSON value as the wire carries it.  The protocol layer works on these
// (transitions, diffs, canonical args); the caller's own types meet them
// only through JSONEncoder and JSONDecoder at the edge.

import Foundation

/// A JSON value.  Objects compare regardless of member order.
public enum JSONValue: Sendable, Hashable {
	case null
	case bool(Bool)
	case number(Double)
	case string(String)
	case array([JSONValue])
	case object([String: JSONValue])

	/// The member `key` of an object, nil for anything else.
	public subscript(key: String) -> JSONValue? {
		if case .object(let o) = self {
			return o[key]
		}
		return nil
	}

	public var stringValue: String? {
		if case .string(let s) = self {
			return s
		}
		return nil
	}

	public var doubleValue: Double? {
		if case .number(let d) = self {
			return d
		}
		return nil
	}

	/// An integral number that fits an Int64 exactly, nil otherwise.
	public var int64Value: Int64? {
		guard case .number(let d) = self, d.rounded() == d,
		    abs(d) <= 9_007_199_254_740_992 else {
			return nil
		}
		return Int64(d)
	}

	public var intValue: Int? {
		int64Value.flatMap { Int(exactly: $0) }
	}

	public var boolValue: Bool? {
		if case .bool(let b) = self {
			return b
		}
		return nil
	}

	public var arrayValue: [JSONValue]? {
		if case .array(let a) = self {
			return a
		}
		return nil
	}

	public var objectValue: [String: JSONValue]? {
		if case .object(let o) = self {
			return o
		}
		return nil
	}

	public var isNull: Bool {
		if case .null = self {
			return true
		}
		return false
	}

	/// Compact JSON text, object members sorted by key: the canonical
	/// form, so equal values give equal text.
	public var jsonText: String {
		JSONWriter.text(self)
	}

	/// Parses JSON text (fail-closed: trailing bytes, bad escapes, depth
	/// beyond `JSONParser.maxDepth` are errors).
	public init(parsing text: String) throws(TinyvexError) {
		self = try JSONParser.parse(text)
	}

	/// The value of an Encodable, through JSONEncoder.
	public init(encoding value: some Encodable) throws(TinyvexError) {
		if let v = value as? JSONValue {
			self = v
			return
		}
		let data: Data
		do {
			data = try JSONEncoder().encode(value)
		} catch {
			throw TinyvexError.decoding("cannot encode \(type(of: value)): \(error)")
		}
		self = try JSONParser.parse(data)
	}

	/// This value as a Decodable type, through JSONDecoder.  A value that
	/// does not fit gives `.decoding`.
	public func decode<T: Decodable>(_ type: T.Type) throws(TinyvexError) -> T {
		if let v = self as? T {
			return v
		}
		var bytes: [UInt8] = []
		JSONWriter.write(self, into: &bytes)
		let data = Data(bytes)
		do {
			return try JSONDecoder().decode(T.self, from: data)
		} catch {
			throw TinyvexError.decoding("\(T.self): \(error)")
		}
	}
}

extension JSONValue: Codable {
	public init(from decoder: any Decoder) throws {
		let c = try decoder.singleValueContainer()
		if c.decodeNil() {
			self = .null
		} else if let b = try? c.decode(Bool.self) {
			self = .bool(b)
		} else if let d = try? c.decode(Double.self) {
			self = .number(d)
		} else if let s = try? c.decode(String.self) {
			self = .string(s)
		} else if let a = try? c.decode([JSONValue].self) {
			self = .array(a)
		} else {
			self = .object(try c.decode([String: JSONValue].self))
		}
	}

	public func encode(to encoder: any Encoder) throws {
		var c = encoder.singleValueContainer()
		switch self {
		case .null: try c.encodeNil()
		case .bool(let b): try c.encode(b)
		case .number(let d):
			if let i = int64Value {
				try c.encode(i)
			} else {
				try c.encode(d)
			}
		case .string(let s): try c.encode(s)
		case .array(let a): try c.encode(a)
		case .object(let o): try c.encode(o)
		}
	}
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral {
	public init(nilLiteral: ()) { self = .null }
	public init(booleanLiteral value: Bool) { self = .bool(value) }
	public init(integerLiteral value: Int) { self = .number(Double(value)) }
	public init(floatLiteral value: Double) { self = .number(value) }
	public init(stringLiteral value: String) { self = .string(value) }
	public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
	public init(dictionaryLiteral elements: (String, JSONValue)...) {
		var o: [String: JSONValue] = [:]
		for (k, v) in elements {
			o[k] = v
		}
		self = .object(o)
	}
}

extension JSONValue: CustomStringConvertible {
	public var description: String { jsonText }
}
