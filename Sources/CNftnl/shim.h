/* The C fence: libnftnl and libmnl, plus what Swift cannot import directly (macros,
 * functions Glibc hides without _GNU_SOURCE). Only WeirNetlink imports this module. */
#include <stdint.h>
#include <errno.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/batch.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/gen.h>
#include <libnftnl/udata.h>

static inline size_t cnftnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }
extern int setns(int fd, int nstype);
static const int CNFTNL_CLONE_NEWNET = 0x40000000;
static inline uint32_t cnftnl_nlmsg_align(uint32_t len) { return NLMSG_ALIGN(len); }
static inline int cnftnl_nlmsgerr_error(const struct nlmsghdr *nlh)
{ const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh); return e->error; }
/* The sequence number of the request an error answers. */
static inline uint32_t cnftnl_nlmsgerr_seq(const struct nlmsghdr *nlh)
{ const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh); return e->msg.nlmsg_seq; }
