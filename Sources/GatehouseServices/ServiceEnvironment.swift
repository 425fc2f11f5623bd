public import GatehouseCore

/// What every use case needs from the outside world: the store, a clock and randomness.
/// Built once by the composition root; tests build it with a manual clock and seeded randomness.
public struct ServiceEnvironment: Sendable {
    public let store: any Store
    public let time: any TimeSource
    public let random: any RandomSource

    public init(store: any Store, time: any TimeSource, random: any RandomSource) {
        self.store = store
        self.time = time
        self.random = random
    }
}
