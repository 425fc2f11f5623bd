/// Where core code gets random bytes from. Production uses ``SystemRandomSource``
/// (the kernel's CSPRNG); tests may pass a deterministic source to pin outputs.
public protocol RandomSource: Sendable {
    func bytes(_ count: Int) -> [UInt8]
}

/// The operating system's cryptographically secure generator (`getrandom(2)` on Linux).
public struct SystemRandomSource: RandomSource {
    public init() {}

    public func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var out: [UInt8] = []
        out.reserveCapacity(count + 7)
        while out.count < count {
            withUnsafeBytes(of: generator.next()) { out.append(contentsOf: $0) }
        }
        out.removeLast(out.count - count)
        return out
    }
}

/// A deterministic generator (SplitMix64) for tests and golden files. Never use it for secrets.
public final class SeededRandomSource: RandomSource, @unchecked Sendable {
    // @unchecked: `state` is only touched under `lock`.
    private let lock = NSLockLite()
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public func bytes(_ count: Int) -> [UInt8] {
        self.lock.withLock {
            var out: [UInt8] = []
            out.reserveCapacity(count)
            while out.count < count {
                self.state &+= 0x9E37_79B9_7F4A_7C15
                var z = self.state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                withUnsafeBytes(of: z.littleEndian) { out.append(contentsOf: $0.prefix(count - out.count)) }
            }
            return out
        }
    }
}
