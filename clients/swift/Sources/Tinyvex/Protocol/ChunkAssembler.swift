// tinyvex/transitionChunk reassembly: the parts of one transition arrive
// in order, from partNumber 0, with nothing between them; the joined
// chunks are the transition's params as JSON text.

struct ChunkAssembler: Sendable {
	/// Most bytes one reassembled transition may hold.
	static let maxBytes = 512 * 1024 * 1024
	/// Most parts one transition may be cut into.
	static let maxParts = 1 << 20

	private var id: String?
	private var total = 0
	private var parts: [String] = []
	private var bytes = 0

	var inProgress: Bool { id != nil }

	mutating func reset() {
		id = nil
		total = 0
		parts = []
		bytes = 0
	}

	/// Adds one part (the notification's params); returns the whole
	/// transition's text once its last part is in.
	mutating func add(_ p: JSONValue) throws(TinyvexError) -> String? {
		guard let tid = p["transitionId"]?.stringValue, let part = p["partNumber"]?.intValue,
		    let n = p["totalParts"]?.intValue, let chunk = p["chunk"]?.stringValue,
		    n >= 1, n <= Self.maxParts else {
			throw TinyvexError.invalidResponse("bad transitionChunk")
		}
		if id == nil {
			guard part == 0 else {
				throw TinyvexError.invalidResponse("transitionChunk starts at part \(part)")
			}
			id = tid
			total = n
		}
		guard tid == id, n == total, part == parts.count else {
			throw TinyvexError.invalidResponse("transitionChunk out of order")
		}
		bytes += chunk.utf8.count
		guard bytes <= Self.maxBytes else {
			throw TinyvexError.invalidResponse("chunked transition over \(Self.maxBytes) bytes")
		}
		parts.append(chunk)
		guard parts.count == total else {
			return nil
		}
		let text = parts.joined()
		reset()
		return text
	}
}
