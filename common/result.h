// One error model for every module: a domain code, the errno that caused it
// (0 if none) and a message carrying its context ("start task: create tap: …").
// No exceptions cross module boundaries; functions return Result<T>.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace s2z {

// Numbered domain codes; never renumbered (they end up in logs and tests).
enum class ErrorCode {
  kInvalidArgument = 1,   // bad config or request from the caller
  kNotFound = 2,          // unknown task, missing file, process gone
  kAlreadyExists = 3,
  kFailedPrecondition = 4,// wrong state for the operation
  kUnavailable = 5,       // transient: worth retrying
  kTimeout = 6,
  kInternal = 7,          // a bug or an unexpected system failure
  kVmmError = 8,          // the hypervisor refused or failed
  kSystem = 9,            // a syscall failed; errnum says which
  kCancelled = 10,
  kUnimplemented = 11,
  kDataLoss = 12,         // a stored file is corrupt, truncated, stale or not ours
};

const char* errorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  int errnum = 0;
  std::string message;

  // Prefixes context: Error{"create tap: EPERM"}.wrap("start task") ->
  // "start task: create tap: EPERM".
  Error wrap(const std::string& context) const {
    return Error{code, errnum, context + ": " + message};
  }
  // Full text including the errno description, for logs and gRPC messages.
  std::string describe() const {
    if (errnum == 0) return message;
    return message + ": " + std::strerror(errnum);
  }
};

inline Error makeError(ErrorCode code, std::string message) {
  return Error{code, 0, std::move(message)};
}
// Captures the current errno; call right after the failing syscall.
inline Error systemError(std::string message, int errnum = errno) {
  return Error{ErrorCode::kSystem, errnum, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> okResult() { return Result<void>(); }

}  // namespace s2z

// Propagates an error with context: S2Z_TRY(tap.open(), "create tap");
#define S2Z_TRY(expr, context)                                   \
  do {                                                           \
    auto s2z_try_result_ = (expr);                               \
    if (!s2z_try_result_.ok()) return s2z_try_result_.error().wrap(context); \
  } while (0)
