import Foundation
import Testing
import WeirLab
import WeirModel

/// The lab's topology and names, derived from policies; no kernel needed.
struct LabTopologyTests {
    func prefix(_ text: String) -> Prefix { Prefix(text)! }
    func address(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test("the seed host's topology")
    func seed() throws {
        let topology = try LabPolicy.seed().topology
        #expect(topology.uplinks == [.init(interface: "enp0s8", addresses: [prefix("10.0.3.121/24")], peerAddresses: [prefix("10.0.3.122/24")])])
        #expect(topology.bridges == [.init(network: "bridge", device: "docker0", gateways: [prefix("172.17.0.1/16")], isInternal: false, hairpin: false)])
        #expect(topology.containers == [
            .init(name: "c1", endpoints: [.init(bridge: 0, interface: "eth0", addresses: [prefix("172.17.0.2/16")], defaultRoutes: [address("172.17.0.1")])],
                  published: [.init(hostPort: 10080, containerPort: 80, transport: .tcp)]),
            .init(name: "c2", endpoints: [.init(bridge: 0, interface: "eth0", addresses: [prefix("172.17.0.3/16")], defaultRoutes: [address("172.17.0.1")])]),
        ])
        #expect(!topology.hasIPv6)
    }

    @Test("two networks, IPv6, internal networks and userland-proxy off")
    func variants() throws {
        let topology = try LabPolicy.text("""
            docker classic
            host h {
                interface eth9 address 192.168.1.254/24 address fd00:1::1/64
                userland-proxy off
                ip6tables on
            }
            network front { bridge br-front; subnet 10.1.0.0/24; subnet fd00:2::/64 }
            network back { bridge br-back; subnet 10.2.0.0/24; internal on }
            container app {
                network back address 10.2.0.5
                network front address 10.1.0.7 address fd00:2::7
            }
            """).topology
        #expect(topology.uplinks.first?.peerAddresses == [prefix("192.168.1.1/24"), prefix("fd00:1::2/64")], "after .254 comes .1")
        #expect(topology.bridges.map(\.gateways) == [[prefix("10.1.0.1/24"), prefix("fd00:2::1/64")], [prefix("10.2.0.1/24")]])
        #expect(topology.bridges.map(\.hairpin) == [true, true])
        #expect(topology.bridges.map(\.isInternal) == [false, true])
        let app = try #require(topology.container(named: "app"))
        #expect(app.endpoints.map(\.interface) == ["eth0", "eth1"])
        #expect(app.endpoints[0].defaultRoutes.isEmpty, "an internal network gives no default route")
        #expect(app.endpoints[1].defaultRoutes == [address("10.1.0.1"), address("fd00:2::1")])
        #expect(topology.hasIPv6)
    }

    @Test("the external peer's address: next free one in the subnet", arguments: [
        ("10.0.3.121/24", "10.0.3.122"), ("10.0.3.254/24", "10.0.3.1"), ("10.0.3.1/30", "10.0.3.2"),
        ("10.0.3.2/30", "10.0.3.1"), ("10.0.3.0/31", "10.0.3.1"), ("10.0.3.1/31", "10.0.3.0"),
        ("fd00::1/64", "fd00::2"), ("fd00::ffff:ffff:ffff:ffff/64", "fd00::1"),
    ])
    func peerAddress(_ host: String, _ expected: String) {
        #expect(LabTopology.nextFreeAddress(after: prefix(host)) == address(expected))
    }

    @Test("no room for a peer in a /32 or /128, or when every address is taken")
    func noPeerAddress() {
        #expect(LabTopology.nextFreeAddress(after: prefix("10.0.3.1/32")) == nil)
        #expect(LabTopology.nextFreeAddress(after: prefix("fd00::1/128")) == nil)
        #expect(LabTopology.nextFreeAddress(after: prefix("10.0.3.1/30"), avoiding: [address("10.0.3.2")]) == nil)
        #expect(LabTopology.nextFreeAddress(after: prefix("10.0.3.1/29"), avoiding: [address("10.0.3.2")]) == address("10.0.3.3"))
    }

    @Test("names: weirlab-<pid>-<hex>-host / -peerN / -ctr-NAME, and the registry reads them back")
    func names() throws {
        let id = try #require(LabID("4711-00c0ffee"))
        #expect(id.owner == "4711" && id.tag == "00c0ffee" && id.ownerProcessID == 4711)
        var topology = try LabPolicy.seed().topology
        topology.containers.append(.init(name: "we/ird", endpoints: []))
        topology.containers.append(.init(name: "we_ird", endpoints: []))
        let layout = LabLayout(topology: topology, id: id)
        #expect(layout.namespaces == [
            "weirlab-4711-00c0ffee-host", "weirlab-4711-00c0ffee-peer0", "weirlab-4711-00c0ffee-ctr-c1",
            "weirlab-4711-00c0ffee-ctr-c2", "weirlab-4711-00c0ffee-ctr-we_ird", "weirlab-4711-00c0ffee-ctr3",
        ])
        #expect(layout.bridgePorts == [["veth0x0"], ["veth1x0"], [], []])
        for name in layout.namespaces {
            #expect(LabRegistry.labID(ofNamespace: name) == id)
            #expect(id.owns(name))
        }
        #expect(LabRegistry.labID(ofNamespace: "weir-test-1-ab") == nil)
        #expect(!id.owns("weirlab-4711-00c0ffee0-host"))
        #expect(LabID("a-b-c") == nil && LabID("x") == nil && LabID("a/b-c") == nil)
        let fresh = LabID.generate()
        #expect(fresh.owner == String(getpid()) && fresh.tag.count == 8)
    }
}
