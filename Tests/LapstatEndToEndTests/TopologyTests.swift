import Foundation
import LapstatUp
import Testing

@Suite struct TopologyTests {
    /// `lapstat up` runs the topology compiled into it; the file in topology/ is what people
    /// read and copy. The two must say the same thing.
    @Test func embeddedDefaultMatchesTheCheckedInFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("topology/local.json"), encoding: .utf8)
        #expect(file == Topology.embeddedDefaultJSON)
        let decoded = try Topology.decode(Data(file.utf8))
        #expect(decoded.writers.count == 2 && decoded.fanins.count == 1 && decoded.shims.count == 1)
    }

    @Test func topologiesWithoutWritersOrWithDuplicateNamesAreRefused() {
        #expect(throws: (any Error).self) {
            try Topology.decode(Data(#"{"dataDir":"d","query":{"http":"127.0.0.1:1"},"fanins":[],"writers":[],"shims":[]}"#.utf8))
        }
        #expect(throws: (any Error).self) {
            try Topology.decode(Data(#"{"dataDir":"d","query":{"http":"127.0.0.1:1"},"fanins":[{"name":"x","frontend":"a","backend":"b"}],"writers":[{"name":"x"}],"shims":[]}"#.utf8))
        }
    }
}
