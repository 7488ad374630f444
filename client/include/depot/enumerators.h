#pragma once
// Enumerators for iteration jobs, each with its own cursor (a JSON value that resumes after the
// item it came with):
//   range(b, e)          integers b..e-1            cursor: the last integer done
//   each(items)          a container's elements     cursor: the index of the last one done
//   lines(path)          a text file's lines        cursor: the byte offset of the next line
//   csv_rows(path)       RFC 4180 CSV records       cursor: the byte offset of the next record
//   batches(e, n)        n items of e at a time     cursor: e's cursor after the batch
//   nested(outer, inner) each inner item of each outer item
//                                                   cursor: [outer cursor, inner cursor]
//   by_key(fetch, key)   pages of an external store cursor: the key of the last item done
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "depot/iteration.h"

namespace depot::enumerate {

inline Enumerator<int64_t> range(int64_t begin, int64_t end, const json& cursor) {
  int64_t next = cursor.is_number_integer() ? cursor.get<int64_t>() + 1 : begin;
  return Enumerator<int64_t>(
      [next, end]() mutable -> std::optional<Step<int64_t>> {
        if (next >= end) return std::nullopt;
        int64_t value = next++;
        return Step<int64_t>{value, value};
      },
      std::max<int64_t>(0, end - begin));
}

template <class T>
Enumerator<T> each(std::vector<T> items, const json& cursor) {
  size_t next = cursor.is_number_integer() ? cursor.get<size_t>() + 1 : 0;
  auto shared = std::make_shared<std::vector<T>>(std::move(items));
  const auto total = static_cast<int64_t>(shared->size());
  return Enumerator<T>(
      [shared, next]() mutable -> std::optional<Step<T>> {
        if (next >= shared->size()) return std::nullopt;
        size_t index = next++;
        return Step<T>{(*shared)[index], index};
      },
      total);
}

// Lines without their line ending ("\n" or "\r\n"). Throws Error when the file cannot be read.
Enumerator<std::string> lines(const std::filesystem::path& path, const json& cursor);

using CsvRow = std::vector<std::string>;
struct CsvOptions {
  char separator = ',';
  bool header = true;  // the first record names the columns: skipped, not an item
};
// RFC 4180 records: quoted fields may hold separators, "" and line breaks. Throws Error (with
// the byte offset) for a quote that never closes.
Enumerator<CsvRow> csv_rows(const std::filesystem::path& path, const json& cursor,
                            CsvOptions options = {});

template <class T>
Enumerator<std::vector<T>> batches(Enumerator<T> items, size_t size) {
  if (size == 0) throw Error("a batch needs at least one item");
  std::optional<int64_t> total;
  if (items.total())
    total = (*items.total() + static_cast<int64_t>(size) - 1) / static_cast<int64_t>(size);
  auto source = std::make_shared<Enumerator<T>>(std::move(items));
  return Enumerator<std::vector<T>>(
      [source, size]() -> std::optional<Step<std::vector<T>>> {
        Step<std::vector<T>> batch;
        while (batch.item.size() < size) {
          auto step = source->next();
          if (!step) break;
          batch.item.push_back(std::move(step->item));
          batch.cursor = std::move(step->cursor);
        }
        if (batch.item.empty()) return std::nullopt;
        return batch;
      },
      total);
}

template <class Outer, class Inner>
struct Nested {
  Outer outer;
  Inner inner;
};

// Every inner item of every outer item. `outer(cursor)` and `inner(outer_item, cursor)` build
// the levels from their cursors; the cursor is [the outer cursor that rebuilds the outer level
// at the current outer item, the inner cursor], and an inner level starts over (null) whenever
// the outer one moves on.
template <class Outer, class Inner>
Enumerator<Nested<Outer, Inner>> nested(
    std::function<Enumerator<Outer>(const json& cursor)> outer,
    std::function<Enumerator<Inner>(const Outer&, const json& cursor)> inner, const json& cursor) {
  struct State {
    std::function<Enumerator<Inner>(const Outer&, const json&)> make_inner;
    std::optional<Enumerator<Outer>> outer_level;
    std::optional<Enumerator<Inner>> inner_level;
    std::optional<Outer> current;
    json before_current;  // the outer cursor that yields `current` first
    json next_outer;      // the outer cursor after `current`
    json inner_cursor;
  };
  auto state = std::make_shared<State>();
  state->make_inner = std::move(inner);
  json outer_cursor;
  if (cursor.is_array() && cursor.size() == 2) {
    outer_cursor = cursor[0];
    state->inner_cursor = cursor[1];
  }
  state->before_current = outer_cursor;
  state->outer_level.emplace(outer(outer_cursor));
  return Enumerator<Nested<Outer, Inner>>([state]() -> std::optional<Step<Nested<Outer, Inner>>> {
    for (;;) {
      if (!state->current) {
        auto next_outer = state->outer_level->next();
        if (!next_outer) return std::nullopt;
        state->current = std::move(next_outer->item);
        state->next_outer = std::move(next_outer->cursor);
        state->inner_level.emplace(state->make_inner(*state->current, state->inner_cursor));
      }
      if (auto step = state->inner_level->next()) {
        json at = json::array({state->before_current, step->cursor});
        return Step<Nested<Outer, Inner>>{
            Nested<Outer, Inner>{*state->current, std::move(step->item)}, std::move(at)};
      }
      state->current.reset();
      state->inner_level.reset();
      state->before_current = state->next_outer;
      state->inner_cursor = nullptr;
    }
  });
}

// Pages through an external store in key order: `fetch_page(after)` returns the items after
// that key (null: from the first), in order, or none when there are no more; `key_of(item)` is
// an item's key. One page is held at a time.
template <class T>
Enumerator<T> by_key(std::function<std::vector<T>(const json& after)> fetch_page,
                     std::function<json(const T&)> key_of, const json& cursor) {
  struct State {
    std::function<std::vector<T>(const json&)> fetch_page;
    std::function<json(const T&)> key_of;
    std::vector<T> page;
    size_t next = 0;
    json after;
    bool exhausted = false;
  };
  auto state = std::make_shared<State>();
  state->fetch_page = std::move(fetch_page);
  state->key_of = std::move(key_of);
  state->after = cursor;
  return Enumerator<T>([state]() -> std::optional<Step<T>> {
    if (state->next >= state->page.size()) {
      if (state->exhausted) return std::nullopt;
      state->page = state->fetch_page(state->after);
      state->next = 0;
      if (state->page.empty()) {
        state->exhausted = true;
        return std::nullopt;
      }
    }
    T& item = state->page[state->next++];
    state->after = state->key_of(item);
    return Step<T>{std::move(item), state->after};
  });
}

}  // namespace depot::enumerate
