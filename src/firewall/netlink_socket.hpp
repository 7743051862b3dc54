// NetlinkSocket: one NETLINK_NETFILTER socket (libmnl), the only place relayban sends and
// receives nftables messages. A transaction goes out in one sendmsg(); the kernel handles it
// inside that call, so every ack is queued by the time it returns and is drained without
// waiting. Owned by one thread.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "relayban/core/result.hpp"

struct mnl_socket;

namespace relayban::nft {

struct Ack {
  uint32_t seq;
  int error;            // 0 = success, else a positive errno
  uint32_t offset = 0;  // extended ack: byte offset into the failing message, 0 if none
};

class NetlinkSocket {
 public:
  ~NetlinkSocket();
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  static Result<std::unique_ptr<NetlinkSocket>> Open();

  // Sends one transaction and returns every ack and error that came back. An ENOBUFS while
  // draining means acks were lost: the result is then an error with `lost_acks` set.
  struct SendResult {
    std::vector<Ack> acks;
    bool lost_acks = false;
  };
  Result<SendResult> SendBatch(const std::vector<char>& bytes);
  // Sends a request and passes every reply message to `on_message` until NLMSG_DONE (a
  // dump) or an ack/error (a plain request). A negative errno in the result is the kernel's
  // answer, e.g. ENOENT for an object that does not exist.
  Result<int> Request(const std::vector<char>& bytes, const std::function<void(const nlmsghdr*)>& on_message);

  uint32_t NextSeq() { return seq_++; }
  uint32_t portid() const;

 private:
  explicit NetlinkSocket(mnl_socket* s) : sock_(s) {}
  Result<void> EnsureSendBuffer(size_t bytes);
  mnl_socket* sock_;
  uint32_t seq_ = 1;
  size_t sndbuf_ = 0;
};

}  // namespace relayban::nft
