// Reply: what a fake Hub route decides to answer, before it is written.
//
// A route builds a Reply synchronously (everything it needs is in memory);
// the listener then applies faults, latency and bandwidth limits and writes
// it: the head, then the body streamed in chunks. A body is either a small
// string (JSON, error text) or a window of a file's Content, which is never
// materialised as a whole.
//
// Thread safety: a plain value; the Content it points to is immutable and
// owned by the Model, which outlives every connection.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/fakehub/content.h"

namespace hubcache::fakehub {

struct Reply {
  unsigned status = 200;
  // In order; Content-Length is added by the writer.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body when `content` is null.
  std::string body;
  // File content: bytes [offset, offset + length) of *content.
  const Content* content = nullptr;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  // A control endpoint (/_fake/): no faults, no latency, not logged.
  bool control = false;

  void Add(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  std::uint64_t BodySize() const { return content != nullptr ? length : body.size(); }
  // Offset in the file of body byte `pos` (for flip_offset).
  std::uint64_t FileOffset(std::uint64_t pos) const {
    return content != nullptr ? offset + pos : pos;
  }
  // Copies body bytes [pos, pos + out.size()).
  void ReadBody(std::uint64_t pos, std::span<char> out) const {
    if (content != nullptr) {
      content->Read(offset + pos, out);
    } else {
      body.copy(out.data(), out.size(), pos);
    }
  }
};

// A JSON reply (Content-Type application/json).
Reply JsonReply(unsigned status, std::string json);

// The Hub's error answer (HUB_PROTOCOL.md §3.2): X-Error-Code (omitted when
// `code` is empty), X-Error-Message and a JSON body {"error": message}.
Reply ErrorReply(unsigned status, std::string_view code, std::string_view message);

// A 200, 206 or 416 for the Range header `range` (may be empty) over
// `content`, with Content-Range and Accept-Ranges set (RFC 9110 semantics as
// in HUB_PROTOCOL.md §8.2). The caller adds the other headers.
Reply ContentReply(std::string_view range, const Content& content);

// The header-safe form of a message: printable ASCII only.
std::string HeaderSafe(std::string_view text);

}  // namespace hubcache::fakehub
