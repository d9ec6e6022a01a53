#include "daemon/rpc_codec.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace shoal::daemon {

namespace json = boost::json;

// --- base64 -----------------------------------------------------------------------------

namespace {
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}
}  // namespace

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;  // line-wrapped base64
    if (c == '=') {
      padding = true;
      continue;
    }
    if (padding) return std::nullopt;  // data after padding
    const int v = b64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::nullopt;  // a lone 6-bit group is not a byte
  return out;
}

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (static_cast<std::uint8_t>(in[i]) << 16) | (static_cast<std::uint8_t>(in[i + 1]) << 8) |
                            static_cast<std::uint8_t>(in[i + 2]);
    out += b64[(v >> 18) & 63];
    out += b64[(v >> 12) & 63];
    out += b64[(v >> 6) & 63];
    out += b64[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<std::uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<std::uint8_t>(in[i + 1]) << 8;
    out += b64[(v >> 18) & 63];
    out += b64[(v >> 12) & 63];
    out += i + 1 < in.size() ? b64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The host part of a Host header: no port, no brackets, lower case.
std::string host_part(std::string_view h) {
  std::string s(h);
  if (!s.empty() && s.front() == '[') {
    auto e = s.find(']');
    s = s.substr(1, e == std::string::npos ? std::string::npos : e - 1);
  } else if (auto c = s.rfind(':'); c != std::string::npos && s.find(':') == c) {
    s = s.substr(0, c);
  }
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

// "ids": absent (all), a number, a hash string, "recently-active", or an array of numbers and hashes.
result<id_selection> parse_ids(const json::object& args) {
  id_selection sel;
  auto it = args.find("ids");
  if (it == args.end()) return sel;
  sel.all = false;
  auto one = [&](const json::value& v) -> bool {
    if (v.is_int64() && v.as_int64() > 0) {
      sel.ids.insert(static_cast<std::uint32_t>(v.as_int64()));
    } else if (v.is_uint64()) {
      sel.ids.insert(static_cast<std::uint32_t>(v.as_uint64()));
    } else if (v.is_double() && v.as_double() >= 1 && std::floor(v.as_double()) == v.as_double()) {
      sel.ids.insert(static_cast<std::uint32_t>(v.as_double()));
    } else if (v.is_string()) {
      std::string s(v.as_string());
      if (s == "recently-active" || s == "recently_active") {
        sel.recent = true;
      } else {
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        sel.hashes.insert(s);
      }
    } else {
      return false;
    }
    return true;
  };
  const auto& v = it->value();
  if (v.is_array()) {
    for (const auto& e : v.as_array())
      if (!one(e)) return error{errc::invalid_argument, "ids: expected numbers or hash strings"};
  } else if (!one(v)) {
    return error{errc::invalid_argument, "ids: expected a number, a hash string, an array or \"recently-active\""};
  }
  return sel;
}

// --- the two dialects -----------------------------------------------------------------------

namespace {
// Transmission's legacy names whose snake_case forms a JSON-RPC 2.0 client sends; names
// that are the same in both (id, name, status, ...) need no entry.
constexpr std::string_view legacy_names[] = {
    // torrent fields
    "activityDate",
    "addedDate",
    "bandwidthPriority",
    "corruptEver",
    "dateCreated",
    "desiredAvailable",
    "doneDate",
    "downloadDir",
    "downloadedEver",
    "downloadLimit",
    "downloadLimited",
    "editDate",
    "errorString",
    "etaIdle",
    "file-count",
    "fileStats",
    "hashString",
    "haveUnchecked",
    "haveValid",
    "honorsSessionLimits",
    "isFinished",
    "isPrivate",
    "isStalled",
    "leftUntilDone",
    "magnetLink",
    "manualAnnounceTime",
    "maxConnectedPeers",
    "metadataPercentComplete",
    "peer-limit",
    "peersConnected",
    "peersFrom",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentComplete",
    "percentDone",
    "pieceCount",
    "pieceSize",
    "primary-mime-type",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "secondsDownloading",
    "secondsSeeding",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sizeWhenDone",
    "startDate",
    "torrentFile",
    "totalSize",
    "trackerList",
    "trackerStats",
    "uploadedEver",
    "uploadLimit",
    "uploadLimited",
    "uploadRatio",
    "webseedsSendingToUs",
    // torrent-add, torrent-set, torrent-remove arguments ("download-dir": see legacy_args)
    "files-wanted",
    "files-unwanted",
    "priority-high",
    "priority-normal",
    "priority-low",
    "delete-local-data",
    "trackerAdd",
    "trackerRemove",
    "trackerReplace",
};
// Session fields (session-get, session-set): "download_dir" here is "download-dir", not a
// torrent's "downloadDir".
constexpr std::string_view legacy_session_names[] = {
    "download-dir",
    "seedRatioLimit",
    "alt-speed-down",
    "alt-speed-enabled",
    "alt-speed-time-begin",
    "alt-speed-time-day",
    "alt-speed-time-enabled",
    "alt-speed-time-end",
    "alt-speed-up",
    "blocklist-enabled",
    "blocklist-size",
    "blocklist-url",
    "cache-size-mb",
    "config-dir",
    "dht-enabled",
    "download-dir-free-space",
    "download-queue-enabled",
    "download-queue-size",
    "idle-seeding-limit",
    "idle-seeding-limit-enabled",
    "incomplete-dir",
    "incomplete-dir-enabled",
    "lpd-enabled",
    "peer-limit-global",
    "peer-limit-per-torrent",
    "peer-port",
    "peer-port-random-on-start",
    "pex-enabled",
    "port-forwarding-enabled",
    "queue-stalled-enabled",
    "queue-stalled-minutes",
    "rename-partial-files",
    "rpc-version",
    "rpc-version-minimum",
    "rpc-version-semver",
    "script-torrent-done-enabled",
    "script-torrent-done-filename",
    "seed-queue-enabled",
    "seed-queue-size",
    "seedRatioLimited",
    "session-id",
    "speed-limit-down",
    "speed-limit-down-enabled",
    "speed-limit-up",
    "speed-limit-up-enabled",
    "start-added-torrents",
    "trash-original-torrent-files",
    "utp-enabled",
    "size-bytes",
    "port-is-open",
};

using name_table = std::map<std::string, std::string, std::less<>>;
template <std::size_t N>
name_table make_table(const std::string_view (&names)[N]) {
  name_table m;
  for (auto n : names)
    m.emplace(snake_name(n), std::string(n));
  return m;
}
const name_table& torrent_table() {
  static const auto t = make_table(legacy_names);
  return t;
}
const name_table& session_table() {
  static const auto t = make_table(legacy_session_names);
  return t;
}
std::string lookup(const name_table& t, std::string_view snake) {
  if (auto it = t.find(snake); it != t.end()) return it->second;
  return std::string(snake);
}

json::object legacy_args(const json::object& params, std::string_view method) {
  const auto& table = method.rfind("session-", 0) == 0 ? session_table() : torrent_table();
  auto name_of = [&](std::string_view k) {
    if (method == "torrent-add" && k == "download_dir") return std::string("download-dir");
    return lookup(table, k);
  };
  json::object out;
  for (const auto& [k, v] : params) {
    auto name = name_of(std::string_view(k.data(), k.size()));
    if (name == "fields" && v.is_array()) {
      json::array fields;
      for (const auto& f : v.as_array())
        fields.emplace_back(f.is_string() ? json::value(lookup(table, std::string_view(f.as_string()))) : f);
      out[name] = std::move(fields);
    } else {
      out[name] = v;
    }
  }
  return out;
}
}  // namespace

std::string snake_name(std::string_view legacy) {
  std::string out;
  out.reserve(legacy.size() + 4);
  for (std::size_t i = 0; i < legacy.size(); ++i) {
    const char c = legacy[i];
    if (c == '-') {
      out += '_';
    } else if (c >= 'A' && c <= 'Z') {
      const char prev = i ? legacy[i - 1] : '\0';
      if ((prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9')) out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

std::string legacy_name(std::string_view snake, bool session) {
  return lookup(session ? session_table() : torrent_table(), snake);
}

json::value snake_keys(const json::value& v) {
  if (v.is_object()) {
    json::object o;
    for (const auto& [k, x] : v.as_object())
      o[snake_name(std::string_view(k.data(), k.size()))] = snake_keys(x);
    return o;
  }
  if (v.is_array()) {
    json::array a;
    for (const auto& x : v.as_array())
      a.emplace_back(snake_keys(x));
    return a;
  }
  return v;
}

std::optional<rpc_error> parse_rpc(const json::value& v, rpc_call& out) {
  if (!v.is_object()) return rpc_error{-32600, "a request is a JSON object"};
  const auto& o = v.as_object();
  auto m = o.find("method");
  if (auto j = o.find("jsonrpc"); j != o.end()) {
    out.jsonrpc = true;
    auto id = o.find("id");
    out.notification = id == o.end();
    if (id != o.end()) {
      const auto& iv = id->value();
      // A non-finite id (1e999 parses as infinity) could not be written back as JSON.
      if (!iv.is_string() && !iv.is_null() && !(iv.is_number() && std::isfinite(iv.to_number<double>())))
        return rpc_error{-32600, "id must be a string, a finite number or null"};
      out.id = id->value();
    }
    if (!j->value().is_string() || j->value().as_string() != "2.0") return rpc_error{-32600, "jsonrpc must be \"2.0\""};
    if (m == o.end() || !m->value().is_string()) return rpc_error{-32600, "no method name"};
    out.method = std::string(m->value().as_string());
    std::replace(out.method.begin(), out.method.end(), '_', '-');
    if (auto p = o.find("params"); p != o.end()) {
      if (!p->value().is_object()) return rpc_error{-32602, "params must be an object"};
      out.args = legacy_args(p->value().as_object(), out.method);
    }
    return std::nullopt;
  }
  if (auto t = o.find("tag"); t != o.end() && t->value().is_number() && std::isfinite(t->value().to_number<double>()))
    out.id = t->value();
  if (m == o.end() || !m->value().is_string()) return rpc_error{-32600, "no method name"};
  out.method = std::string(m->value().as_string());
  if (auto a = o.find("arguments"); a != o.end()) {
    if (!a->value().is_object()) return rpc_error{-32602, "arguments must be an object"};
    out.args = a->value().as_object();
  }
  return std::nullopt;
}

json::value rpc_failure(const rpc_error& e, bool jsonrpc, const json::value& id) {
  json::object r;
  if (jsonrpc) {
    r["jsonrpc"] = "2.0";
    json::object err;
    err["code"] = e.code;
    err["message"] = e.message;
    r["error"] = std::move(err);
    r["id"] = id;
  } else {
    r["arguments"] = json::object();
    r["result"] = e.message;
    if (!id.is_null()) r["tag"] = id;
  }
  return r;
}

json::value rpc_answer(const rpc_call& call, const std::string& result, json::object args) {
  if (!call.jsonrpc) {
    json::object r(args.storage());  // the same resource: the arguments are moved, not copied
    r["arguments"] = std::move(args);
    r["result"] = result;
    if (!call.id.is_null()) r["tag"] = call.id;
    return r;
  }
  if (result != "success") {
    const int code = result == "method name not recognized" ? -32601 : -32602;
    json::object r;
    r["jsonrpc"] = "2.0";
    json::object err, data;
    err["code"] = code;
    err["message"] = code == -32601 ? "Method not found" : "Invalid params";
    data["error_string"] = result;
    err["data"] = std::move(data);
    r["error"] = std::move(err);
    r["id"] = call.id;
    return r;
  }
  auto res = snake_keys(args);
  // A table's first row holds field names, which are values, not keys.
  if (auto* t = res.as_object().if_contains("torrents");
      t && t->is_array() && !t->as_array().empty() && t->as_array()[0].is_array()) {
    for (auto& f : t->as_array()[0].as_array())
      if (f.is_string()) f = json::string(snake_name(std::string_view(f.as_string())));
  }
  json::object r;
  r["jsonrpc"] = "2.0";
  r["result"] = std::move(res);
  r["id"] = call.id;
  return r;
}

// --- qBittorrent's forms ------------------------------------------------------------------------

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}
// A header parameter (name="value" or name=value) from a header value.
std::optional<std::string> header_param(std::string_view v, std::string_view name) {
  std::size_t pos = 0;
  while (pos < v.size()) {
    auto semi = v.find(';', pos);
    auto item = v.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    pos = semi == std::string_view::npos ? v.size() : semi + 1;
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    if (lower(item.substr(0, eq)) != name) continue;
    auto val = item.substr(eq + 1);
    if (val.size() >= 2 && val.front() == '"' && val.back() == '"') val = val.substr(1, val.size() - 2);
    return std::string(val);
  }
  return std::nullopt;
}
}  // namespace

std::map<std::string, std::string> parse_form(std::string_view text) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0, n = 0;
  while (pos <= text.size() && n < 1000) {
    auto amp = text.find('&', pos);
    auto item = text.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (!item.empty()) {
      auto eq = item.find('=');
      out[url_decode(item.substr(0, eq))] =
          eq == std::string_view::npos ? std::string() : url_decode(item.substr(eq + 1));
      ++n;
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return out;
}

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  auto semi = content_type.find(';');
  if (lower(content_type.substr(0, semi)).find("multipart/form-data") == std::string::npos) return std::nullopt;
  if (semi == std::string_view::npos) return std::nullopt;
  auto b = header_param(content_type.substr(semi + 1), "boundary");
  if (!b || b->empty() || b->size() > 200) return std::nullopt;
  return b;
}

std::optional<std::vector<form_part>> parse_multipart(std::string_view body, std::string_view boundary) {
  if (boundary.empty()) return std::nullopt;
  const std::string delim = "--" + std::string(boundary);
  std::vector<form_part> parts;
  auto pos = body.find(delim);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += delim.size();
  while (true) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return std::nullopt;
    pos += 2;
    const auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return std::nullopt;
    form_part part;
    auto head = body.substr(pos, head_end - pos);
    std::size_t hp = 0;
    while (hp <= head.size()) {
      auto eol = head.find("\r\n", hp);
      auto line = head.substr(hp, eol == std::string_view::npos ? std::string_view::npos : eol - hp);
      auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        auto key = lower(line.substr(0, colon));
        auto val = line.substr(colon + 1);
        while (!val.empty() && val.front() == ' ')
          val.remove_prefix(1);
        if (key == "content-disposition") {
          part.name = header_param(val, "name").value_or("");
          part.filename = header_param(val, "filename").value_or("");
        } else if (key == "content-type") {
          part.content_type = std::string(val);
        }
      }
      if (eol == std::string_view::npos) break;
      hp = eol + 2;
    }
    const auto data_start = head_end + 4;
    const auto next = body.find("\r\n" + delim, data_start);
    if (next == std::string_view::npos) return std::nullopt;
    part.data = std::string(body.substr(data_start, next - data_start));
    parts.push_back(std::move(part));
    if (parts.size() > 1000) return std::nullopt;
    pos = next + 2 + delim.size();
  }
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto semi = header.find(';', pos);
    auto item = header.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    pos = semi == std::string_view::npos ? header.size() : semi + 1;
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) return std::string(item.substr(eq + 1));
  }
  return std::nullopt;
}

}  // namespace shoal::daemon
