#if canImport(Glibc)
import Glibc
#endif

/// A small, fast generator fully determined by its seed (Steele, Lea and Flood's SplitMix64).
/// Synthetic loads, benchmarks and property tests use it so a run can be replayed from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so it is safe under log and as a divisor.
    public mutating func unit() -> Double { Double((next() >> 11) + 1) * 0x1p-53 }

    /// Uniform in 0..<n (modulo bias is negligible for the small n used here).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Standard normal by Box–Muller.
    public mutating func normal() -> Double { (-2 * log(unit())).squareRoot() * cos(2 * .pi * unit()) }
}
