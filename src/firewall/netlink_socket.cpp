#include "netlink_socket.hpp"

#include "nft_codec.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace relayban::nft {
namespace {
std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }
}  // namespace

NetlinkSocket::~NetlinkSocket() {
  if (sock_) mnl_socket_close(sock_);
}

uint32_t NetlinkSocket::portid() const { return mnl_socket_get_portid(sock_); }

Result<std::unique_ptr<NetlinkSocket>> NetlinkSocket::Open() {
  mnl_socket* s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!s) return Fail(Errno("netlink socket"));
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    auto e = Errno("netlink bind");
    mnl_socket_close(s);
    return Fail(e);
  }
  int one = 1;
  // Extended acks point at the failing element; capped acks do not echo our whole message
  // back, so a few failures cannot overflow the receive buffer.
  mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &one, sizeof one);
  mnl_socket_setsockopt(s, NETLINK_CAP_ACK, &one, sizeof one);
  int rcv = 4 << 20;
  if (setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
    setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  auto sock = std::unique_ptr<NetlinkSocket>(new NetlinkSocket(s));
  sock->seq_ = static_cast<uint32_t>(time(nullptr));
  return sock;
}

Result<void> NetlinkSocket::EnsureSendBuffer(size_t bytes) {
  if (bytes + 4096 <= sndbuf_) return {};
  int fd = mnl_socket_get_fd(sock_);
  int want = static_cast<int>(bytes + (64 << 10));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want) < 0)
    return Fail(Errno("netlink send buffer"));
  int got = 0;
  socklen_t len = sizeof got;
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len);
  sndbuf_ = static_cast<size_t>(got);
  return {};
}

Result<NetlinkSocket::SendResult> NetlinkSocket::SendBatch(const std::vector<char>& bytes) {
  if (auto r = EnsureSendBuffer(bytes.size()); !r) return Fail(r.error());
  // The whole transaction must reach the kernel in one sendmsg: it is one skb there.
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (sendmsg(mnl_socket_get_fd(sock_), &msg, 0) < 0) return Fail(Errno("netlink sendmsg"));
  SendResult out;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(mnl_socket_get_fd(sock_), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        out.lost_acks = true;
        continue;
      }
      return Fail(Errno("netlink recv"));
    }
    auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    int len = static_cast<int>(n);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      Ack a{nlh->nlmsg_seq, -err->error, 0};
      if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
        // TLVs follow the error and, unless capped, the echoed request.
        size_t off = sizeof(nlmsgerr);
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - sizeof(nlmsghdr);
        ForEachAttr(nlh, off, [&](const nlattr* attr) {
          if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_OFFS && mnl_attr_get_payload_len(attr) == 4)
            a.offset = mnl_attr_get_u32(attr);
        });
      }
      out.acks.push_back(a);
    }
  }
  return out;
}

Result<int> NetlinkSocket::Request(const std::vector<char>& bytes, const std::function<void(const nlmsghdr*)>& on_message) {
  if (mnl_socket_sendto(sock_, bytes.data(), bytes.size()) < 0) return Fail(Errno("netlink send"));
  auto* req = reinterpret_cast<const nlmsghdr*>(bytes.data());
  bool dump = req->nlmsg_flags & NLM_F_DUMP;
  std::vector<char> buf(1 << 18);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(Errno("netlink recv"));
    }
    auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    int len = static_cast<int>(n);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq != req->nlmsg_seq) continue;  // a late ack of something else
      if (nlh->nlmsg_type == NLMSG_DONE) return 0;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        return err->error;  // 0 = ack of a plain request
      }
      on_message(nlh);
      if (!dump && !(nlh->nlmsg_flags & NLM_F_MULTI) && !(req->nlmsg_flags & NLM_F_ACK)) return 0;
    }
  }
}

}  // namespace relayban::nft
