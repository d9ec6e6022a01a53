#include "session/web_seed.hpp"

#include <algorithm>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cstring>
#include <set>

#include "dht/krpc.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"
#include "session/web_seed_codec.hpp"
#include "tracker/http_connect.hpp"

namespace shoal {

namespace beast = boost::beast;
namespace http = beast::http;
namespace codec = web_seed_codec;

namespace {
constexpr auto io_timeout = std::chrono::seconds(30);
constexpr std::size_t chunk = 64 * 1024;
constexpr std::size_t max_drain = 64 * 1024;  // error and redirect bodies read to keep the connection

using parser_t = http::response_parser<http::buffer_body>;

std::string host_header(const tracker::url_parts& p) {
  std::string h = p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host;
  const bool default_port = (p.scheme == "http" && p.port == "80") || (p.scheme == "https" && p.port == "443");
  if (!default_port) h += ":" + p.port;
  return h;
}

std::string seconds_text(std::chrono::seconds s) {
  return std::to_string(s.count()) + " s";
}
}  // namespace

struct web_seed::connection {
  std::string scheme, host, port;
  std::unique_ptr<asio::ssl::context> ctx;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buf;
  bool open = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    boost::system::error_code ec;
    if (plain || tls) lowest().socket().close(ec);
    open = false;
  }
  [[nodiscard]] bool same(const tracker::url_parts& p) const {
    return open && scheme == p.scheme && host == p.host && port == p.port;
  }
  asio::awaitable<beast::error_code> write(http::request<http::empty_body>& req) {
    lowest().expires_after(io_timeout);
    if (tls) {
      auto [ec, n] = co_await http::async_write(*tls, req, asio::as_tuple(asio::use_awaitable));
      co_return ec;
    }
    auto [ec, n] = co_await http::async_write(*plain, req, asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }
  asio::awaitable<beast::error_code> read_header(parser_t& p) {
    lowest().expires_after(io_timeout);
    if (tls) {
      auto [ec, n] = co_await http::async_read_header(*tls, buf, p, asio::as_tuple(asio::use_awaitable));
      co_return ec;
    }
    auto [ec, n] = co_await http::async_read_header(*plain, buf, p, asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }
  // Reads body bytes into [data, data + size); returns how many arrived.
  asio::awaitable<std::pair<beast::error_code, std::size_t>> read_body(parser_t& p, char* data, std::size_t size) {
    p.get().body().data = data;
    p.get().body().size = size;
    lowest().expires_after(io_timeout);
    beast::error_code ec;
    if (tls) {
      auto [e, n] = co_await http::async_read(*tls, buf, p, asio::as_tuple(asio::use_awaitable));
      ec = e;
    } else {
      auto [e, n] = co_await http::async_read(*plain, buf, p, asio::as_tuple(asio::use_awaitable));
      ec = e;
    }
    if (ec == http::error::need_buffer) ec = {};
    co_return std::pair{ec, size - p.get().body().size};
  }
};

web_seed::web_seed(session& s, std::shared_ptr<torrent> t, std::string url, tcp::endpoint id)
    : session_(s), torrent_(t), url_(std::move(url)), id_(id), timer_(s.io()) {}

web_seed::~web_seed() = default;

void web_seed::start() {
  asio::co_spawn(session_.io(), run(shared_from_this()), asio::detached);
}

void web_seed::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  if (conn_) conn_->close();
}

void web_seed::log(const std::string& line) const {
  if (!session_.settings().log) return;
  if (auto t = torrent_.lock()) {
    t->log("web seed " + url_ + ": " + line);
  } else {
    session_.settings().log("web seed " + url_ + ": " + line);
  }
}

void web_seed::hash_failed(std::uint32_t piece) {
  ++hash_failures_;
  log("piece " + std::to_string(piece) + " failed its hash check (" + std::to_string(hash_failures_) + " of " +
      std::to_string(max_hash_failures) + ")");
  if (hash_failures_ >= max_hash_failures && !dropped_) {
    dropped_ = true;
    log("dropped: " + std::to_string(hash_failures_) + " pieces failed their hash check");
    stop();
  }
}

asio::awaitable<void> web_seed::run(std::shared_ptr<web_seed> self) {
  co_await self->body();
}

void web_seed::give_back(torrent& t) {
  for (const auto& b : outstanding_)
    t.picker().abort_request(b);
  outstanding_.clear();
}

void web_seed::deliver(torrent& t, const block_ref& b, std::string_view data) {
  auto it = std::find(outstanding_.begin(), outstanding_.end(), b);
  if (it == outstanding_.end() || stopped_ || t.ended()) return;
  outstanding_.erase(it);
  downloaded_ += data.size();
  t.on_web_block(id_, b.piece, b.begin, data);
}

void web_seed::claim(torrent& t, std::vector<block_ref>& run) {
  auto& pk = t.picker();
  const auto& fs = t.files();
  if (ranges_ignored_) {
    // Whole files only: start at the first piece nobody has, so one read of a file serves
    // it and those after it.
    for (std::uint32_t q = 0; q < pk.num_pieces() && run.empty(); ++q)
      pk.take_piece(q, run);
  }
  // Ranged servers, and the free blocks of pieces left partial (a fetch that failed half
  // way gives its blocks back; take_piece only takes untouched pieces).
  if (run.empty()) {
    const auto per_piece =
        static_cast<std::uint32_t>((fs.piece_length() + piece_picker::block_size - 1) / piece_picker::block_size);
    // No end-game duplicates: `queued` at the end-game bound.
    pk.pick(
        pk.have_bits(), true, per_piece, [](const block_ref&) { return true; }, run, piece_picker::end_game_queue);
    std::sort(run.begin(), run.end(), [](const block_ref& a, const block_ref& b) {
      return a.piece != b.piece ? a.piece < b.piece : a.begin < b.begin;
    });
  }
  if (run.empty()) return;
  // Extend with the following pieces while nobody has started them.
  std::uint64_t bytes = 0;
  for (const auto& b : run)
    bytes += b.length;
  while (bytes < run_target_) {
    const auto& last = run.back();
    if (last.begin + last.length != fs.piece_size(last.piece)) break;
    const std::size_t before = run.size();
    if (!pk.take_piece(last.piece + 1, run)) break;
    for (std::size_t i = before; i < run.size(); ++i)
      bytes += run[i].length;
  }
  for (const auto& b : run) {
    pk.mark_requested(b);
    outstanding_.push_back(b);
  }
}

asio::awaitable<void> web_seed::body() {
  auto backoff = first_backoff;
  log("started");
  while (!stopped_) {
    auto t = torrent_.lock();
    if (!t || t->ended() || t->finished()) break;
    if (!t->accepting_peers() || t->picker().wanted_complete()) break;
    std::vector<block_ref> run;
    claim(*t, run);
    if (run.empty()) {
      // Everything left is being fetched by someone: look again in a second.
      timer_.expires_after(std::chrono::seconds(1));
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    const auto began = std::chrono::steady_clock::now();
    const std::uint64_t before = downloaded_;
    auto err = co_await fetch_run(*t, run);
    if (stopped_) break;
    if (!err) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      const double rate = static_cast<double>(downloaded_ - before) / std::max(secs, 0.001);
      run_target_ = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(rate * run_seconds), 1, max_run);
    }
    if (err) {
      give_back(*t);
      if (conn_) conn_->close();
      const auto wait = err->retry_after ? *err->retry_after : backoff;
      log(err->why + "; retrying in " + seconds_text(wait) + (err->retry_after ? " (Retry-After)" : ""));
      backoff = std::min(backoff * 2, max_backoff);
      timer_.expires_after(wait);
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    backoff = first_backoff;
  }
  if (auto t = torrent_.lock()) give_back(*t);
  if (conn_) conn_->close();
  stopped_ = true;
  log("stopped (" + std::to_string(downloaded_) + " bytes received)");
}

asio::awaitable<std::optional<web_seed::fetch_error>> web_seed::fetch_run(torrent& t,
                                                                          const std::vector<block_ref>& run) {
  const auto& fs = t.files();
  const auto reqs = codec::plan_requests(fs, run);
  std::vector<std::uint64_t> ends;
  std::uint64_t total = 0;
  for (const auto& b : run) {
    total += b.length;
    ends.push_back(total);
  }
  // Zeroed: the bytes of pad files are never fetched.
  std::vector<char> buf(total, 0);
  std::size_t next = 0;
  auto deliver_upto = [&](std::uint64_t pos) {
    while (next < run.size() && ends[next] <= pos) {
      const std::uint64_t start = ends[next] - run[next].length;
      deliver(t, run[next], std::string_view(buf.data() + start, run[next].length));
      ++next;
    }
  };
  const auto& files = fs.files();
  for (const auto& r : reqs) {
    if (stopped_) co_return std::nullopt;
    deliver_upto(r.buf_offset);
    // Bytes of one file, with redirects followed; each chunk is delivered as it lands.
    std::string url = codec::file_url(url_, t.info().multi_file, t.info().name, files[r.file].path);
    bool retried = false;
    std::uint32_t redirects = 0;
    while (true) {
      if (stopped_) co_return std::nullopt;
      auto parts = tracker::split_url(url);
      if (!parts || (parts->scheme != "http" && parts->scheme != "https"))
        co_return fetch_error{"not an http(s) URL: " + url, std::nullopt};
      const bool reused = conn_ && conn_->same(*parts);
      if (!reused) {
        if (conn_) conn_->close();
        conn_ = std::make_unique<connection>();
        conn_->scheme = parts->scheme;
        conn_->host = parts->host;
        conn_->port = parts->port;
        tracker::client_options opt;
        opt.proxy = session_.settings().proxy;
        opt.bind_address = session_.settings().outgoing_address;
        opt.local = session_.settings().local;  // a redirect to a public host is refused too
        opt.cache = session_.tracker_cache();
        std::optional<std::string> why;
        if (parts->scheme == "http") {
          conn_->plain = std::make_unique<beast::tcp_stream>(session_.io());
          conn_->plain->expires_after(io_timeout);
          why = co_await tracker::connect_http(session_.io(), *conn_->plain, *parts, opt);
        } else {
          conn_->ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
          conn_->ctx->set_default_verify_paths();
          conn_->ctx->set_verify_mode(asio::ssl::verify_peer);
          conn_->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(session_.io(), *conn_->ctx);
          if (!SSL_set_tlsext_host_name(conn_->tls->native_handle(), parts->host.c_str())) {
            why = "cannot set TLS SNI";
          } else {
            conn_->tls->set_verify_callback(asio::ssl::host_name_verification(parts->host));
            conn_->lowest().expires_after(io_timeout);
            why = co_await tracker::connect_http(session_.io(), conn_->lowest(), *parts, opt);
            if (!why) {
              conn_->lowest().expires_after(io_timeout);
              auto [hec] = co_await conn_->tls->async_handshake(asio::ssl::stream_base::client,
                                                                asio::as_tuple(asio::use_awaitable));
              if (hec) why = "TLS: " + hec.message();
            }
          }
        }
        if (stopped_) co_return std::nullopt;
        if (why)
          co_return fetch_error{"cannot connect to " + parts->host + ":" + parts->port + ": " + *why, std::nullopt};
        conn_->open = true;
      }
      http::request<http::empty_body> req{http::verb::get, parts->target, 11};
      req.set(http::field::host, host_header(*parts));
      req.set(http::field::user_agent, "shoal/0.1.0");
      req.set(http::field::range,
              "bytes=" + std::to_string(r.file_offset) + "-" + std::to_string(r.file_offset + r.length - 1));
      parser_t parser;
      parser.body_limit(boost::none);
      auto wec = co_await conn_->write(req);
      if (!wec) wec = co_await conn_->read_header(parser);
      if (stopped_) co_return std::nullopt;
      if (wec) {
        conn_->close();
        // A kept-alive connection the server has closed meanwhile: once more on a new one.
        if (reused && !retried) {
          retried = true;
          continue;
        }
        co_return fetch_error{url + ": " + wec.message(), std::nullopt};
      }
      const unsigned status = parser.get().result_int();
      const bool keep = parser.get().keep_alive();
      // Reads and drops what is left of a small body, so the connection can be kept.
      auto drain = [&]() -> asio::awaitable<void> {
        std::vector<char> sink(chunk);
        std::size_t read = 0;
        while (!parser.is_done() && read <= max_drain) {
          auto [ec, n] = co_await conn_->read_body(parser, sink.data(), sink.size());
          if (ec) break;
          read += n;
        }
        if (!parser.is_done() || !keep) conn_->close();
      };
      if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
        const std::string location(parser.get()[http::field::location]);
        co_await drain();
        if (redirects >= max_redirects) co_return fetch_error{url + ": more than 5 redirects", std::nullopt};
        auto base = boost::urls::parse_uri(url);
        auto ref = boost::urls::parse_uri_reference(location);
        boost::urls::url dest;
        if (location.empty() || !base || !ref || !boost::urls::resolve(*base, *ref, dest))
          co_return fetch_error{url + ": redirect to a bad location '" + location + "'", std::nullopt};
        ++redirects;
        retried = false;
        log("HTTP " + std::to_string(status) + " to " + std::string(dest.buffer()));
        url = std::string(dest.buffer());
        continue;
      }
      if (status == 206) {
        const auto cr = codec::parse_content_range(parser.get()[http::field::content_range]);
        if (!cr || cr->first != r.file_offset || cr->last < r.file_offset + r.length - 1) {
          conn_->close();
          co_return fetch_error{url + ": 206 with a Content-Range other than asked ('" +
                                    std::string(parser.get()[http::field::content_range]) + "')",
                                std::nullopt};
        }
        std::uint64_t got = 0;
        char* dest = buf.data() + r.buf_offset;
        while (got < r.length) {
          if (parser.is_done()) co_return fetch_error{url + ": reply shorter than the range asked", std::nullopt};
          while (t.disk_backlogged() && !stopped_) {
            timer_.expires_after(std::chrono::milliseconds(20));
            co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
          }
          // Under a download limit, at most one bucket a read (no initializer list: GCC 12
          // rejects one in a coroutine).
          const std::uint64_t most = std::min<std::uint64_t>(chunk, session_.download_limit().burst());
          auto [ec, n] = co_await conn_->read_body(
              parser, dest + got, static_cast<std::size_t>(std::min<std::uint64_t>(most, r.length - got)));
          if (stopped_) co_return std::nullopt;
          if (ec) co_return fetch_error{url + ": " + ec.message(), std::nullopt};
          got += n;
          deliver_upto(r.buf_offset + got);
          const auto wait = session_.download_limit().consume(n);
          if (wait.count() > 0) {
            timer_.expires_after(wait);
            co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        }
        if (!parser.is_done() || !keep) conn_->close();
        break;
      }
      if (status == 200) {
        if (!ranges_ignored_) log("the server ignores ranges (200 with the whole file): reading whole files");
        ranges_ignored_ = true;
        // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
        std::function<void(std::uint64_t)> progress = [&](std::uint64_t got) { deliver_upto(r.buf_offset + got); };
        auto err = co_await read_whole_file(t, parser, keep, r, buf.data() + r.buf_offset, progress);
        if (err) co_return err;
        break;
      }
      const std::string reason(parser.get().reason());
      const auto retry_after = codec::parse_retry_after(parser.get()[http::field::retry_after]);
      co_await drain();
      co_return fetch_error{url + ": HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason),
                            retry_after};
    }
  }
  deliver_upto(total);
  co_return std::nullopt;
}

asio::awaitable<std::optional<web_seed::fetch_error>> web_seed::read_whole_file(
    torrent& t, parser_t& parser, bool keep, const web_seed_codec::range_request& r, char* dest,
    std::function<void(std::uint64_t)> progress) {
  const auto& fs = t.files();
  auto& pk = t.picker();
  const auto& f = fs.files()[r.file];
  const std::uint64_t pl = fs.piece_length();
  const std::uint64_t a = r.file_offset, e = r.file_offset + r.length;
  // A piece starting at this file offset and lying wholly inside the file.
  auto piece_at = [&](std::uint64_t pos) -> std::optional<std::uint32_t> {
    const std::uint64_t g = f.offset + pos;
    if (g % pl != 0 || g / pl >= fs.num_pieces()) return std::nullopt;
    const auto q = static_cast<std::uint32_t>(g / pl);
    if (pos + fs.piece_size(q) > f.size) return std::nullopt;
    return q;
  };
  // Pieces taken on the way: bytes collected, then delivered whole.
  struct extra {
    std::uint32_t piece;
    std::uint64_t start;  // file offset
    std::vector<char> bytes;
    std::vector<block_ref> blocks;
  };
  std::optional<extra> cur;
  std::uint32_t scan = static_cast<std::uint32_t>(std::min<std::uint64_t>(f.offset / pl, fs.num_pieces()));
  // Is any piece from the file offset `pos` on still free to take?
  auto any_ahead = [&](std::uint64_t pos) {
    const auto from = static_cast<std::uint32_t>((f.offset + pos + pl - 1) / pl);
    scan = std::max(scan, from);
    while (scan < fs.num_pieces()) {
      const std::uint64_t start = static_cast<std::uint64_t>(scan) * pl;
      if (start + fs.piece_size(scan) > f.offset + f.size) return false;
      if (pk.untouched(scan)) return true;
      ++scan;
    }
    return false;
  };
  std::vector<char> tmp(chunk);
  std::uint64_t pos = 0, got = 0;
  while (true) {
    if (got == r.length && !cur && !any_ahead(pos)) break;
    if (parser.is_done()) {
      if (got < r.length || cur) co_return fetch_error{"the whole file ended before the bytes asked", std::nullopt};
      break;
    }
    while (t.disk_backlogged() && !stopped_) {
      timer_.expires_after(std::chrono::milliseconds(20));
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    auto [ec, n] = co_await conn_->read_body(parser, tmp.data(), tmp.size());
    if (stopped_) co_return std::nullopt;
    if (ec) co_return fetch_error{ec.message(), std::nullopt};
    std::size_t i = 0;
    while (i < n) {
      if (pos >= a && pos < e) {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n - i, e - pos));
        std::memcpy(dest + (pos - a), tmp.data() + i, k);
        pos += k;
        i += k;
        got += k;
        progress(got);
        continue;
      }
      if (cur) {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n - i, cur->start + cur->bytes.size() - pos));
        std::memcpy(cur->bytes.data() + (pos - cur->start), tmp.data() + i, k);
        pos += k;
        i += k;
        if (pos == cur->start + cur->bytes.size()) {
          for (const auto& b : cur->blocks)
            deliver(t, b, std::string_view(cur->bytes.data() + b.begin, b.length));
          cur.reset();
        }
        continue;
      }
      if (auto q = piece_at(pos); q && (pos + fs.piece_size(*q) <= a || pos >= e) && !t.ended()) {
        std::vector<block_ref> blocks;
        if (pk.take_piece(*q, blocks)) {
          for (const auto& b : blocks) {
            pk.mark_requested(b);
            outstanding_.push_back(b);
          }
          cur = extra{*q, pos, std::vector<char>(fs.piece_size(*q)), std::move(blocks)};
          continue;
        }
      }
      // Nothing to keep here: skip to the next piece boundary (or to the bytes asked).
      std::uint64_t next = ((f.offset + pos) / pl + 1) * pl - f.offset;
      if (pos < a) next = std::min(next, a);
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n - i, next - pos));
      pos += k;
      i += k;
    }
    const auto wait = session_.download_limit().consume(n);
    if (wait.count() > 0) {
      timer_.expires_after(wait);
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  if (!parser.is_done() || !keep) conn_->close();
  co_return std::nullopt;
}

// --- the torrent's side: its web seeds ---

void torrent::start_web_seeds() {
  if (!web_seeds_.empty() || state_ != torrent_state::downloading) return;
  std::set<std::string> seen;
  std::uint16_t n = 0;
  for (const auto& url : web_seed_urls_) {
    if (!seen.insert(url).second) continue;
    auto p = tracker::split_url(url);
    if (!p || (p->scheme != "http" && p->scheme != "https")) {
      if (session_.settings().log) log("web seed " + url + ": skipped: not an http(s) URL");
      continue;
    }
    if (session_.settings().local && dht::local_host_addresses(p->host).empty()) {
      if (session_.settings().log) {
        log("web seed " + url + ": " + tracker::skipped_under_local(p->host));
      }
      continue;
    }
    // Stands for the seed in the senders of piece buffers: 100::/64 is the discard prefix
    // (RFC 6666), never a peer's address.
    asio::ip::address_v6::bytes_type b{};
    b[0] = 0x01;
    ++n;
    b[14] = static_cast<unsigned char>(n >> 8);
    b[15] = static_cast<unsigned char>(n & 0xff);
    auto ws = std::make_shared<web_seed>(session_, shared_from_this(), url, tcp::endpoint(asio::ip::address_v6(b), 80));
    web_seeds_.push_back(ws);
    ws->start();
  }
}

void torrent::stop_web_seeds() {
  for (auto& ws : web_seeds_)
    ws->stop();
}

bool torrent::blame_web_seed(const tcp::endpoint& ep, std::uint32_t piece) {
  for (auto& ws : web_seeds_) {
    if (ws->id() == ep) {
      ws->hash_failed(piece);
      return true;
    }
  }
  return false;
}

}  // namespace shoal
