import Foundation
import LapstatCore
import Testing
@testable import LapstatShim

@Suite struct SpoolTests {
    func temporaryDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lapstat-spool-\(UInt64.random(in: 0...UInt64.max))").path
        return dir
    }

    func frame(_ spool: Spool, _ sequence: UInt64, samples: Int) -> [UInt8] {
        let s = (0..<samples).map { Sample(app: "a\($0 % 2)", request: "r", timestampMillis: 1, valueMicros: UInt64($0)) }
        return BatchFrame(shimID: spool.shimID, sequence: sequence, createdMillis: 0, host: "h", samples: s).encoded()
    }

    @Test func unacknowledgedFramesSurviveARestartWithTheirIdentity() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var written: [UInt64: [UInt8]] = [:]
        let shimID: UInt64
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
            shimID = spool.shimID
            for _ in 0..<10 {
                let seq = try spool.takeSequence()
                let f = frame(spool, seq, samples: 5)
                #expect(try spool.append(sequence: seq, frame: f, positions: []))
                written[seq] = f
            }
            try spool.commit()
            spool.markDone(2)
            spool.markDone(5)
            try spool.commit() // acknowledgements are written down at the next commit
        }
        let reopened = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
        #expect(reopened.shimID == shimID)
        #expect(reopened.recovered.map(\.sequence) == [1, 3, 4, 6, 7, 8, 9, 10])
        for r in reopened.recovered { #expect(r.frame == written[r.sequence]) }
        // New sequences never reuse one that may have reached a writer.
        #expect(try reopened.takeSequence() > 10)
    }

    @Test func aTornLastRecordIsCutAndEverythingBeforeItKept() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
            for _ in 0..<3 {
                let seq = try spool.takeSequence()
                _ = try spool.append(sequence: seq, frame: frame(spool, seq, samples: 3), positions: [])
            }
            try spool.commit()
        }
        let segment = try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".seg") }!
        let handle = FileHandle(forWritingAtPath: dir + "/" + segment)!
        let size = handle.seekToEndOfFile()
        handle.truncateFile(atOffset: size - 7)
        handle.closeFile()
        let reopened = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
        #expect(reopened.recovered.map(\.sequence) == [1, 2])
    }

    @Test func segmentsGoOnceEveryFrameInThemIsDone() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spool = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
        var sequences: [UInt64] = []
        // ~200 KiB frames: several 8 MiB segments.
        for _ in 0..<100 {
            let seq = try spool.takeSequence()
            _ = try spool.append(sequence: seq, frame: frame(spool, seq, samples: 20_000), positions: [])
            sequences.append(seq)
        }
        try spool.commit()
        let before = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }.count
        #expect(before > 1)
        for s in sequences.dropLast() { spool.markDone(s) }
        let after = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }.count
        #expect(after == 1) // the segment being written stays
        #expect(spool.pendingCount == 1)
    }

    @Test func capPoliciesDropWhatTheySay() throws {
        for policy in [SpoolFullPolicy.dropOldest, .dropNewest] {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let spool = try Spool(directory: dir, maxBytes: 1 << 20, policy: policy)
            var accepted: [UInt64] = []
            var refused = 0
            var dropped: [UInt64] = []
            for _ in 0..<200 {
                let seq = try spool.takeSequence()
                if spool.isFull && policy == .dropOldest { dropped += spool.dropOldestSegment() }
                if try spool.append(sequence: seq, frame: frame(spool, seq, samples: 2_000), positions: []) {
                    accepted.append(seq)
                } else {
                    refused += 1
                }
            }
            try spool.commit()
            let reopened = try Spool(directory: dir, maxBytes: 1 << 20, policy: policy)
            let kept = Set(reopened.recovered.map(\.sequence))
            if policy == .dropNewest {
                #expect(refused > 0 && dropped.isEmpty)
                #expect(kept == Set(accepted))
                #expect(kept.max()! < accepted.last! + 1)
            } else {
                #expect(refused == 0 && !dropped.isEmpty)
                // Everything accepted is either kept or was reported dropped: nothing vanishes.
                #expect(kept.union(dropped) == Set(accepted))
                #expect(kept.isDisjoint(with: dropped))
                #expect(kept.contains(accepted.last!))
            }
        }
    }

    @Test func tailPositionsResumeFromTheNewestOfRecordAndCheckpoint() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func position(_ offset: Int64) -> TailPosition {
            TailPosition(path: "/var/log/app.log", fingerprint: 42, fingerprintLength: 256, inode: 7, offset: offset)
        }
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
            let s1 = try spool.takeSequence()
            _ = try spool.append(sequence: s1, frame: frame(spool, s1, samples: 1), positions: [position(100)])
            try spool.commit()
            spool.markDone(s1) // acknowledged: the record is gone, the checkpoint file keeps 100
            let s2 = try spool.takeSequence()
            _ = try spool.append(sequence: s2, frame: frame(spool, s2, samples: 1), positions: [position(250)])
            try spool.commit()
        }
        let reopened = try Spool(directory: dir, maxBytes: 1 << 30, policy: .dropOldest)
        #expect(reopened.tailPositions["/var/log/app.log"]?.offset == 250)
    }
}
