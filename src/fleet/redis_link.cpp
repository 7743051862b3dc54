#include "relayban/fleet/redis_link.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <random>

namespace relayban {
namespace {

constexpr size_t kMaxUnparsed = 64 << 20;  // a reply larger than this is not one of ours
constexpr Seconds kMaxBackoff{30};

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default: out.type = RedisReply::Type::kNil; break;
  }
  return out;
}

RedisReply Lost(const std::string& why) {
  RedisReply r;
  r.type = RedisReply::Type::kError;
  r.str = "connection lost: " + why;
  return r;
}

}  // namespace

std::string RedisAddress::ToString() const {
  if (!path.empty()) return path;
  return (ip.is_v4() ? ip.ToString() : "[" + ip.ToString() + "]") + ":" + std::to_string(port);
}

std::optional<RedisAddress> RedisAddress::Parse(std::string_view text) {
  RedisAddress a;
  if (!text.empty() && text.front() == '/') {
    if (text.size() >= sizeof(sockaddr_un{}.sun_path)) return std::nullopt;
    a.path = std::string(text);
    return a;
  }
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto ip = IpAddress::Parse(host);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (!ip || port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
    return std::nullopt;
  a.ip = *ip;
  a.port = static_cast<uint16_t>(p);
  return a;
}

std::string EncodeRedisCommand(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) {
    s += "$" + std::to_string(a.size()) + "\r\n";
    s += a;
    s += "\r\n";
  }
  return s;
}

RedisLink::RedisLink(Poller& poller, const Clock& clock, Options options, std::function<void()> on_ready,
                     std::function<void(const std::string&)> on_down)
    : poller_(poller), clock_(clock), options_(std::move(options)), on_ready_(std::move(on_ready)),
      on_down_(std::move(on_down)) {}

RedisLink::~RedisLink() {
  if (fd_ >= 0) {
    poller_.Unwatch(fd_);
    close(fd_);
  }
  if (reader_) redisReaderFree(static_cast<redisReader*>(reader_));
}

void RedisLink::Start() {
  if (state_ == State::kIdle) Connect();
}

void RedisLink::Connect() {
  connect_started_ = clock_.Monotonic();
  const RedisAddress& a = options_.address;
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (!a.path.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, a.path.data(), a.path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
  } else if (a.ip.is_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = family = AF_INET;
    in->sin_port = htons(a.port);
    inet_pton(AF_INET, a.ip.ToString().c_str(), &in->sin_addr);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = family = AF_INET6;
    in6->sin6_port = htons(a.port);
    inet_pton(AF_INET6, a.ip.ToString().c_str(), &in6->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  fd_ = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    std::string why = std::string("socket: ") + std::strerror(errno);
    fd_ = -1;
    Drop(why);
    return;
  }
  if (family != AF_UNIX) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  }
  if (reader_) redisReaderFree(static_cast<redisReader*>(reader_));
  reader_ = redisReaderCreate();
  unparsed_ = 0;
  out_.clear();
  out_done_ = 0;
  state_ = State::kConnecting;
  int rc = connect(fd_, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN) {
    std::string why = "connect to " + a.ToString() + ": " + std::strerror(errno);
    close(fd_);
    fd_ = -1;
    Drop(why);
    return;
  }
  want_write_ = true;
  if (!poller_.Watch(fd_, Poller::kReadable | Poller::kWritable, [this](uint32_t what) { OnEvent(what); })) {
    close(fd_);
    fd_ = -1;
    Drop("cannot watch the socket");
  }
}

void RedisLink::Want(bool write) {
  if (fd_ < 0 || write == want_write_) return;
  want_write_ = write;
  poller_.Change(fd_, Poller::kReadable | (write ? uint32_t{Poller::kWritable} : uint32_t{0}));
}

void RedisLink::OnEvent(uint32_t what) {
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err != 0) return Drop("connect to " + options_.address.ToString() + ": " + std::strerror(err));
    if (!(what & (Poller::kWritable | Poller::kReadable))) return;
    state_ = State::kAuth;
    if (options_.password.empty()) {
      state_ = State::kReady;
      backoff_ = Seconds{0};
      if (on_ready_) on_ready_();
    } else {
      std::vector<std::string> auth{"AUTH"};
      if (!options_.user.empty()) auth.push_back(options_.user);
      auth.push_back(options_.password);
      out_ += EncodeRedisCommand(auth);
      callbacks_.push_back({[this](const RedisReply& r) {
                              if (!r.ok()) return Drop("AUTH refused: " + r.str);
                              state_ = State::kReady;
                              backoff_ = Seconds{0};
                              if (on_ready_) on_ready_();
                            },
                            clock_.Monotonic()});
    }
    if (fd_ >= 0) Write();
    return;
  }
  if (fd_ < 0) return;
  if (what & Poller::kReadable) Read();
  if (fd_ >= 0 && (what & Poller::kWritable)) Write();
  if (fd_ >= 0 && (what & Poller::kHangup) && !(what & Poller::kReadable)) Drop("closed by Redis");
}

bool RedisLink::Send(const std::vector<std::string>& args, Callback cb) {
  if (state_ != State::kReady) return false;
  out_ += EncodeRedisCommand(args);
  callbacks_.push_back({std::move(cb), clock_.Monotonic()});
  Write();
  return true;
}

void RedisLink::Write() {
  while (fd_ >= 0 && out_done_ < out_.size()) {
    ssize_t n = send(fd_, out_.data() + out_done_, out_.size() - out_done_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return Drop(std::string("write: ") + std::strerror(errno));
    }
    out_done_ += static_cast<size_t>(n);
  }
  if (fd_ < 0) return;
  if (out_done_ == out_.size()) {
    out_.clear();
    out_done_ = 0;
  } else if (out_done_ > (1 << 20)) {
    out_.erase(0, out_done_);
    out_done_ = 0;
  }
  Want(out_done_ < out_.size());
}

void RedisLink::Read() {
  char buf[65536];
  auto* reader = static_cast<redisReader*>(reader_);
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return Drop("closed by Redis");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return Drop(std::string("read: ") + std::strerror(errno));
    }
    if (redisReaderFeed(reader, buf, static_cast<size_t>(n)) != REDIS_OK) return Drop("bad reply from Redis");
    unparsed_ += static_cast<size_t>(n);
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader, &reply) != REDIS_OK) return Drop("bad reply from Redis");
      if (!reply) break;
      unparsed_ = 0;
      RedisReply r = Convert(static_cast<redisReply*>(reply));
      freeReplyObject(reply);
      if (callbacks_.empty()) return Drop("a reply nobody asked for");
      Callback cb = std::move(callbacks_.front().cb);
      callbacks_.pop_front();
      if (cb) cb(r);
      if (fd_ < 0 || reader_ != reader) return;  // the callback dropped the link
    }
    if (unparsed_ > kMaxUnparsed) return Drop("a reply larger than 64 MiB");
    if (static_cast<size_t>(n) < sizeof buf) return;
  }
}

void RedisLink::Close() {
  if (fd_ >= 0) {
    poller_.Unwatch(fd_);
    close(fd_);
    fd_ = -1;
  }
  state_ = State::kIdle;
  out_.clear();
  out_done_ = 0;
  want_write_ = false;
}

void RedisLink::Drop(const std::string& why) {
  Close();
  // Backoff: 1 s, doubling to 30 s, with up to a quarter of jitter so a fleet does not
  // reconnect in step after Redis returns.
  backoff_ = backoff_.count() == 0 ? Seconds{1} : std::min(kMaxBackoff, backoff_ * 2);
  static thread_local std::minstd_rand rng{std::random_device{}()};
  auto jitter = std::chrono::milliseconds(rng() % (backoff_.count() * 250 + 1));
  retry_at_ = clock_.Monotonic() + backoff_ + jitter;
  std::deque<Waiting> waiting;
  waiting.swap(callbacks_);
  RedisReply lost = Lost(why);
  for (auto& w : waiting)
    if (w.cb) w.cb(lost);
  if (on_down_) on_down_(why);
}

void RedisLink::Tick() {
  Clock::Steady now = clock_.Monotonic();
  if (state_ == State::kIdle) {
    if (now >= retry_at_) Connect();
    return;
  }
  if (state_ == State::kConnecting || state_ == State::kAuth) {
    if (now - connect_started_ > options_.timeout) Drop("no answer from " + options_.address.ToString());
    return;
  }
  if (!callbacks_.empty() && now - callbacks_.front().sent > options_.timeout)
    Drop("no reply within " + std::to_string(options_.timeout.count()) + " s");
}

}  // namespace relayban
