import Foundation
import Testing
import WeirNetlink

/// Opening sockets needs no privilege, so the call sequences are checked here without root.
@Suite struct NetlinkSocketTests {
    @Test func aSocketInTheCurrentNamespace() throws {
        let recorder = CallRecorder()
        try recorder.record {
            let socket = try NetlinkSocket()
            #expect(socket.namespace == nil)
            #expect(socket.portID != 0)
        }
        #expect(recorder.calls == ["mnl_socket_open", "mnl_socket_bind", "mnl_socket_setsockopt", "mnl_socket_setsockopt",
                                   "mnl_socket_get_fd", "mnl_socket_get_portid", "mnl_socket_close"])
    }

    @Test func aMissingNamespaceIsAnErrorValue() throws {
        let recorder = CallRecorder()
        let name = "weir-test-absent-\(getpid())"
        let error = recorder.record { #expect(throws: NetlinkError.self) { try NetlinkSocket(namespace: name) } }
        #expect(error?.kind == .namespace)
        #expect(error?.errno == ENOENT)
        #expect(error?.description == "cannot open network namespace /run/netns/\(name): No such file or directory (ENOENT)")
        // The thread's own namespace is opened first (to return to), and closed again.
        #expect(Array(recorder.calls.prefix(3)) == ["open", "open", "close"])
        #expect(!recorder.calls.contains("setns"))
    }

    @Test(arguments: ["", ".", "..", "a/b", "../../proc/1/ns/net"])
    func namespaceNamesArePlainFileNames(_ name: String) throws {
        let recorder = CallRecorder()
        let error = recorder.record { #expect(throws: NetlinkError.self) { try NetlinkSocket(namespace: name) } }
        #expect(error?.kind == .namespace)
        #expect(error?.message == "'\(name)' is not a network namespace name (expected a file name under /run/netns)")
        #expect(recorder.calls.isEmpty)
    }
}
