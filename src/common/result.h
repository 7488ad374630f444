#pragma once
// Errors are values: every fallible operation in depot returns Result<T>, a T or a std::error_code
// whose category names the module that failed.
#include <string>
#include <system_error>
#include <utility>

#include <boost/outcome/std_result.hpp>

namespace depot {

template <class T>
using Result = boost::outcome_v2::std_result<T>;

using boost::outcome_v2::success;

// A value parsed from text, or a sentence saying what is wrong with the text
// ("port must be at most 65535"), for errors that are shown to a person as they are.
template <class T>
using ParseResult = boost::outcome_v2::std_checked<T, std::string>;

// An errno from a failed system call as an error_code.
inline std::error_code errno_code(int err) {
  return {err, std::generic_category()};
}

}  // namespace depot

// DEPOT_TRY(expr): returns the error of a Result-valued expression from the enclosing function.
// DEPOT_TRY(target, expr): the same, else `target = value` (target may be a declaration such as
// `auto x` or an existing variable).
#define DEPOT_TRY(...) \
  DEPOT_TRY_PICK_(__VA_ARGS__, DEPOT_TRY_ASSIGN_, DEPOT_TRY_CHECK_)(__VA_ARGS__)
#define DEPOT_TRY_PICK_(_1, _2, NAME, ...) NAME
#define DEPOT_TRY_CHECK_(expr)                                \
  do {                                                        \
    auto&& depot_try_result_ = (expr);                        \
    if (!depot_try_result_) return depot_try_result_.error(); \
  } while (false)
#define DEPOT_TRY_ASSIGN_(target, expr) DEPOT_TRY_ASSIGN_IMPL_(target, expr, __COUNTER__)
#define DEPOT_TRY_ASSIGN_IMPL_(target, expr, n) DEPOT_TRY_ASSIGN_IMPL2_(target, expr, n)
#define DEPOT_TRY_ASSIGN_IMPL2_(target, expr, n)    \
  auto&& depot_try_##n = (expr);                    \
  if (!depot_try_##n) return depot_try_##n.error(); \
  target = std::move(depot_try_##n).value()  // NOLINT(bugprone-macro-parentheses)
