// Result<T> and Error: the one error type of relayban. Every fallible function returns a
// Result; no exception crosses a module boundary. Method names follow std::expected so the
// type can be swapped for it once our compilers have it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace relayban {

// Where an error was found in a text input (config file, log file). line and column are
// 1-based; 0 means unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  std::string ToString() const;
};

// What kind of failure an Error is, for callers that must act on it (retry, degrade, pick an
// exit code); the message is for people.
enum class ErrorKind : uint8_t {
  kOther,
  kNotFound,     // a file, object or daemon that is not there
  kPermission,   // EPERM/EACCES, or a control peer that may not send commands
  kNoSpace,      // the disk (or a quota) is full
  kCorrupt,      // a file whose content is not what it must be (a damaged database)
  kBusy,         // locked by someone else for now; retry
  kUnavailable,  // the daemon is not running
};

struct Error {
  std::string message;
  SourceLocation where;
  ErrorKind kind = ErrorKind::kOther;

  // "file:line:col: message", or just the message when there is no location.
  std::string ToString() const;
};

// Wraps an Error so that `return Fail(...)` reads naturally in functions returning Result.
struct Unexpected {
  Error error;
};

inline Unexpected Fail(std::string message) { return Unexpected{Error{std::move(message), {}}}; }
inline Unexpected Fail(ErrorKind kind, std::string message) { return Unexpected{Error{std::move(message), {}, kind}}; }
inline Unexpected Fail(Error error) { return Unexpected{std::move(error)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }
  template <class U>
  T value_or(U&& other) const& { return has_value() ? value() : T(std::forward<U>(other)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : error_(std::move(u.error)), ok_(false) {}  // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace relayban
