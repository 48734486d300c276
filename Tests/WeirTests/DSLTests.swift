import Testing
import WeirDiagnostics
import WeirDriver
import WeirDSL

/// The seed host, written with the Swift DSL.
let seedHostInSwift = Policy {
    Docker("classic")
    Host("docker-host") {
        Interface("enp0s8", addresses: "10.0.3.121/24")
        ForwardPolicy(.drop)
        UserlandProxy(true)
    }
    WeirDSL.Network("bridge") {
        Bridge("docker0")
        Subnet("172.17.0.0/16")
        Gateway("172.17.0.1")
    }
    WeirDSL.Container("c1") {
        Attach("bridge", address: "172.17.0.2")
        Publish(10080, to: 80, .tcp)
    }
    WeirDSL.Container("c2") {
        Attach("bridge", address: "172.17.0.3")
    }
}

@Suite("Swift DSL")
struct DSLTests {
    @Test("the DSL builds the same syntax tree as the parser for the seed host")
    func sameTree() throws {
        let (items, diagnostics) = PolicyLoader.load(path: Repository.policy("docker-default.weir"))
        #expect(diagnostics.isEmpty)
        #expect(seedHostInSwift.diagnostics.isEmpty)
        #expect(seedHostInSwift.ast == PolicyAST(items: items))
    }

    @Test("the DSL seed host compiles to the same output as Policies/docker-default.weir")
    func sameOutput() throws {
        let fromFile = Compiler.compile(path: Repository.policy("docker-default.weir"))
        let fromSwift = Compiler.compile(seedHostInSwift.ast)
        #expect(!fromSwift.hasErrors, "\(fromSwift.diagnostics)")
        #expect(fromSwift.artifacts == fromFile.artifacts)
        #expect(fromSwift.ruleset == fromFile.ruleset)
    }

    @Test("a difference in the DSL shows up in the tree and the output")
    func differenceIsSeen() {
        let other = Policy {
            Docker("classic")
            WeirDSL.Network("bridge") { Bridge("docker0"); Subnet("172.17.0.0/16"); ICC(false) }
        }
        let same = Policy {
            Docker("classic")
            WeirDSL.Network("bridge") { Bridge("docker0"); Subnet("172.17.0.0/16"); ICC(true) }
        }
        #expect(other.ast != same.ast)
        let output = Compiler.compile(other.ast).artifact(.iptables)?.contents ?? ""
        #expect(output.contains("-A FORWARD -i docker0 -o docker0 -j DROP"))
    }

    @Test("rules, sets and control flow in the DSL")
    func rulesAndSets() {
        let ports = [80, 443]
        let policy = Policy {
            Docker("classic")
            NamedSet("admins", .addresses, ["10.0.3.0/24"])
            WeirDSL.Network("bridge") { Bridge("docker0"); Subnet("172.17.0.0/16") }
            WeirDSL.Container("web") {
                Attach("bridge", address: "172.17.0.2")
                for port in ports { Publish(port, to: port + 8000) }
            }
            UserRules {
                Accept { In("enp0s8"); From("@admins"); Proto(.tcp); DPort("22"); State(.new) }
                Drop { In("enp0s8"); Comment("the rest") }
            }
        }
        #expect(policy.diagnostics.isEmpty)
        let output = Compiler.compile(policy.ast).artifact(.iptables)?.contents ?? ""
        #expect(output.contains("-A DOCKER-USER -s 10.0.3.0/24 -i enp0s8 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\n-A DOCKER-USER -i enp0s8 -m comment --comment \"the rest\" -j DROP\n-A DOCKER-USER -j RETURN\n"))
        #expect(output.contains("--dport 443 -j DNAT --to-destination 172.17.0.2:8443"))
    }

    @Test("a bad literal in the DSL is a diagnostic at its Swift call site")
    func badLiteral() throws {
        let line = #line + 3
        let policy = Policy {
            Docker("classic")
            WeirDSL.Network("bridge") { Bridge("docker0"); Subnet("172.17.0.0/33") }
        }
        let diagnostic = try #require(policy.diagnostics.first)
        #expect(diagnostic.message == "invalid address prefix '172.17.0.0/33'")
        #expect(diagnostic.range?.file.path == "WeirTests/DSLTests.swift")
        #expect(diagnostic.range?.line == line)
    }

    @Test("a semantic error in a DSL policy points at the Swift line that caused it")
    func semanticErrorLocation() throws {
        let line = #line + 4
        let policy = Policy {
            Docker("classic")
            WeirDSL.Network("bridge") { Bridge("docker0"); Subnet("172.17.0.0/16") }
            WeirDSL.Container("c1") { Attach("nope", address: "172.17.0.2") }
        }
        let result = Compiler.compile(policy.ast)
        let diagnostic = try #require(result.diagnostics.first)
        #expect(diagnostic.description == "WeirTests/DSLTests.swift:\(line):\(diagnostic.range!.column): error: unknown network 'nope'")
        #expect(result.ruleset == nil)
    }
}
