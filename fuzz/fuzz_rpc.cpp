// Fuzz target for the daemon's codecs of untrusted input: RPC request envelopes in both
// dialects, torrent selections, base64, the Host header and the settings file.
//
// Checks, for every input:
//  - nothing crashes; a request that parses has a method name, and a legacy request keeps
//    its arguments as sent;
//  - answers to a parsed request (success, error) are valid JSON and carry its id;
//  - base64: what decodes re-encodes to text that decodes to the same bytes;
//  - host_part never keeps an upper-case letter;
//  - forms stay within their bound, multipart parts within the input;
//  - feed items are bounded, each with a link and an id;
//  - an rss/* ruleDef that parses reads back the same from its JSON; its wildcard patterns
//    always compile; STATE/rss.json reads back the same after a save, within its bounds;
//  - a settings file that parses saves and reads back with the same RPC port and folder.
#include <algorithm>
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "daemon/config.hpp"
#include "daemon/feed.hpp"
#include "daemon/rpc_codec.hpp"

namespace json = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto dec = shoal::daemon::base64_decode(in)) {
    auto again = shoal::daemon::base64_decode(shoal::daemon::base64_encode(*dec));
    FUZZ_CHECK(again && *again == *dec);
  }
  for (char c : shoal::daemon::host_part(in))
    FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));

  boost::system::error_code ec;
  auto v = json::parse(in, ec);
  if (!ec) {
    const auto& one = v.is_array() && !v.as_array().empty() ? v.as_array()[0] : v;
    shoal::daemon::rpc_call call;
    if (!shoal::daemon::parse_rpc(one, call)) {
      FUZZ_CHECK(!call.method.empty() || one.as_object().at("method").as_string().empty());
      if (!call.jsonrpc && one.as_object().contains("arguments"))
        FUZZ_CHECK(call.args == one.as_object().at("arguments").as_object());
      (void)shoal::daemon::parse_ids(call.args);
      // Answers (success with a table, an error) are valid JSON with the request's id.
      json::object args;
      args["torrents"] = json::array{json::array{"hashString", "percentDone"}};
      for (const char* result : {"success", "file index out of range"}) {
        auto answer = shoal::daemon::rpc_answer(call, result, args);
        boost::system::error_code pec;
        auto back = json::parse(json::serialize(answer), pec);
        FUZZ_CHECK(!pec && back.is_object());
        const char* id_key = call.jsonrpc ? "id" : "tag";
        FUZZ_CHECK(back.as_object().contains(id_key) == answer.as_object().contains(id_key));
      }
      (void)shoal::daemon::snake_keys(one);
    }
  }

  // qBittorrent's inputs: forms (bounded), multipart bodies, cookies.
  auto form = shoal::daemon::parse_form(in);
  FUZZ_CHECK(form.size() <= 1000);
  if (auto b = shoal::daemon::multipart_boundary(in.substr(0, std::min<std::size_t>(in.size(), 300)))) {
    FUZZ_CHECK(!b->empty() && b->size() <= 200);
  }
  // The boundary is what the first line names ("--BOUNDARY\r\n"), or "B".
  std::string_view boundary = "B";
  if (in.size() > 2 && in.substr(0, 2) == "--") {
    auto eol = in.find("\r\n");
    if (eol != std::string_view::npos && eol > 2 && eol < 72) boundary = in.substr(2, eol - 2);
  }
  if (auto parts = shoal::daemon::parse_multipart(in, boundary)) {
    FUZZ_CHECK(parts->size() <= 1000);
    for (const auto& p : *parts)
      FUZZ_CHECK(p.data.size() <= in.size());
  }
  (void)shoal::daemon::cookie_value(in, "SID");

  // Feeds: bounded, every item has a link and an id, titles within 1 KiB.
  auto items = shoal::daemon::parse_feed(in);
  FUZZ_CHECK(items.size() <= 10000);
  for (const auto& it : items)
    FUZZ_CHECK(!it.link.empty() && !it.id.empty() && it.title.size() <= 1024);

  (void)shoal::daemon::parse_feed_head(in);

  // rss/*: a ruleDef, its filter (wildcards only: a client's regex is its own business),
  // and STATE/rss.json.
  if (auto rule = shoal::daemon::parse_rss_rule(in)) {
    const auto text = json::serialize(shoal::daemon::rss_rule_json(*rule));
    auto back = shoal::daemon::parse_rss_rule(text);
    FUZZ_CHECK(back && json::serialize(shoal::daemon::rss_rule_json(*back)) == text);
    if (!rule->use_regex) {
      auto [include, exclude] = shoal::daemon::rss_rule_patterns(*rule);
      auto filter = shoal::daemon::feed_filter::make(include, exclude);
      FUZZ_CHECK(filter);
      (void)filter->matches("Show.S01E01.mkv");
    }
  }
  if (auto st = shoal::daemon::parse_rss_state(in)) {
    FUZZ_CHECK(st->feeds.size() <= shoal::daemon::rss_max_feeds && st->rules.size() <= shoal::daemon::rss_max_rules);
    const auto text = shoal::daemon::rss_state_json(*st);
    auto back = shoal::daemon::parse_rss_state(text);
    FUZZ_CHECK(back && shoal::daemon::rss_state_json(*back) == text);
  }

  auto cfg = shoal::daemon::parse_config(in, shoal::daemon::daemon_config{});
  if (cfg) {
    auto o = shoal::daemon::config_json(*cfg);
    auto back = shoal::daemon::parse_config(json::serialize(o), shoal::daemon::daemon_config{});
    FUZZ_CHECK(back && back->rpc_port == cfg->rpc_port && back->download_dir == cfg->download_dir);
  }
  return 0;
}
