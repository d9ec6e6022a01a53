// The parts of the RPC that read untrusted bytes, apart from the session (fuzzed): base64,
// the Host header, a request's envelope in either dialect (Transmission's own, and the
// JSON-RPC 2.0 of Transmission 4.1 with snake_case names), and torrent selections.
#pragma once

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/text.hpp"

namespace shoal::daemon {

// Base64 (RFC 4648, also its URL alphabet; whitespace skipped) for Transmission's metainfo
// field, the pieces bitfield and Basic authentication.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view in);
[[nodiscard]] std::string base64_encode(std::string_view in);

// The host part of a Host header: no port, no brackets, lower case.
[[nodiscard]] std::string host_part(std::string_view host_header);

// One request. JSON-RPC 2.0 requests are translated to the legacy names on the way in
// (method torrent_get -> torrent-get, params keys and "fields" to Transmission 3.00's
// names), so the methods know one dialect.
struct rpc_call {
  std::string method;
  boost::json::object args;
  bool jsonrpc = false;
  bool notification = false;  // JSON-RPC 2.0 without "id": no answer
  boost::json::value id;      // JSON-RPC 2.0 "id" / legacy "tag" (null when absent)
};
// What is wrong with a request that cannot be run, with its JSON-RPC 2.0 error code.
struct rpc_error {
  int code = -32600;
  std::string message;
};
[[nodiscard]] std::optional<rpc_error> parse_rpc(const boost::json::value& v, rpc_call& out);

// Transmission's legacy name (camelCase or kebab-case) in snake_case: "percentDone" ->
// "percent_done", "peer-limit" -> "peer_limit", "isUTP" -> "is_utp".
[[nodiscard]] std::string snake_name(std::string_view legacy);
// The legacy name for a snake_case one, of a torrent or (`session`) of the session; unknown
// names are returned as they are.
[[nodiscard]] std::string legacy_name(std::string_view snake, bool session = false);
// Every object key of `v`, recursively, in snake_case (a JSON-RPC 2.0 answer).
[[nodiscard]] boost::json::value snake_keys(const boost::json::value& v);

// The answer envelope: legacy {"result": "success" | error, "arguments", "tag"} or
// JSON-RPC 2.0 {"jsonrpc", "result" | "error", "id"}.
[[nodiscard]] boost::json::value rpc_answer(const rpc_call& call, const std::string& result, boost::json::object args);
[[nodiscard]] boost::json::value rpc_failure(const rpc_error& e, bool jsonrpc, const boost::json::value& id);

// "ids": absent (all), a number, a hash string, "recently-active", or an array of numbers
// and hash strings.
struct id_selection {
  bool all = true;
  bool recent = false;
  std::set<std::uint32_t> ids;
  std::set<std::string> hashes;  // lower-case hex
};
[[nodiscard]] result<id_selection> parse_ids(const boost::json::object& args);
// Hex info-hashes (either case) as digests; strings that are not 40 hex digits name nothing.
template <class Strings>
[[nodiscard]] std::vector<sha1_digest> digests_of(const Strings& hexes) {
  std::vector<sha1_digest> out;
  for (const auto& hex : hexes) {
    auto raw = from_hex(hex);
    if (!raw || raw->size() != 20) continue;
    sha1_digest d{};
    std::copy_n(raw->begin(), 20, d.begin());
    out.push_back(d);
  }
  return out;
}

// --- the qBittorrent Web API's inputs ---
// application/x-www-form-urlencoded (a POST body or a query string): '+' is a space, %XX a
// byte; at most 1000 fields, later duplicates replace earlier ones.
[[nodiscard]] std::map<std::string, std::string> parse_form(std::string_view text);
// multipart/form-data: each part's name, file name, content type and bytes; nullopt when
// the body does not follow the boundary (at most 1000 parts).
struct form_part {
  std::string name, filename, content_type, data;
};
[[nodiscard]] std::optional<std::vector<form_part>> parse_multipart(std::string_view body, std::string_view boundary);
// The boundary parameter of a multipart Content-Type.
[[nodiscard]] std::optional<std::string> multipart_boundary(std::string_view content_type);
// One cookie's value from a Cookie header.
[[nodiscard]] std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

}  // namespace shoal::daemon
