// Latency from a log line appended to the address being in the kernel set, timed by the
// nftables event group (NFNLGRP_NFTABLES): no polling. Appends one failure line per new
// address to LOG (the daemon's jail must ban at the first failure) and waits for the
// NEWSETELEM event. Run inside the daemon's network namespace. usage: latency_bench LOG N
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* log = argv[1];
  int n = std::atoi(argv[2]);
  mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl || mnl_socket_bind(nl, 1 << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
    std::perror("netlink");
    return 1;
  }
  int rcv = 8 << 20;
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  std::vector<double> ms;
  char buf[1 << 16];
  for (int i = 0; i < n; ++i) {
    char line[512];
    time_t now = time(nullptr);
    struct tm tm {};
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    std::snprintf(line, sizeof line,
                  "%s mx1 postfix/smtpd[1]: warning: unknown[10.%d.%d.%d]: SASL LOGIN authentication failed: x\n", stamp,
                  (i >> 16) & 255, (i >> 8) & 255, i & 255);
    auto t0 = std::chrono::steady_clock::now();
    {
      std::ofstream f(log, std::ios::app);
      f << line;
    }
    bool seen = false;
    while (!seen) {
      pollfd p{mnl_socket_get_fd(nl), POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) {
        std::fprintf(stderr, "no set element event within 2 s for line %d\n", i);
        return 1;
      }
      ssize_t r = mnl_socket_recvfrom(nl, buf, sizeof buf);
      auto* nlh = reinterpret_cast<nlmsghdr*>(buf);
      int len = static_cast<int>(r);
      for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
        if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWSETELEM) seen = true;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("latency over %d bans: median %.2f ms, p99 %.2f ms, max %.2f ms\n", n, ms[ms.size() / 2],
              ms[ms.size() * 99 / 100], ms.back());
  return 0;
}
