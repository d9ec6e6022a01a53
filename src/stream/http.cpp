#include "stream/http.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "stream/http_codec.hpp"
#include "stream/reader.hpp"

namespace shoal::stream {

struct body_state {
  std::shared_ptr<file_reader> reader;  // reset: the body ends (the client left, the service goes)
  std::uint64_t pos = 0;
  std::uint64_t end = 0;  // exclusive
  std::size_t step = 1u << 20;
  std::shared_ptr<void> hold;  // the service's slot
};

namespace {

using daemon::reply;
using daemon::request;
using daemon::response;
using daemon::stream_reply;
namespace http = daemon::http;
namespace beast = daemon::beast;

reply text(const request& req, http::status st, std::string body) {
  return {daemon::make_response(req, st, std::move(body) + "\n"), {}};
}

reply busy(const request& req, std::string why) {
  auto r = daemon::make_response(req, http::status::service_unavailable, std::move(why) + "\n");
  r.set(http::field::retry_after, "1");
  return {std::move(r), {}};
}

// One of the service's body slots, given back when the last copy of the body goes.
struct slot {
  explicit slot(std::shared_ptr<std::atomic<std::size_t>> n) : count(std::move(n)) {}
  ~slot() { --*count; }
  slot(const slot&) = delete;
  slot& operator=(const slot&) = delete;
  std::shared_ptr<std::atomic<std::size_t>> count;
};

// The next bytes of [pos, end), each read waiting for its pieces; nullopt at the end or on
// an error (the server then closes the connection: the body is short).
asio::awaitable<std::optional<std::string>> next_bytes(std::shared_ptr<body_state> b) {
  if (b->pos >= b->end || !b->reader) co_return std::nullopt;
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(b->step, b->end - b->pos));
  auto op = b->reader->read(b->pos, want);
  auto got = co_await std::move(op);
  if (got.first || got.second.empty()) co_return std::nullopt;
  std::string data = std::move(got.second);
  if (data.size() > b->end - b->pos) data.resize(static_cast<std::size_t>(b->end - b->pos));
  b->pos += data.size();
  co_return data;
}

// The whole .srt (the caller bounded its size), as WebVTT, in one chunk.
asio::awaitable<std::optional<std::string>> next_vtt(std::shared_ptr<body_state> b) {
  if (b->pos >= b->end) co_return std::nullopt;
  std::string srt;
  while (b->pos < b->end) {
    if (!b->reader) co_return std::nullopt;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(b->step, b->end - b->pos));
    auto op = b->reader->read(b->pos, want);
    auto got = co_await std::move(op);
    if (got.first || got.second.empty()) co_return std::nullopt;
    b->pos += got.second.size();
    srt += got.second;
  }
  co_return srt_to_vtt(srt);
}

// {"hash":H,"files":[{"index":I,"path":P,"size":N,"type":T,"media":B},...]}: what a player
// page needs to name a file's stream URL (pad files left out).
std::string files_json(const std::string& hash, const std::vector<file_entry>& files) {
  boost::json::array arr;
  for (const auto& f : files) {
    if (f.pad) continue;
    const auto type = content_type_for(f.path);
    arr.push_back(boost::json::object{{"index", f.index},
                                      {"path", f.path},
                                      {"size", f.size},
                                      {"type", boost::json::string_view(type.data(), type.size())},
                                      {"media", is_media(f.path)}});
  }
  return boost::json::serialize(boost::json::object{{"hash", hash}, {"files", std::move(arr)}});
}

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

http_service::http_service(session& s, http_options o) : s_(s), opt_(o) {}

http_service::~http_service() {
  for (auto& w : bodies_) {
    if (auto b = w.lock()) b->reader.reset();
  }
}

void http_service::keep(const std::shared_ptr<body_state>& b) {
  std::erase_if(bodies_, [](const auto& w) { return w.expired(); });
  bodies_.push_back(b);
}

reply http_service::handle(const request& req, bool tls) {
  const std::string_view target(req.target().data(), req.target().size());
  const auto q = target.find('?');
  const auto path = target.substr(0, q);
  const auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  auto route = parse_stream_route(path, query);
  if (!route) {
    return text(req, http::status::not_found,
                "not found: stream URLs are /stream/HASH/INDEX, /stream/HASH/INDEX.vtt, /stream/HASH/INDEX/buffered, "
                "/stream/HASH.m3u and /stream/HASH.json");
  }
  const bool head_only = req.method() == http::verb::head;
  if (req.method() != http::verb::get && !head_only) {
    auto r = text(req, http::status::method_not_allowed, "use GET or HEAD");
    r.resp.set(http::field::allow, "GET, HEAD");
    return r;
  }
  auto t = find_torrent(s_, route->hash);
  if (!t) return text(req, http::status::not_found, "no torrent " + route->hash + " here");
  auto files = list_files(s_, *t);
  if (!files) return busy(req, "the torrent's metadata has not arrived yet: try again in a moment");

  if (route->what == stream_route::kind::playlist) {
    auto host_it = req.find(http::field::host);
    auto host = host_it == req.end() ? std::nullopt : safe_host(std::string_view(host_it->value()));
    if (!host) return text(req, http::status::bad_request, "the playlist's URLs need a valid Host header");
    const std::string base = std::string(tls ? "https://" : "http://") + *host + "/stream/" + url_hash(s_, *t) + "/";
    std::vector<const file_entry*> media;
    for (const auto& f : *files) {
      if (!f.pad && is_media(f.path)) media.push_back(&f);
    }
    std::stable_sort(media.begin(), media.end(), [](const auto* a, const auto* b) { return a->path < b->path; });
    std::vector<playlist_entry> entries;
    entries.reserve(media.size());
    for (const auto* f : media)
      entries.push_back({base_name(f->path), base + std::to_string(f->index)});
    auto r = daemon::make_response(req, http::status::ok, make_m3u(entries), "audio/x-mpegurl; charset=utf-8");
    r.set(http::field::cache_control, "no-cache");
    return {std::move(r), {}};
  }

  if (route->what == stream_route::kind::listing) {
    auto r = daemon::make_response(req, http::status::ok, files_json(url_hash(s_, *t), *files), "application/json");
    r.set(http::field::cache_control, "no-cache");
    return {std::move(r), {}};
  }

  auto it = std::find_if(files->begin(), files->end(), [&](const file_entry& f) { return f.index == route->index; });
  if (it == files->end() || it->pad) {
    return text(req, http::status::not_found,
                "no file " + std::to_string(route->index) + " in torrent " + route->hash + " (it has " +
                    std::to_string(files->size()) + ")");
  }
  const file_entry& file = *it;

  if (route->what == stream_route::kind::buffered) {
    // No reader: a poll of the buffer bar must not make anything urgent.
    auto r = daemon::make_response(req, http::status::ok, buffered_json(file.size, have_ranges(s_, *t, file.index)),
                                   "application/json");
    r.set(http::field::cache_control, "no-cache");
    return {std::move(r), {}};
  }

  const bool as_vtt = route->what == stream_route::kind::vtt && is_srt(file.path);
  if (route->what == stream_route::kind::vtt && !as_vtt && content_type_for(file.path) != "text/vtt") {
    return text(req, http::status::bad_request,
                "only an .srt file is converted to WebVTT; " + file.path + " is not one");
  }

  if (as_vtt) {
    if (file.size > opt_.max_subtitle) {
      return text(req, http::status::payload_too_large,
                  file.path + " is too large for a subtitle file (" + std::to_string(file.size) + " bytes)");
    }
    auto head = daemon::make_response(req, http::status::ok, "", "text/vtt; charset=utf-8");
    if (head_only) return {std::move(head), {}};
    if (active_->fetch_add(1) >= opt_.max_streams) {
      --*active_;
      return busy(req, "too many streams at once: try again in a moment");
    }
    auto hold = std::make_shared<slot>(active_);
    auto reader = file_reader::open(s_, *t, file.index);
    if (!reader) return busy(req, "too many readers of this torrent: try again in a moment");
    auto b = std::make_shared<body_state>();
    b->reader = std::move(reader);
    b->end = b->reader->size();
    b->step = opt_.read_size;
    b->hold = std::move(hold);
    keep(b);
    reply r{daemon::make_response(req, http::status::ok, ""), stream_reply{}};
    r.stream->head = std::move(head);
    r.stream->next = [b] { return next_vtt(b); };
    return r;
  }

  // The file, whole or one range of it.
  const std::uint64_t size = file.size;
  const auto type = route->what == stream_route::kind::vtt ? std::string_view("text/vtt") : content_type_for(file.path);
  byte_range range{0, size == 0 ? 0 : size - 1};
  bool partial = false;
  if (auto h = req.find(http::field::range); h != req.end()) {
    auto rr = parse_range(std::string_view(h->value()), size);
    if (rr.status == range_status::invalid) {
      return text(req, http::status::bad_request,
                  "bad Range header: expected bytes=FIRST-LAST, bytes=FIRST- or bytes=-LENGTH");
    }
    if (rr.status == range_status::unsatisfiable) {
      auto r = text(req, http::status::range_not_satisfiable,
                    "range not satisfiable: the file has " + std::to_string(size) + " bytes");
      r.resp.set(http::field::content_range, "bytes */" + std::to_string(size));
      return r;
    }
    if (rr.status == range_status::ok) {
      range = rr.range;
      partial = true;
    }
  }
  const std::uint64_t length = size == 0 ? 0 : range.length();
  response head{partial ? http::status::partial_content : http::status::ok, req.version()};
  head.set(http::field::server, "shoal");
  head.set(http::field::content_type, beast::string_view(type.data(), type.size()));
  head.set(http::field::accept_ranges, "bytes");
  head.set("X-Content-Type-Options", "nosniff");
  if (partial) head.set(http::field::content_range, content_range(range, size));
  head.content_length(length);
  head.keep_alive(req.keep_alive());
  reply r{daemon::make_response(req, http::status::ok, ""), stream_reply{}};
  r.stream->sized = true;
  if (head_only || length == 0) {
    r.stream->head = std::move(head);
    r.stream->next = []() -> asio::awaitable<std::optional<std::string>> { co_return std::nullopt; };
    return r;
  }
  if (active_->fetch_add(1) >= opt_.max_streams) {
    --*active_;
    return busy(req, "too many streams at once: try again in a moment");
  }
  auto hold = std::make_shared<slot>(active_);
  auto reader = file_reader::open(s_, *t, file.index);
  if (!reader) return busy(req, "too many readers of this torrent: try again in a moment");
  auto b = std::make_shared<body_state>();
  b->reader = std::move(reader);
  b->pos = range.first;
  b->end = range.first + length;
  b->step = opt_.read_size;
  b->hold = std::move(hold);
  keep(b);
  r.stream->head = std::move(head);
  r.stream->next = [b] { return next_bytes(b); };
  // The client went away while a read waits: dropping the reader ends its reads.
  r.stream->abort = [b] { b->reader.reset(); };
  return r;
}

}  // namespace shoal::stream
