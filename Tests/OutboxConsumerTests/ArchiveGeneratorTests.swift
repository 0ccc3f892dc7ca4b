import ArchiveGenerator
import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// The project's own archive generator: deterministic, and realistic enough to benchmark with.
@Suite struct ArchiveGeneratorTests {
    func lines(_ options: ArchiveGenerator.Options) -> [String] {
        var generator = ArchiveGenerator(options)
        var lines: [String] = []
        while let line = generator.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
        return lines
    }

    @Test func sameSeedSameBytesOtherSeedOtherBytes() {
        let a = lines(.init(count: 500, seed: 1))
        #expect(a == lines(.init(count: 500, seed: 1)))
        #expect(a != lines(.init(count: 500, seed: 2)))
        #expect(a.count == 500)
    }

    @Test func everyLineIsAContractEventWithRealisticDuplicates() async throws {
        let directory = TemporaryDirectory()
        let consumer = makeConsumer(ledger: try SQLiteLedger(path: directory.path("l.sqlite")), batchSize: 1000)
        let report = try await consumer.run(InMemorySource(lines: lines(.init(count: 20_000, payloadAsStringRate: 0.2))))
        #expect(report.failed == 0)
        let duplicateShare = Double(report.duplicates) / Double(report.read)
        #expect((0.03...0.12).contains(duplicateShare), "duplicates: \(duplicateShare)")
        #expect(Set(report.deliveredByType.keys) == Set(V1EventTypes.all.map { $0.eventType }), "every V1 type appears")
    }

    @Test func invalidLinesAreThereWhenAskedFor() async throws {
        let directory = TemporaryDirectory()
        let consumer = makeConsumer(ledger: try SQLiteLedger(path: directory.path("l.sqlite")))
        let report = try await consumer.run(InMemorySource(lines: lines(.init(count: 2000, invalidRate: 0.05))))
        #expect((50...150).contains(report.failed), "\(report.failed) invalid lines")
    }
}
