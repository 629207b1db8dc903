// The /_fake/ control endpoints of the hub listener, for scripts that run the
// hubcache-fakehub binary (documented in README.md, "Control endpoints").
// Control requests are never faulted, delayed or logged.
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/fakehub/http_util.h"
#include "tests/fakehub/hub_service.h"

namespace hubcache::fakehub {
namespace {

using Json = nlohmann::ordered_json;

Reply ControlReply(unsigned status, const Json& doc) {
  Reply reply = JsonReply(status, doc.dump());
  reply.control = true;
  return reply;
}

Reply ControlError(unsigned status, std::string_view message) {
  return ControlReply(status, Json{{"error", message}});
}

std::optional<std::uint64_t> UintParam(const Params& query, std::string_view key) {
  const auto text = Param(query, key);
  if (!text) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

Json FaultJson(const Fault& f) {
  return Json{{"path_contains", f.path_contains}, {"fail_first", f.fail_first},
              {"fail_status", f.fail_status},     {"drop_after_bytes", f.drop_after_bytes},
              {"drop_times", f.drop_times},       {"stall", f.stall},
              {"flip_byte", f.flip_byte},         {"flip_offset", f.flip_offset},
              {"short_body", f.short_body},       {"ignore_range", f.ignore_range},
              {"gzip", f.gzip},                   {"length_delta", f.length_delta}};
}

// Throws std::invalid_argument for unknown keys or wrong types.
Fault ParseFault(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("a fault must be a JSON object");
  Fault f;
  for (const auto& [key, value] : j.items()) {
    if (key == "path_contains" && value.is_string()) {
      f.path_contains = value.get<std::string>();
    } else if (key == "fail_first" && value.is_number_integer()) {
      f.fail_first = value.get<int>();
    } else if (key == "fail_status" && value.is_number_unsigned()) {
      f.fail_status = value.get<unsigned>();
    } else if (key == "drop_after_bytes" && value.is_number_integer()) {
      f.drop_after_bytes = value.get<std::int64_t>();
    } else if (key == "drop_times" && value.is_number_integer()) {
      f.drop_times = value.get<int>();
    } else if (key == "stall" && value.is_boolean()) {
      f.stall = value.get<bool>();
    } else if (key == "flip_byte" && value.is_boolean()) {
      f.flip_byte = value.get<bool>();
    } else if (key == "flip_offset" && value.is_number_unsigned()) {
      f.flip_offset = value.get<std::uint64_t>();
    } else if (key == "short_body" && value.is_boolean()) {
      f.short_body = value.get<bool>();
    } else if (key == "ignore_range" && value.is_boolean()) {
      f.ignore_range = value.get<bool>();
    } else if (key == "gzip" && value.is_boolean()) {
      f.gzip = value.get<bool>();
    } else if (key == "length_delta" && value.is_number_integer()) {
      f.length_delta = value.get<std::int64_t>();
    } else {
      throw std::invalid_argument("unknown fault field or wrong type: '" + key + "'");
    }
  }
  return f;
}

Json LogJson(const LogEntry& e) {
  return Json{{"listener", e.listener},
              {"method", e.method},
              {"target", e.target},
              {"status", e.status},
              {"body_bytes_sent", e.body_bytes_sent},
              {"range", e.range},
              {"had_authorization", e.had_authorization}};
}

}  // namespace

Reply HubService::Control(const Request& request, Segments segments, const Params& query) {
  const std::string route = DecodeJoined(segments).value_or("");
  const http::verb method = request.method();
  const bool get = method == http::verb::get || method == http::verb::head;
  const bool post = method == http::verb::post;
  const bool del = method == http::verb::delete_;

  if (route == "health" && get) return ControlReply(200, Json{{"ok", true}});

  if (route == "move" && post) {
    const auto type = ParseRepoType(Param(query, "type").value_or("model"));
    const auto repo = Param(query, "repo");
    const auto branch = Param(query, "branch").value_or("main");
    const auto commit = Param(query, "commit");
    if (!type || !repo || !commit) return ControlError(400, "need type, repo, branch and commit");
    const std::string problem = model_.MoveBranch(*type, *repo, branch, *commit);
    if (!problem.empty()) return ControlError(404, problem);
    return ControlReply(
        200, Json{{"branch", branch},
                  {"commit", model_.Resolve(*model_.FindRepo(*type, *repo), branch)->sha}});
  }

  if (route == "commit" && get) {
    const auto type = ParseRepoType(Param(query, "type").value_or("model"));
    const auto repo_id = Param(query, "repo");
    const Repo* repo = type && repo_id ? model_.FindRepo(*type, *repo_id) : nullptr;
    if (repo == nullptr) return ControlError(404, "unknown repo");
    const fakehub::Commit* commit =
        model_.Resolve(*repo, Param(query, "revision").value_or("main"));
    if (commit == nullptr) return ControlError(404, "unknown revision");
    return ControlReply(200, Json{{"commit", commit->sha}});
  }

  if (route == "log" && get) {
    Json out = Json::array();
    for (const LogEntry& entry : knobs_.Log()) out.push_back(LogJson(entry));
    return ControlReply(200, out);
  }
  if ((route == "log" && del) || (route == "log/clear" && post)) {
    knobs_.ClearLog();
    return ControlReply(200, Json{{"ok", true}});
  }
  if (route == "bytes" && get) {
    const std::string needle = Param(query, "path_contains").value_or("");
    return ControlReply(200, Json{{"bytes", knobs_.BodyBytesSent(needle)},
                                  {"requests", knobs_.RequestCount(needle)}});
  }

  if (route == "faults" && get) {
    Json out = Json::array();
    for (const Fault& fault : knobs_.Faults()) out.push_back(FaultJson(fault));
    return ControlReply(200, out);
  }
  if (route == "faults" && post) {
    const Json body = Json::parse(request.body(), nullptr, false);
    try {
      std::vector<Fault> faults;
      if (body.is_array()) {
        for (const Json& item : body) faults.push_back(ParseFault(item));
      } else {
        faults.push_back(ParseFault(body));
      }
      for (Fault& fault : faults) knobs_.AddFault(std::move(fault));
      return ControlReply(200, Json{{"faults", knobs_.Faults().size()}});
    } catch (const std::invalid_argument& e) {
      return ControlError(400, e.what());
    }
  }
  if ((route == "faults" && del) || (route == "faults/clear" && post)) {
    knobs_.ClearFaults();
    return ControlReply(200, Json{{"ok", true}});
  }

  if (route == "bandwidth" && post) {
    const auto conn = UintParam(query, "conn");
    const auto total = UintParam(query, "total");
    if (!conn && !total) return ControlError(400, "need conn and/or total (bytes per second)");
    knobs_.SetBandwidth(conn.value_or(knobs_.conn_rate()), total.value_or(knobs_.total_rate()));
    return ControlReply(200, Json{{"conn", knobs_.conn_rate()}, {"total", knobs_.total_rate()}});
  }
  if (route == "latency" && post) {
    const auto ms = UintParam(query, "ms");
    if (!ms) return ControlError(400, "need ms");
    knobs_.SetLatency(std::chrono::milliseconds(*ms));
    return ControlReply(200, Json{{"ms", *ms}});
  }
  if (route == "signed-url-ttl" && post) {
    const auto seconds = UintParam(query, "seconds");
    if (!seconds) return ControlError(400, "need seconds");
    knobs_.SetSignedUrlTtl(std::chrono::seconds(*seconds));
    return ControlReply(200, Json{{"seconds", *seconds}});
  }
  return ControlError(404, fmt::format("no control endpoint {} /_fake/{}",
                                       std::string_view(request.method_string().data(),
                                                        request.method_string().size()),
                                       route));
}

}  // namespace hubcache::fakehub
