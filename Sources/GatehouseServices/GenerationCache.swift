/// Values read from the store, kept while the store's ``Store/writeGeneration`` has not moved:
/// any write through this process empties it in effect, so a hit is exactly what a read would
/// return now. Stores with other writers (nil generation) are never cached. Bounded: when full,
/// it starts over.
final class GenerationCache<Value: Sendable>: Sendable {
    struct State: Sendable {
        var generation: UInt64 = .max
        var values: [String: Value] = [:]
    }

    let capacity: Int
    let box = LockedBox(State())

    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: String, generation: UInt64?) -> Value? {
        guard let generation else { return nil }
        return self.box.mutate { state in state.generation == generation ? state.values[key] : nil }
    }

    /// Stores `value`, read after the generation was `generation` (read the generation first).
    func put(_ key: String, _ value: Value, generation: UInt64?) {
        guard let generation else { return }
        self.box.mutate { state in
            if state.generation != generation || state.values.count >= self.capacity {
                state.generation = generation
                state.values.removeAll(keepingCapacity: true)
            }
            state.values[key] = value
        }
    }
}
