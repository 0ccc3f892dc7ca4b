import FileLines
import TestSupport
import Testing

@Suite("FollowPosition")
struct FollowPositionTests {
    @Test func stringFormRoundTrips() throws {
        let positions = [
            FollowPosition(device: 2049, inode: 1234, offset: 56789, lineNumber: 120),
            FollowPosition(device: 0, inode: 0, offset: 0, lineNumber: 0),
            FollowPosition(device: .max, inode: .max, offset: .max, lineNumber: .max),
            FollowPosition(device: 2049, inode: 1234, offset: 56789, lineNumber: 120, tail: 0x9c11_85a5),
            FollowPosition(device: 1, inode: 2, offset: 3, lineNumber: 4, tail: .max),
        ]
        for position in positions {
            #expect(FollowPosition(position.description) == position)
        }
        #expect(positions[0].description == "v1 dev=2049 ino=1234 off=56789 line=120")
        #expect(positions[3].description == "v2 dev=2049 ino=1234 off=56789 line=120 tail=000000009c1185a5")
    }

    @Test func fingerprintTellsBytesApart() {
        let a = Array("{\"event_id\":1}\n".utf8)
        let b = Array("{\"event_id\":2}\n".utf8)
        let fingerprints = [a, b, []].map { bytes in bytes.withUnsafeBytes(FollowPosition.fingerprint) }
        #expect(Set(fingerprints).count == 3)
        #expect(FollowPosition.tailLength(before: 10) == 10)
        #expect(FollowPosition.tailLength(before: 1 << 40) == 4096)
    }

    @Test func parsingToleratesSurroundingWhitespaceAndKeyOrder() {
        let expected = FollowPosition(device: 1, inode: 2, offset: 3, lineNumber: 4)
        #expect(FollowPosition("v1 dev=1 ino=2 off=3 line=4\n") == expected)
        #expect(FollowPosition("  v1  line=4 off=3 ino=2 dev=1 ") == expected)
    }

    @Test(arguments: [
        "",
        "v1",
        "garbage",
        "v2 dev=1 ino=2 off=3 line=4",
        "v2 dev=1 ino=2 off=3 line=4 tail=",
        "v2 dev=1 ino=2 off=3 line=4 tail=12345",
        "v2 dev=1 ino=2 off=3 line=4 tail=000000009C1185A5",
        "v2 dev=1 ino=2 off=3 line=4 tail=+00000009c1185a5",
        "v2 dev=1 ino=2 off=3 line=4 tail=000000009c1185a5 x=1",
        "v1 dev=1 ino=2 off=3 line=4 tail=000000009c1185a5",
        "V1 dev=1 ino=2 off=3 line=4",
        "v1 dev=1 ino=2 off=3",
        "v1 dev=1 ino=2 off=3 line=4 extra=5",
        "v1 dev=1 ino=2 off=3 line=4 line=4",
        "v1 dev=1 dev=2 off=3 line=4",
        "v1 dev=1 ino=2 offset=3 line=4",
        "v1 dev=1 ino=2 off=-3 line=4",
        "v1 dev=1 ino=2 off=+3 line=4",
        "v1 dev=1 ino=2 off=3 line=",
        "v1 dev=1 ino=2 off=3 line=four",
        "v1 dev=1 ino=2 off=3 line=4x",
        "v1 dev=18446744073709551616 ino=2 off=3 line=4",
        "v1 dev=1 ino=2 off=9223372036854775808 line=4",
        "v1 dev=1 ino=2 off 3 line=4",
        "v1 dev=1 ino=2 off==3 line=4",
    ])
    func garbageIsRejected(_ text: String) {
        #expect(FollowPosition(text) == nil)
    }
}
