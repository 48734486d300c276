import Testing
import WeirModel

@Suite("Addresses and prefixes")
struct AddressTests {
    @Test("IPv6 text round-trips in inet_ntop's form", arguments: [
        ("fd00:db8:1::2", "fd00:db8:1::2"),
        ("FD00:0DB8:0001:0000:0000:0000:0000:0002", "fd00:db8:1::2"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
        ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("2001:db8::0:1", "2001:db8::1"),
    ])
    func ipv6(_ input: String, _ printed: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == printed)
        #expect(IPAddress(printed) == address)
    }

    @Test("invalid addresses are rejected", arguments: [
        "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "", "1:2", ":::", "1::2::3",
        "12345::", "1:2:3:4:5:6:7:8:9", "g::1", "::1.2.3", "1:2:3:4:5:6:7::8:9",
    ])
    func invalid(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("prefix arithmetic")
    func prefixes() throws {
        let subnet = try #require(Prefix("172.17.0.0/16"))
        #expect(subnet.contains(IPAddress("172.17.255.255")!))
        #expect(!subnet.contains(IPAddress("172.18.0.0")!))
        #expect(subnet.last == IPAddress("172.17.255.255"))
        #expect(subnet.overlaps(Prefix("172.17.3.0/24")!))
        #expect(!subnet.overlaps(Prefix("172.18.0.0/16")!))
        #expect(!Prefix("172.17.0.1/16")!.isCanonical)
        #expect(Prefix("10.0.0.1")!.description == "10.0.0.1/32")
        #expect(Prefix("fd00::/64")!.contains(IPAddress("fd00::2")!))
        #expect(Prefix("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(Prefix("10.0.0.0/33") == nil)
    }
}
