#include "sync/engine.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "core/bencode.hpp"
#include "core/hash.hpp"
#include "core/text.hpp"
#include "session/session.hpp"
#include "sync/engine_impl.hpp"
#include "sync/fsops.hpp"
#include "sync/messages.hpp"
#include "sync/secure_channel.hpp"

namespace shoal::sync {

using namespace std::chrono_literals;

engine::engine(session& ses, folder& f, engine_options o) : p_(std::make_shared<impl>(ses, f, std::move(o))) {}
engine::~engine() {
  p_->stop();
  if (p_->lock_fd >= 0) ::close(p_->lock_fd);
  p_->lock_fd = -1;
}
result<bool> engine::start() {
  return p_->start();
}
void engine::stop(std::function<void()> done) {
  p_->stop();
  if (!done) return;
  if (p_->running == 0) {
    asio::post(p_->io, std::move(done));
  } else {
    p_->when_ended = std::move(done);
  }
}
engine_status engine::status() const {
  engine_status st;
  const auto& p = *p_;
  st.queued = p.needs.size();
  st.state = p.stopped                                  ? "stopped"
             : !p.needs.empty() || !p.in_flight.empty() ? "syncing"
             : p.scan_requested                         ? "scanning"
                                                        : "idle";
  for (const auto& c : p.conns) {
    if (c->closed) continue;
    st.peers.push_back({c->id, c->remote, c->ch->peer().can_write});
  }
  return st;
}
void engine::add_peer(const net::endpoint& ep) {
  if (p_->stopped || p_->dialled.size() >= max_dialled || !p_->dialled.insert(ep).second) return;
  p_->spawn(p_->dial_loop(ep), "sync dial");
}

engine::impl::impl(session& s, folder& fo, engine_options o)
    : ses(s), f(fo), opt(std::move(o)), io(s.io()), puller_wake(io), scan_wake(io), announce_timer(io) {}

void engine::impl::log(const std::string& line) const {
  if (opt.log) opt.log(line);
}

void engine::impl::emit(std::string kind, std::string path, std::string device, std::string detail) const {
  if (opt.on_event) opt.on_event(engine_event{std::move(kind), std::move(path), std::move(device), std::move(detail)});
}

void engine::impl::spawn(asio::awaitable<void> a, const char* what) {
  ++running;
  // The handler keeps the impl: the count it decrements must outlive the coroutine.
  asio::co_spawn(io, std::move(a), [self = shared_from_this(), what](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        self->log(std::string(what) + ": " + ex.what());
      }
    }
    if (--self->running == 0 && self->stopped && self->when_ended) {
      auto done = std::move(self->when_ended);
      self->when_ended = nullptr;
      asio::post(self->io, std::move(done));
    }
  });
}

result<bool> engine::impl::start() {
  // One running copy per folder: two would write the same files and index.
  const auto lock_file = f.paths().state / "run.lock";
  lock_fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lock_fd < 0) return error{errc::io, lock_file.string() + ": " + std::strerror(errno)};
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return error{errc::io, f.paths().dir.string() + " is already being synced by another process (" +
                               lock_file.string() + " is locked)"};
  }
  hub* h = opt.via;
  if (!h) {
    own_hub = std::make_unique<hub>(ses);
    h = own_hub.get();
    if (auto s = h->start(); !s) return s;
  }
  auto reg = h->add(f.key().share(), [w = weak_from_this()](std::unique_ptr<net::stream> s, std::string first) {
    if (auto self = w.lock(); self && !self->stopped)
      self->spawn(self->accept(std::move(s), std::move(first)), "sync accept");
  });
  if (!reg) return reg.err();
  in_hub = std::move(*reg);
  if (auto w = start_watch(); !w) return w;
  clean_tmp();
  do_scan(false);  // before the first line the user sees: "listening on PORT"
  spawn(scan_loop(), "sync scan");
  spawn(pull_loop(), "sync pull");
  for (const auto& ep : opt.peers)
    if (dialled.insert(ep).second) spawn(dial_loop(ep), "sync dial");
  return true;
}

// Temporary files of transfers nobody resumed for a day (a version that was superseded
// while it was fetched) go; younger ones are kept for a resume.
void engine::impl::clean_tmp() {
  const auto tmp = f.paths().state / "tmp";
  std::error_code ec;
  const auto now = std::filesystem::file_time_type::clock::now();
  for (std::filesystem::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    const auto t = std::filesystem::symlink_status(it->path(), e2);
    if (e2 || (!std::filesystem::is_regular_file(t) && !std::filesystem::is_symlink(t))) continue;
    if (std::filesystem::is_symlink(t)) {  // a link made for a rename is never resumed
      std::filesystem::remove(it->path(), e2);
      continue;
    }
    const auto age = now - std::filesystem::last_write_time(it->path(), e2);
    if (!e2 && age > std::chrono::hours(24)) std::filesystem::remove(it->path(), e2);
  }
}

void engine::impl::stop() {
  if (stopped) return;
  stopped = true;
  in_hub.reset();
  for (auto& c : conns)
    close_conn(c, "");
  puller_wake.cancel();
  scan_wake.cancel();
  announce_timer.cancel();
  for (auto* t : dial_timers)
    t->cancel();
  if (ino_sd) {
    boost::system::error_code ec;
    ino_sd->close(ec);
  }
}

// ---- connections ------------------------------------------------------------------------

hello_fields engine::impl::my_hello() const {
  return hello_fields{f.key().can_write(), f.db().last_sequence()};
}

asio::awaitable<void> engine::impl::accept(std::unique_ptr<net::stream> s, std::string first) {
  auto self = shared_from_this();
  net::stream* raw = s.get();
  auto done = std::make_shared<bool>(false);
  asio::steady_timer watchdog(io);
  watchdog.expires_after(handshake_limit);
  watchdog.async_wait([raw, done](boost::system::error_code ec) {
    if (!ec && !*done) raw->close();
  });
  const auto remote = raw->remote_endpoint();
  auto ch = co_await secure_channel::accept(std::move(s), std::move(first), f.key(), f.device(), my_hello());
  *done = true;
  watchdog.cancel();
  if (!ch) {
    log("sync: incoming " + rec_text(remote) + ": " + ch.err().message());
    co_return;
  }
  co_await run_conn(*ch, false);
}

std::string engine::impl::rec_text(const net::endpoint& ep) {
  boost::system::error_code ec;
  return ep.address().to_string(ec) + ":" + std::to_string(ep.port());
}

asio::awaitable<void> engine::impl::dial_loop(net::endpoint ep) {
  auto self = shared_from_this();
  asio::steady_timer wait(io);
  dial_timers.insert(&wait);
  std::string known;  // the device this address led to last time
  while (!stopped) {
    if (known.empty() || !connected(known)) {
      auto [ec, st] = co_await ses.connect_tcp(ep, 5000ms);
      if (stopped) break;
      if (ec || !st) {
        log("sync: dial " + rec_text(ep) + ": " + ec.message());
      } else {
        net::stream* raw = st.get();
        auto done = std::make_shared<bool>(false);
        asio::steady_timer watchdog(io);
        watchdog.expires_after(handshake_limit);
        watchdog.async_wait([raw, done](boost::system::error_code e) {
          if (!e && !*done) raw->close();
        });
        auto ch = co_await secure_channel::connect(std::move(st), f.key(), f.device(), my_hello());
        *done = true;
        watchdog.cancel();
        if (!ch) {
          log("sync: " + rec_text(ep) + ": " + ch.err().message());
        } else {
          known = (*ch)->peer().device_id;
          co_await run_conn(*ch, true);
        }
      }
    }
    if (stopped) break;
    wait.expires_after(opt.redial);
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  dial_timers.erase(&wait);
}

bool engine::impl::connected(const std::string& device) const {
  for (const auto& c : conns)
    if (!c->closed && c->id == device) return true;
  return false;
}

asio::awaitable<void> engine::impl::run_conn(secure_channel::ptr ch, bool dialled) {
  auto self = shared_from_this();
  auto c = std::make_shared<conn>();
  c->ch = ch;
  c->id = ch->peer().device_id;
  c->remote = ch->remote();
  c->dialled = dialled;
  // Two connections to one device (each dialled the other): both sides keep the one the
  // device with the smaller id dialled.
  const std::string my_id = f.device().id();
  auto dialler_of = [&](const conn& x) { return x.dialled ? my_id : x.id; };
  for (auto& o : conns) {
    if (o->closed || o->id != c->id) continue;
    if (dialler_of(*c) < dialler_of(*o)) {
      close_conn(o, "");
    } else {
      ch->close();
      co_return;
    }
  }
  conns.push_back(c);
  emit("peer", "", c->id, c->remote + (ch->peer().can_write ? " read-write" : " read-only"));
  request_index(c);
  std::string why;
  while (!c->closed) {
    auto m = co_await ch->read();
    if (!m) {
      why = m.err().message();
      break;
    }
    auto msg = decode_message(*m);
    if (!msg) {
      why = msg.err().message();
      break;
    }
    try {
      handle(c, std::move(*msg));
    } catch (const index_error& e) {
      why = e.what();
      break;
    }
  }
  const bool was_open = !c->closed;
  close_conn(c, why);
  if (was_open || !why.empty()) emit("peer-lost", "", c->id, why);
  std::erase(conns, c);
}

void engine::impl::close_conn(const std::shared_ptr<conn>& c, const std::string& why) {
  if (c->closed) return;
  c->closed = true;
  if (!why.empty()) log("sync: peer " + c->id + " (" + c->remote + "): " + why);
  c->ch->close();
  if (c->drained) c->drained->cancel();
  for (auto& [id, p] : c->pending)
    p->timer.cancel();
}

void engine::impl::send(const std::shared_ptr<conn>& c, const message& m) {
  if (c->closed) return;
  c->outq.push_back(encode(m));
  c->out_bytes += c->outq.back().size();
  if (!c->writing) spawn(writer(c), "sync write");
}

asio::awaitable<void> engine::impl::writer(std::shared_ptr<conn> c) {
  auto self = shared_from_this();
  c->writing = true;
  while (!c->outq.empty() && !c->closed) {
    std::string out = std::move(c->outq.front());
    c->outq.pop_front();
    c->out_bytes -= out.size();
    if (c->out_bytes < out_high_mark / 2 && c->drained) c->drained->cancel();
    auto w = co_await c->ch->write(out);
    if (!w) {
      close_conn(c, w.err().message());
      break;
    }
  }
  c->writing = false;
}

void engine::impl::request_index(const std::shared_ptr<conn>& c) {
  if (c->requesting) {
    c->want_more = true;
    return;
  }
  c->requesting = true;
  c->want_more = false;
  auto& pr = progress[c->id];
  if (!pr.loaded) {
    pr.loaded = true;
    pr.seen_max = f.db().peer_sequence(c->id);
  }
  send(c, msg_index_request{pr.seen_max});
}

// Tells every peer our last sequence: at once when none was sent in the last 100 ms (a
// scan's change reaches the peers without waiting), else once at the end of those 100 ms for
// all the changes made meanwhile (a run of applied records sends ten a second at most).
void engine::impl::announce() {
  if (announce_posted || stopped) return;
  if (std::chrono::steady_clock::now() - last_announce >= 100ms) {
    announce_now();
    return;
  }
  announce_posted = true;
  announce_timer.expires_at(last_announce + 100ms);
  announce_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (!self) return;
    self->announce_posted = false;
    if (!ec && !self->stopped) self->announce_now();
  });
}

void engine::impl::announce_now() {
  last_announce = std::chrono::steady_clock::now();
  const std::uint64_t last = f.db().last_sequence();
  for (auto& c : conns)
    send(c, msg_have{last});
}

void engine::impl::handle(const std::shared_ptr<conn>& c, message m) {
  if (auto* h = std::get_if<msg_have>(&m)) {
    auto& pr = progress[c->id];
    if (!pr.loaded || h->seq > pr.seen_max) request_index(c);
  } else if (auto* r = std::get_if<msg_index_request>(&m)) {
    spawn(send_index(c, r->since, ++c->index_generation), "sync index");
  } else if (auto* ix = std::get_if<msg_index>(&m)) {
    take_batch(c, *ix);
    if (ix->done) {
      c->requesting = false;
      if (c->want_more) request_index(c);
    }
  } else if (auto* br = std::get_if<msg_block_request>(&m)) {
    serve(c, *br);
  } else if (auto* b = std::get_if<msg_block>(&m)) {
    auto it = c->pending.find(b->id);
    if (it != c->pending.end()) {
      it->second->reply = std::move(*b);
      it->second->timer.cancel();
    }
  }
}

asio::awaitable<void> engine::impl::send_index(std::shared_ptr<conn> c, std::uint64_t since, std::uint64_t generation) {
  auto self = shared_from_this();
  std::uint64_t cursor = since;
  while (!c->closed && !stopped && generation == c->index_generation) {
    if (c->out_bytes > out_high_mark) {
      if (!c->drained) c->drained = std::make_unique<asio::steady_timer>(io);
      c->drained->expires_at(std::chrono::steady_clock::time_point::max());
      boost::system::error_code ec;
      co_await c->drained->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    auto recs = f.db().changes_since(cursor, max_batch_records);
    msg_index m;
    std::size_t bytes = 0;
    bool cut = false;
    for (const auto& r : recs) {
      if (r.local_only || r.signature.size() != signature_bytes) {
        cursor = r.sequence;
        continue;
      }
      std::string canon = encode_record(r);
      if (!m.records.empty() && bytes + canon.size() > max_batch_bytes) {
        cut = true;
        break;
      }
      bytes += canon.size();
      m.records.push_back(wire_record{std::move(canon), r.signature, r.sequence});
      cursor = r.sequence;
    }
    m.done = !cut && recs.size() < max_batch_records;
    send(c, m);
    if (m.done) break;
  }
}

// What a peer's index batch holds: verified records newer than ours go into the queue.
void engine::impl::take_batch(const std::shared_ptr<conn>& c, const msg_index& ix) {
  auto& pr = progress[c->id];
  if (!pr.loaded) {
    pr.loaded = true;
    pr.seen_max = f.db().peer_sequence(c->id);
  }
  for (const auto& w : ix.records) {
    pr.seen_max = std::max(pr.seen_max, w.seq);
    auto r = decode_record(w.canonical, w.signature, f.key().pub());
    if (!r) {
      // Never applied; the path is read from the unverified bytes for the log alone.
      std::string path = "?";
      if (auto doc = bencode::decode(w.canonical); doc && doc->root().find("path").is_string())
        path = shown(doc->root().find("path").as_string());
      log("sync: rejected a record for " + path + " from " + c->id + ": " + r.err().message());
      emit("rejected", path, c->id, r.err().message());
      continue;
    }
    consider(std::move(*r), c->id, w.seq);
  }
  save_progress(c->id);
  if (!needs.empty()) puller_wake.cancel();
}

void engine::impl::save_progress(const std::string& device) {
  auto& pr = progress[device];
  const std::uint64_t done = pr.open.empty() ? pr.seen_max : *pr.open.begin() - 1;
  if (done != pr.saved) {
    f.db().set_peer_sequence(device, done);
    pr.saved = done;
  }
}

void engine::impl::consider(record r, const std::string& device, std::uint64_t seq) {
  if (refused.count(to_hex(as_view(sha256(encode_record(r))))) != 0) return;
  const auto local = f.db().get(r.path);
  if (local) {
    const auto ord = compare(r.version, local->version);
    if (ord == ordering::equal || ord == ordering::before) return;
  }
  const std::string key = path_key(r.path);
  auto owe = [&](need& n) {
    if (device.empty()) return;
    n.owed.emplace_back(device, seq);
    progress[device].open.insert(seq);
  };
  auto it = needs.find(key);
  if (it == needs.end()) {
    need n;
    n.rec = std::move(r);
    if (!device.empty()) n.sources.insert(device);
    owe(n);
    needs.emplace(key, std::move(n));
    return;
  }
  need& n = it->second;
  const auto o = compare(r.version, n.rec.version);
  if (o == ordering::equal) {
    if (!device.empty()) n.sources.insert(device);
    owe(n);
  } else if (o == ordering::after) {
    n.rec = std::move(r);
    ++n.generation;
    n.sources.clear();
    if (!device.empty()) n.sources.insert(device);
    n.not_before = {};
    owe(n);
  } else if (o == ordering::concurrent) {
    n.later.push_back(std::move(r));
    owe(n);
  }
}

void engine::impl::finish_need(const std::string& key) {
  auto it = needs.find(key);
  if (it == needs.end()) return;
  need n = std::move(it->second);
  needs.erase(it);
  std::set<std::string> devices;
  for (const auto& [dev, seq] : n.owed) {
    auto& pr = progress[dev];
    if (auto o = pr.open.find(seq); o != pr.open.end()) pr.open.erase(o);
    devices.insert(dev);
  }
  for (auto& r : n.later)
    consider(std::move(r), "", 0);
  for (const auto& d : devices)
    save_progress(d);
}

// ---- blocks -----------------------------------------------------------------------------

// Brought up to date with the records stored since the last call (not rebuilt: a folder of
// many small files would pay for the whole index once per file). Stale places stay until
// the map grows past a bound; every read from one is checked against the block's hash.
void engine::impl::refresh_block_map() {
  const std::uint64_t last = f.db().last_sequence();
  if (map_seq == last) return;
  std::uint64_t cursor = map_seq;
  if (map_seq == UINT64_MAX || block_map.size() > max_block_map) {
    block_map.clear();
    cursor = 0;
  }
  map_seq = last;
  while (true) {
    auto recs = f.db().changes_since(cursor, 1000);
    for (const auto& r : recs) {
      cursor = r.sequence;
      if (r.type != entry_type::file || r.deleted) continue;
      for (std::size_t i = 0; i < r.block_total(); ++i) {
        std::uint64_t k = 0;
        std::memcpy(&k, r.blocks.data() + i * 32, sizeof k);
        block_map.emplace(k, block_ref{r.sequence, static_cast<std::uint32_t>(i)});
      }
    }
    if (recs.size() < 1000) break;
  }
}

std::vector<block_loc> engine::impl::find_block(std::string_view hash, std::size_t limit) {
  refresh_block_map();
  std::vector<block_loc> out;
  if (hash.size() != 32) return out;
  std::uint64_t k = 0;
  std::memcpy(&k, hash.data(), sizeof k);
  std::vector<block_ref> refs;
  for (auto [it, end] = block_map.equal_range(k); it != end; ++it)
    refs.push_back(it->second);
  std::sort(refs.begin(), refs.end(), [](const block_ref& a, const block_ref& b) { return a.seq > b.seq; });
  for (const auto& ref : refs) {
    if (out.size() >= limit) break;
    if (!ref_cache || ref_cache->sequence != ref.seq) {
      // The record that had this sequence, if it still has it (a path stored again gets a
      // new one: the entry is stale).
      auto recs = f.db().changes_since(ref.seq - 1, 1);
      if (recs.empty() || recs.front().sequence != ref.seq) continue;
      ref_cache = std::move(recs.front());
    }
    const record& r = *ref_cache;
    if (r.type != entry_type::file || r.deleted || ref.block >= r.block_total() ||
        std::string_view(r.blocks).substr(std::size_t{ref.block} * 32, 32) != hash)
      continue;
    const std::uint64_t off = std::uint64_t{ref.block} * r.block_size;
    out.push_back(block_loc{f.paths().dir / r.path, off,
                            static_cast<std::uint32_t>(std::min<std::uint64_t>(r.block_size, r.size - off))});
  }
  return out;
}

void engine::impl::remember_blocks(const record& r, const std::filesystem::path& where) {
  if (r.type != entry_type::file || r.deleted) return;
  for (std::size_t i = 0; i < r.block_total() && moved_blocks.size() < 200000; ++i) {
    const std::uint64_t off = std::uint64_t{i} * r.block_size;
    moved_blocks[r.blocks.substr(i * 32, 32)] =
        block_loc{where, off, static_cast<std::uint32_t>(std::min<std::uint64_t>(r.block_size, r.size - off))};
  }
}

bool engine::impl::read_verified(const block_loc& loc, std::string_view hash, std::string& out) {
  const int fd = ::open(loc.file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  out.resize(loc.length);
  std::size_t got = 0;
  while (got < loc.length) {
    const ssize_t n = ::pread(fd, out.data() + got, loc.length - got, static_cast<off_t>(loc.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got != loc.length) return false;
  const auto h = sha256(out);
  return as_view(h) == hash;
}

void engine::impl::serve(const std::shared_ptr<conn>& c, const msg_block_request& rq) {
  msg_block reply;
  reply.id = rq.id;
  std::optional<block_loc> loc;
  if (validate_path(rq.path)) {
    auto r = f.db().get(rq.path);
    if (r && r->type == entry_type::file && !r->deleted && rq.block < r->block_total() &&
        std::string_view(r->blocks).substr(rq.block * 32, 32) == rq.hash) {
      const std::uint64_t off = rq.block * r->block_size;
      loc = block_loc{f.paths().dir / rq.path, off,
                      static_cast<std::uint32_t>(std::min<std::uint64_t>(r->block_size, r->size - off))};
    }
  }
  if (!loc) {
    auto found = find_block(rq.hash, 1);
    if (!found.empty()) loc = found.front();
  }
  if (!loc || rq.offset >= loc->length) {
    reply.error = "not here";
    send(c, reply);
    return;
  }
  const std::uint32_t len = std::min(rq.length, loc->length - rq.offset);
  const int fd = ::open(loc->file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  reply.data.resize(len);
  std::size_t got = 0;
  while (fd >= 0 && got < len) {
    const ssize_t n =
        ::pread(fd, reply.data.data() + got, len - got, static_cast<off_t>(loc->offset + rq.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (fd >= 0) ::close(fd);
  if (got != len) {
    reply.data.clear();
    reply.error = "cannot read";
  }
  send(c, reply);
}

asio::awaitable<result<std::string>> engine::impl::request_chunk(std::shared_ptr<conn> c, msg_block_request rq) {
  auto self = shared_from_this();
  if (c->closed) co_return error{errc::io, "peer gone"};
  rq.id = next_request++;
  auto p = std::make_shared<pending_block>(io);
  p->timer.expires_after(request_limit);
  c->pending[rq.id] = p;
  send(c, rq);
  boost::system::error_code ec;
  co_await p->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  c->pending.erase(rq.id);
  if (!p->reply) co_return error{errc::io, c->closed ? "peer gone" : "no answer"};
  if (!p->reply->error.empty()) co_return error{errc::io, p->reply->error};
  co_return std::move(p->reply->data);
}

asio::awaitable<void> engine::impl::fetch_worker(std::shared_ptr<fetch_job> j, std::size_t w) {
  auto self = shared_from_this();
  while (!j->failed && !stopped && j->next < j->missing.size()) {
    const std::uint64_t b = j->missing[j->next++];
    const std::uint64_t start = b * j->r.block_size;
    const auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(j->r.block_size, j->r.size - start));
    const std::string hash = j->r.blocks.substr(b * 32, 32);
    bool ok = false;
    for (std::size_t k = 0; k < j->peers.size() && !ok && !stopped; ++k) {
      auto c = j->peers[(w + b + k) % j->peers.size()];
      if (c->closed) continue;
      std::string data;
      bool good = true;
      for (std::uint32_t off = 0; off < len && good; off += max_chunk_bytes) {
        msg_block_request rq;
        rq.path = j->r.path;
        rq.block = b;
        rq.hash = hash;
        rq.offset = off;
        rq.length = std::min(max_chunk_bytes, len - off);
        auto got = co_await request_chunk(c, rq);
        if (!got || got->size() != rq.length) {
          good = false;
        } else {
          data += *got;
        }
      }
      if (!good) continue;
      // Hashed and written on the disk pool, so the network thread decrypts the next
      // blocks meanwhile.
      struct written {
        std::string data;
        bool matches = false;
        std::string why;  // a write error
      };
      auto w = std::make_shared<written>();
      w->data = std::move(data);
      // Named, not a temporary in the co_await: GCC 12 destroys such a lambda's captures twice.
      std::function<void()> hash_and_write = [w, hash, fd = j->fd, start] {
        w->matches = as_view(sha256(w->data)) == hash;
        if (!w->matches) return;
        std::size_t put = 0;
        while (put < w->data.size()) {
          const ssize_t n = ::pwrite(fd, w->data.data() + put, w->data.size() - put, static_cast<off_t>(start + put));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            w->why = std::string("write: ") + (n < 0 ? std::strerror(errno) : "no space written");
            return;
          }
          put += static_cast<std::size_t>(n);
        }
      };
      co_await on_disk_pool(std::move(hash_and_write));
      if (!w->matches) {
        log("sync: block " + std::to_string(b) + " of " + shown(j->r.path) + " from " + c->id +
            " does not match its hash");
        continue;
      }
      if (!w->why.empty()) {
        j->why = w->why;
        j->failed = true;
        break;
      }
      ok = true;
      j->fetched_bytes += w->data.size();
    }
    if (!ok && !j->failed) {
      j->why = "no peer could give block " + std::to_string(b);
      j->failed = true;
    }
  }
  if (--j->running == 0) j->done.cancel();
}

asio::awaitable<void> engine::impl::on_disk_pool(std::function<void()> job) {
  auto finished = std::make_shared<asio::steady_timer>(io, std::chrono::steady_clock::time_point::max());
  ses.disk_pool().post([job = std::move(job), finished, &ioc = io]() mutable {
    job();
    job = nullptr;
    // Posted: the coroutine waits on the network thread (it suspends before this can run).
    // The timer moves with the handler: it must never be destroyed on this thread.
    asio::post(ioc, [f = std::move(finished)] { f->cancel(); });
  });
  co_await finished->async_wait(asio::as_tuple(asio::use_awaitable));
}

namespace {

// Copies len bytes from src at src_off to dst at dst_off in the kernel (no copy through
// user space; a clone where the file system shares extents), falling back to pread/pwrite
// where copy_file_range cannot (another file system, an old kernel). False on a read or
// write error or a short source.
bool copy_range(int src, std::uint64_t src_off, int dst, std::uint64_t dst_off, std::uint64_t len) {
  auto in = static_cast<off_t>(src_off), out = static_cast<off_t>(dst_off);
  while (len > 0) {
    const ssize_t n = ::copy_file_range(src, &in, dst, &out, len, 0);
    if (n > 0) {
      len -= static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return false;  // the source is shorter than it was
    if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL) return false;
    std::string buf(std::min<std::uint64_t>(len, 1 << 20), '\0');
    while (len > 0) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(len, buf.size()));
      const ssize_t r = ::pread(src, buf.data(), want, in);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      if (::pwrite(dst, buf.data(), static_cast<std::size_t>(r), out) != r) return false;
      in += r;
      out += r;
      len -= static_cast<std::uint64_t>(r);
    }
  }
  return true;
}

// A local file as its index record says it is: a regular file of that size and mtime (what
// the scanner trusts too before it hashes anything again).
bool as_indexed(int fd, const record& rec) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == rec.size &&
         std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec == rec.mtime_ns;
}

}  // namespace

// Assembles r's content in .shoal/tmp (resuming what an earlier try left there): the path
// of the finished temporary file, fsync'd, with r's mode and mtime.
//
// The blocks the old version of the same path already has (an edit in a large file) are
// copied from it in the kernel, in runs, without being read and hashed again, when the file
// is still as its index record says (size and mtime, checked before and after the copy;
// if it changed meanwhile, those blocks are hashed in the temporary file and fetched where
// they do not match). Other local blocks are read and checked against their hash first.
asio::awaitable<result<std::filesystem::path>> engine::impl::assemble(const record& r, const need& n) {
  auto self = shared_from_this();
  const auto tmpdir = f.paths().state / "tmp";
  ::mkdir(tmpdir.c_str(), 0700);
  const std::string canon = encode_record(r);
  const auto tmp = tmpdir / (to_hex(as_view(sha256(canon))).substr(0, 40) + ".part");
  struct stat st {};
  const bool existed = ::lstat(tmp.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) co_return error{errc::io, tmp.string() + ": " + std::strerror(errno)};
  if (::ftruncate(fd, static_cast<off_t>(r.size)) != 0) {
    ::close(fd);
    co_return error{errc::io, std::string("ftruncate: ") + std::strerror(errno)};
  }
  auto j = std::make_shared<fetch_job>(io);
  j->fd = fd;
  j->r = r;
  std::string buf;
  std::uint64_t reused = 0;
  // The old version of this path, if it is on disk as indexed: its blocks by hash.
  int old_fd = -1;
  std::optional<record> old;
  std::unordered_map<std::string_view, std::uint64_t> old_blocks;  // hash -> offset
  if (auto o = f.db().get(r.path); o && o->type == entry_type::file && !o->deleted && o->block_size == r.block_size) {
    old = std::move(*o);
    old_fd = ::open((f.paths().dir / r.path).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (old_fd >= 0 && !as_indexed(old_fd, *old)) {
      ::close(old_fd);
      old_fd = -1;
    }
    if (old_fd >= 0) {
      for (std::uint64_t i = 0; i < old->block_total(); ++i)
        old_blocks.emplace(std::string_view(old->blocks).substr(i * 32, 32), i * old->block_size);
    }
  }
  struct run {
    std::uint64_t src, dst, len;
  };
  std::vector<run> runs;              // from the old version, contiguous blocks merged
  std::vector<std::uint64_t> copied;  // the blocks those runs carry
  for (std::uint64_t b = 0; b < r.block_total(); ++b) {
    const std::uint64_t off = b * r.block_size;
    const auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.block_size, r.size - off));
    const std::string_view hash = std::string_view(r.blocks).substr(b * 32, 32);
    if (existed && read_verified(block_loc{tmp, off, len}, hash, buf)) continue;
    if (old_fd >= 0) {
      if (auto it = old_blocks.find(hash);
          it != old_blocks.end() && std::min<std::uint64_t>(old->block_size, old->size - it->second) == len) {
        if (!runs.empty() && runs.back().src + runs.back().len == it->second &&
            runs.back().dst + runs.back().len == off) {
          runs.back().len += len;
        } else {
          runs.push_back(run{it->second, off, len});
        }
        copied.push_back(b);
        continue;
      }
    }
    bool found = false;
    std::vector<block_loc> cands;
    cands = find_block(hash, 4);
    if (auto it = moved_blocks.find(std::string(hash)); it != moved_blocks.end()) cands.push_back(it->second);
    for (const auto& loc : cands) {
      if (loc.length == len && read_verified(loc, hash, buf) &&
          ::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(buf.size())) {
        found = true;
        reused += len;
        break;
      }
    }
    if (!found) j->missing.push_back(b);
  }
  if (!runs.empty()) {
    bool ok = true;
    for (const auto& c : runs)
      ok = ok && copy_range(old_fd, c.src, fd, c.dst, c.len);
    std::uint64_t bytes = 0;
    for (const auto& c : runs)
      bytes += c.len;
    if (ok && as_indexed(old_fd, *old)) {
      reused += bytes;
    } else {
      // Changed while it was copied (or unreadable): what arrived intact stays.
      for (auto b : copied) {
        const std::uint64_t off = b * r.block_size;
        const auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.block_size, r.size - off));
        if (read_verified(block_loc{tmp, off, len}, std::string_view(r.blocks).substr(b * 32, 32), buf)) {
          reused += len;
        } else {
          j->missing.push_back(b);
        }
      }
      std::sort(j->missing.begin(), j->missing.end());
    }
  }
  if (old_fd >= 0) ::close(old_fd);
  if (!j->missing.empty()) {
    for (auto& c : conns)
      if (!c->closed && n.sources.count(c->id) != 0) j->peers.push_back(c);
    for (auto& c : conns)
      if (!c->closed && n.sources.count(c->id) == 0) j->peers.push_back(c);
    if (j->peers.empty()) {
      ::close(fd);
      co_return error{errc::io, "no peer connected has it"};
    }
    const std::size_t workers = std::min<std::size_t>({j->missing.size(), 4 * j->peers.size(), 16});
    j->running = workers;
    j->done.expires_at(std::chrono::steady_clock::time_point::max());
    for (std::size_t w = 0; w < workers; ++w)
      spawn(fetch_worker(j, w), "sync fetch");
    boost::system::error_code ec;
    co_await j->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (j->failed || stopped) {
      ::close(fd);
      co_return error{errc::io, j->why.empty() ? "stopped" : j->why};
    }
  }
  bytes_reused += reused;
  bytes_fetched += j->fetched_bytes;
  // The fsync on the session's disk pool: the network thread goes on with other files
  // (and their blocks) meanwhile, instead of waiting for the disk file after file.
  auto why = std::make_shared<std::string>();
  std::function<void()> sync_file = [fd, mode = r.mode, mtime = r.mtime_ns, why] {
    ::fchmod(fd, mode);
    const timespec times[2] = {{0, UTIME_OMIT},
                               {static_cast<time_t>(mtime / 1'000'000'000), static_cast<long>(mtime % 1'000'000'000)}};
    if (::fsync(fd) != 0 || ::futimens(fd, times) != 0) *why = std::string("fsync: ") + std::strerror(errno);
    ::close(fd);
  };
  co_await on_disk_pool(std::move(sync_file));
  if (!why->empty()) co_return error{errc::io, *why};
  co_return tmp;
}

}  // namespace shoal::sync
