import CLZ4

/// The one funnel to liblz4. Block format (not frame format): each column records its raw
/// length next to the compressed bytes, so the frame format's headers would be redundant.
public enum LZ4 {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case inputTooLarge(Int)
        case corrupt(expectedLength: Int)

        public var description: String {
            switch self {
            case let .inputTooLarge(n): return "cannot compress \(n) bytes: above LZ4's 2 GiB block limit"
            case let .corrupt(n): return "LZ4 data does not decompress to the recorded \(n) bytes"
            }
        }
    }

    public static func compress(_ input: [UInt8]) throws(Error) -> [UInt8] {
        guard input.count <= Int(LZ4_MAX_INPUT_SIZE) else { throw .inputTooLarge(input.count) }
        if input.isEmpty { return [] }
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                LZ4_compress_default(
                    UnsafeRawPointer(src.baseAddress!).assumingMemoryBound(to: CChar.self),
                    UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: CChar.self),
                    Int32(src.count), Int32(dst.count))
            }
        }
        // With a destination of compressBound bytes LZ4 cannot fail; 0 would mean a bug in the bound.
        precondition(written > 0, "LZ4_compress_default failed with a compressBound-sized buffer")
        output.removeSubrange(Int(written)...)
        return output
    }

    /// Decompresses exactly `rawLength` bytes; anything else (short, long, malformed) is corruption.
    public static func decompress(_ input: ArraySlice<UInt8>, rawLength: Int) throws(Error) -> [UInt8] {
        if rawLength == 0 && input.isEmpty { return [] }
        guard rawLength > 0, rawLength <= Int(LZ4_MAX_INPUT_SIZE), !input.isEmpty else { throw .corrupt(expectedLength: rawLength) }
        var output = [UInt8](repeating: 0, count: rawLength)
        let n = input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                LZ4_decompress_safe(
                    UnsafeRawPointer(src.baseAddress!).assumingMemoryBound(to: CChar.self),
                    UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: CChar.self),
                    Int32(src.count), Int32(dst.count))
            }
        }
        guard n == rawLength else { throw .corrupt(expectedLength: rawLength) }
        return output
    }
}
