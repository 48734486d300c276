// WeirNetlink — the only module that talks to the kernel's nf_tables, and the only one that
// imports CNftnl (libnftnl 1.2.4 + libmnl 1.0.4).
//
// * `NftBatch` — one transaction as netlink bytes. `NftBatch.replacing(_:)` replaces each table
//   of a program (NEWTABLE create / DELTABLE / NEWTABLE create|excl, chains, sets — NEWSET with
//   a per-table transaction id, NEWSETELEM of at most 1000 elements — and rules with
//   NLM_F_CREATE|NLM_F_APPEND); `NftBatch(decoding:)` validates a batch file and recovers the
//   program; `explain()` lists it in libnftnl's debug notation. `NftBatch+Sets.swift` holds
//   what a set may be and how its elements are written (shared by writer and reader).
// * `NetlinkSocket` — a NETLINK_NETFILTER socket, optionally in a named network namespace.
// * `NftTransaction.apply` — GETGEN, the batch guarded by NFNL_BATCH_GENID in one sendmsg,
//   errors mapped back to (message, table, chain, rule, expression); `checkOnly` sends the
//   batch without BATCH_END.
// * `NftReadback` — GETGEN-consistent dumps of tables, chains, rules, sets and set elements,
//   decoded to the program form; `kernelForm(of:)` is the normalisation a readback comparison
//   needs.
//
// Layout: `Funnels.swift` holds every C call (recorded by `CallRecorder` in tests);
// `Owners.swift` the libnftnl objects that free themselves; `Constants.swift` Swift names for
// C constants; one `Expressions+Kind.swift` per expression kind with its encoder and decoder.
//
// What the kernel (Linux 6.18) showed, and the tests pin down:
// * The kernel handles a batch synchronously inside sendmsg(): when it returns, every reply is
//   queued. No message asks for an ack, so success sends nothing back and a non-blocking drain
//   reads every error.
// * Without BATCH_END the kernel runs every message, reports errors exactly as for a commit,
//   then aborts: nothing changes and the generation stays. Jump loops are the exception: they
//   are found only by the commit-time validation (EMLINK on the looping rule), so a check
//   passes them — as `nft -c` does.
// * A stale NFNL_BATCH_GENID fails the whole batch with ERESTART on BATCH_BEGIN's sequence
//   number; generation 0 disables the check.
// * Errors carry NLMSGERR_ATTR_OFFS (offset of the offending attribute in the message), which
//   maps to the rule's expression, or for NEWSETELEM to the element. After a validation failure
//   every later NEWRULE of the batch reports the same errno; the first error is the cause.
// * Sets: a lookup finds a set of the same batch by name (and NFTA_LOOKUP_SET_ID); elements of
//   a constant/anonymous set must come before the rule that binds it; an anonymous set no rule
//   binds fails the commit (EINVAL, answered on the table's NEWTABLE); a verdict map element
//   jumping to a base chain is EOPNOTSUPP, overlapping ranges EEXIST, on the NEWSETELEM. The
//   kernel reports no set ids, hash elements in its own order, rbtree ranges as pairs, and a
//   vmap's data length as 16.
