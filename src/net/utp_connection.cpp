#include "net/utp_connection.hpp"

#include <algorithm>
#include <cstring>

namespace shoal::net::utp {

namespace {
constexpr std::uint16_t u16(int v) {
  return static_cast<std::uint16_t>(v);
}
// Wrap-aware "a < b" for 32-bit microsecond stamps (they wrap every 71 minutes).
bool delay_less(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) < 0;
}
constexpr time_us minute_us = 60'000'000;
}  // namespace

connection::connection(connection_config cfg, send_fn send) : cfg_(cfg), send_(std::move(send)) {
  cfg_.max_datagram = std::clamp<std::size_t>(cfg_.max_datagram, header_size + 2 + max_sack_bytes + 1, 1452 - 48);
  if (cfg_.min_cwnd_packets == 0) cfg_.min_cwnd_packets = 1;
  if (cfg_.ack_every == 0) cfg_.ack_every = 1;
  // The rings are allocated when the first byte goes into them, not here: a half-open
  // connection (a SYN anyone can spoof) costs no buffer memory.
  cfg_.send_buffer = std::max<std::size_t>(cfg_.send_buffer, 1);
  cfg_.recv_buffer = std::max<std::size_t>(cfg_.recv_buffer, payload_size());
  out_.resize(window_slots);
  in_.resize(window_slots);
  rto_us_ = cfg_.initial_rto_us;
  cwnd_ = static_cast<double>(cfg_.min_cwnd_packets * payload_size());
  ssthresh_ = static_cast<double>(cfg_.max_cwnd_bytes);
}

bool connection::done() const {
  if (state_ == conn_state::failed || state_ == conn_state::closed) return true;
  return local_closed_ && fin_acked_;
}

void connection::fail(conn_error e) {
  if (state_ == conn_state::failed || state_ == conn_state::closed) return;
  state_ = conn_state::failed;
  error_ = e;
  rto_deadline_ = 0;
  events_ |= ev_failed | ev_readable | ev_writable | ev_done;
}

std::uint32_t connection::advertised_window() const {
  const std::size_t used = r_size_ + ooo_bytes_;
  return used >= cfg_.recv_buffer ? 0 : static_cast<std::uint32_t>(cfg_.recv_buffer - used);
}

// --- sending ---------------------------------------------------------------------------

void connection::emit(packet_type type, std::uint16_t seq, std::span<const char> payload, time_us now, bool with_sack) {
  header h;
  h.type = type;
  h.connection_id = type == packet_type::syn ? recv_id_ : send_id_;
  h.timestamp_us = static_cast<std::uint32_t>(now);
  h.timestamp_diff_us = reply_micro_;
  h.wnd_size = advertised_window();
  h.seq_nr = seq;
  h.ack_nr = ack_nr_;
  std::array<std::uint8_t, max_sack_bytes> mask{};
  std::size_t mask_len = 0;
  if (with_sack && ooo_count_ > 0) {
    // Bit i acks ack_nr + 2 + i; the bitmask covers every out-of-order slot we hold.
    std::size_t highest = 0;
    for (std::size_t i = 0; i < max_sack_bytes * 8; ++i) {
      auto& s = in_[static_cast<std::uint16_t>(ack_nr_ + 2 + i) & (window_slots - 1)];
      if (s.present) {
        mask[i / 8] = static_cast<std::uint8_t>(mask[i / 8] | (1u << (i % 8)));
        highest = i;
      }
    }
    mask_len = (highest / 32 + 1) * 4;
  }
  std::size_t n = write_header(pkt_.data(), h, std::span<const std::uint8_t>(mask.data(), mask_len));
  if (!payload.empty()) std::memcpy(pkt_.data() + n, payload.data(), payload.size());
  n += payload.size();
  last_send_ = now;
  last_adv_wnd_ = h.wnd_size;
  ++stats_.packets_sent;
  if (type != packet_type::syn && type != packet_type::reset) ack_owed_ = 0;
  send_(std::span<const char>(pkt_.data(), n));
}

void connection::send_state(time_us now) {
  ++stats_.acks_sent;
  emit(packet_type::state, seq_nr_, {}, now, true);
}

void connection::arm_rto(time_us now) {
  if (rto_deadline_ == 0) rto_deadline_ = now + rto_us_;
}

// (Re)transmits the packet in slot `seq`, copying its payload out of the send ring.
void connection::send_packet(std::uint16_t seq, time_us now) {
  auto& o = slot(seq);
  char payload[1500];
  const std::size_t cap = cfg_.send_buffer;
  if (o.len > 0) {
    const std::size_t at = static_cast<std::size_t>(o.off % cap);
    const std::size_t first = std::min<std::size_t>(o.len, cap - at);
    std::memcpy(payload, sbuf_.data() + at, first);
    std::memcpy(payload + first, sbuf_.data(), o.len - first);
  }
  if (o.tx > 0) ++stats_.retransmits;
  if (o.need_resend) {
    o.need_resend = false;
    --resend_count_;
  }
  if (!o.sacked) cur_window_ += o.len;
  o.sent = now;
  if (o.tx < 255) ++o.tx;
  emit(o.fin ? packet_type::fin : packet_type::data, seq, std::span<const char>(payload, o.len), now, false);
  arm_rto(now);
}

void connection::try_send(time_us now) {
  if (state_ != conn_state::connected) return;
  const std::size_t mss = payload_size();
  auto limit = [&] { return std::min<std::size_t>(static_cast<std::size_t>(cwnd_), peer_wnd_); };
  auto fits = [&](std::size_t len) {
    if (cur_window_ + len <= limit()) return true;
    // A window below one packet still lets one packet out when nothing is in flight
    // (BEP 29 allows it when paced), or when the retransmission timer allows a probe.
    if (cur_window_ == 0 && (peer_wnd_ >= len || probe_)) return true;
    return false;
  };
  if (resend_count_ > 0) {
    for (std::uint16_t s = u16(acked_ + 1); s != seq_nr_ && resend_count_ > 0; ++s) {
      auto& o = slot(s);
      if (!o.need_resend) continue;
      if (!fits(o.len)) return;
      probe_ = false;
      send_packet(s, now);
    }
  }
  while (s_next_ < s_end_ && unacked_packets() < window_slots - 1) {
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(mss, s_end_ - s_next_));
    // Nagle: a partial packet waits while anything is in flight, unless we are closing.
    if (len < mss && cfg_.nagle && unacked_packets() > 0 && !local_closed_) break;
    if (!fits(len)) break;
    probe_ = false;
    const std::uint16_t seq = seq_nr_++;
    auto& o = slot(seq);
    o = out_pkt{};
    o.off = s_next_;
    o.len = static_cast<std::uint16_t>(len);
    s_next_ += len;
    send_packet(seq, now);
  }
  if (local_closed_ && !fin_sent_ && s_next_ == s_end_ && unacked_packets() < window_slots - 1) {
    fin_sent_ = true;
    const std::uint16_t seq = seq_nr_++;
    auto& o = slot(seq);
    o = out_pkt{};
    o.off = s_end_;
    o.fin = true;
    send_packet(seq, now);
  }
}

std::size_t connection::write(std::span<const char> data, time_us now) {
  if (state_ == conn_state::failed || state_ == conn_state::closed || local_closed_) return 0;
  const std::size_t n = std::min(data.size(), send_space());
  const std::size_t cap = cfg_.send_buffer;
  if (n > 0 && sbuf_.empty()) sbuf_.resize(cap);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t at = static_cast<std::size_t>((s_end_ + done) % cap);
    const std::size_t chunk = std::min(n - done, cap - at);
    std::memcpy(sbuf_.data() + at, data.data() + done, chunk);
    done += chunk;
  }
  s_end_ += n;
  try_send(now);
  return n;
}

std::size_t connection::read(std::span<char> out, time_us now) {
  const std::size_t n = std::min(out.size(), r_size_);
  const std::size_t cap = cfg_.recv_buffer;
  std::size_t done = 0;
  while (done < n) {
    const std::size_t chunk = std::min(n - done, cap - r_head_);
    std::memcpy(out.data() + done, rbuf_.data() + r_head_, chunk);
    r_head_ = (r_head_ + chunk) % cap;
    done += chunk;
  }
  r_size_ -= n;
  // A window that had shrunk under the remote's feet opens again: say so, or it waits for
  // its timer to probe.
  if (n > 0 && state_ == conn_state::connected) {
    const std::uint32_t w = advertised_window();
    if (w >= last_adv_wnd_ + cfg_.recv_buffer / 2 || (last_adv_wnd_ < 2 * payload_size() && w >= 2 * payload_size())) {
      send_state(now);
    }
  }
  return n;
}

void connection::close(time_us now) {
  if (local_closed_) return;
  local_closed_ = true;
  if (state_ == conn_state::syn_sent || state_ == conn_state::syn_recv || state_ == conn_state::idle) {
    state_ = conn_state::closed;
    events_ |= ev_done;
    return;
  }
  try_send(now);
}

void connection::abort(time_us now) {
  if (state_ == conn_state::connected || state_ == conn_state::syn_recv)
    emit(packet_type::reset, seq_nr_, {}, now, false);
  local_closed_ = true;
  if (state_ != conn_state::failed) {
    state_ = conn_state::closed;
    events_ |= ev_done | ev_readable | ev_writable;
  }
}

// --- setup -----------------------------------------------------------------------------

void connection::connect(std::uint16_t recv_id, std::uint16_t initial_seq, time_us now) {
  recv_id_ = recv_id;
  send_id_ = u16(recv_id + 1);
  syn_seq_ = initial_seq;
  seq_nr_ = u16(initial_seq + 1);
  acked_ = u16(initial_seq - 1);  // the SYN is unacked
  created_ = last_recv_ = now;
  state_ = conn_state::syn_sent;
  emit(packet_type::syn, syn_seq_, {}, now, false);
  rto_deadline_ = now + rto_us_;
}

void connection::accept(const packet& syn, std::uint16_t initial_seq, time_us now) {
  recv_id_ = u16(syn.h.connection_id + 1);
  send_id_ = syn.h.connection_id;
  ack_nr_ = syn.h.seq_nr;
  seq_nr_ = initial_seq;
  acked_ = u16(initial_seq - 1);
  peer_wnd_ = syn.h.wnd_size;
  reply_micro_ = static_cast<std::uint32_t>(now) - syn.h.timestamp_us;
  created_ = last_recv_ = now;
  state_ = conn_state::syn_recv;
  send_state(now);
}

// --- receiving -------------------------------------------------------------------------

void connection::on_packet(const packet& p, time_us now) {
  if (state_ == conn_state::failed || state_ == conn_state::closed || state_ == conn_state::idle) return;
  ++stats_.packets_received;
  if (p.h.type == packet_type::reset) {
    fail(state_ == conn_state::syn_sent ? conn_error::refused : conn_error::reset);
    return;
  }
  last_recv_ = now;
  reply_micro_ = static_cast<std::uint32_t>(now) - p.h.timestamp_us;

  if (state_ == conn_state::syn_sent) {
    if (p.h.type != packet_type::state || p.h.ack_nr != syn_seq_) return;
    state_ = conn_state::connected;
    events_ |= ev_connected | ev_writable;
    ack_nr_ = u16(p.h.seq_nr - 1);
    acked_ = syn_seq_;
    peer_wnd_ = p.h.wnd_size;
    if (syn_retries_ == 0) rtt_sample(now - created_);
    rto_deadline_ = 0;
    timeouts_ = 0;
    // Prove to the acceptor that we see its packets, so it may send data at once.
    send_state(now);
    try_send(now);
    return;
  }
  if (p.h.type == packet_type::syn) {
    // Our STATE was lost and the initiator repeats its SYN: answer again.
    if (state_ == conn_state::syn_recv || p.h.seq_nr == u16(ack_nr_)) send_state(now);
    return;
  }
  if (state_ == conn_state::syn_recv) {
    // Anti-reflection: the remote must echo our initial sequence number (a spoofed SYN's
    // source never saw it). Until then we send no data, and nothing but this one STATE.
    if (p.h.ack_nr != acked_) return;
    state_ = conn_state::connected;
    events_ |= ev_connected | ev_writable;
  }
  on_ack(p, now);
  if (state_ != conn_state::connected) return;
  if (p.h.type == packet_type::data || p.h.type == packet_type::fin) on_incoming_seq(p, now);
  try_send(now);
}

void connection::on_ack(const packet& p, time_us now) {
  const std::uint16_t ack = p.h.ack_nr;
  // An ack for a packet we never sent: ignore the ack fields (the data may still be good).
  if (seq_less(u16(seq_nr_ - 1), ack) || seq_less(ack, acked_)) return;
  const std::uint32_t prev_wnd = peer_wnd_;
  peer_wnd_ = p.h.wnd_size;
  const std::size_t flight_before = cur_window_;
  std::size_t bytes_acked = 0;
  bool new_ack = false;
  while (acked_ != ack) {
    acked_ = u16(acked_ + 1);
    auto& o = slot(acked_);
    if (!o.sacked && !o.need_resend) cur_window_ -= o.len;
    if (o.need_resend) {
      o.need_resend = false;
      --resend_count_;
    }
    if (!o.sacked) {
      bytes_acked += o.len;
      if (o.tx == 1) rtt_sample(now - o.sent);
    }
    if (o.fin) fin_acked_ = true;
    s_base_ = o.off + o.len;
    new_ack = true;
  }
  bool lost = false;
  if (!p.sack.empty()) {
    for (std::size_t i = 0; i < p.sack.size() * 8; ++i) {
      if (!(p.sack[i / 8] & (1u << (i % 8)))) continue;
      const std::uint16_t s = u16(ack + 2 + static_cast<int>(i));
      if (!seq_less(acked_, s) || !seq_less(s, seq_nr_)) continue;
      auto& o = slot(s);
      if (o.sacked) continue;
      if (o.need_resend) {
        o.need_resend = false;
        --resend_count_;
      } else {
        cur_window_ -= o.len;
      }
      o.sacked = true;
      bytes_acked += o.len;
      if (o.tx == 1) rtt_sample(now - o.sent);
    }
    // A packet with three or more selectively acked packets after it is lost.
    std::size_t after = 0;
    for (std::uint16_t s = u16(seq_nr_ - 1); s != acked_; --s) {
      auto& o = slot(s);
      if (o.sacked) {
        ++after;
      } else if (after >= 3 && !o.need_resend && !o.fast_resent) {
        o.fast_resent = true;
        mark_lost(s);
        lost = true;
      }
    }
  }
  if (new_ack) {
    dup_acks_ = 0;
    timeouts_ = 0;
    rto_deadline_ = unacked_packets() > 0 ? now + rto_us_ : 0;
    if (in_recovery_ && !seq_less(acked_, recovery_until_)) in_recovery_ = false;
    events_ |= ev_writable;
  } else if (p.h.wnd_size < payload_size()) {
    // The remote is alive and its window is closed: probes refused that way are not
    // timeouts, however long the application takes to read.
    timeouts_ = 0;
  } else if (p.h.type == packet_type::state && unacked_packets() > 0 && p.sack.empty() && p.h.wnd_size == prev_wnd) {
    if (++dup_acks_ == 3) {
      auto& o = slot(u16(acked_ + 1));
      if (!o.need_resend && !o.fast_resent && !o.sacked) {
        o.fast_resent = true;
        mark_lost(u16(acked_ + 1));
        lost = true;
      }
    }
  }
  if (lost) on_loss();
  if (bytes_acked > 0) ledbat(bytes_acked, flight_before, p.h.timestamp_diff_us, now);
}

void connection::mark_lost(std::uint16_t seq) {
  auto& o = slot(seq);
  if (o.need_resend || o.sacked) return;
  cur_window_ -= o.len;
  o.need_resend = true;
  ++resend_count_;
  ++stats_.fast_retransmits;
}

void connection::on_loss() {
  // Halve once per window of data, as TCP does.
  if (in_recovery_) return;
  in_recovery_ = true;
  recovery_until_ = u16(seq_nr_ - 1);
  slow_start_ = false;
  cwnd_ = std::max(cwnd_ / 2, static_cast<double>(cfg_.min_cwnd_packets * payload_size()));
  ssthresh_ = cwnd_;
}

void connection::rtt_sample(time_us sample) {
  const auto r = static_cast<std::uint32_t>(std::min<time_us>(sample, 60'000'000));
  if (srtt_us_ == 0) {
    srtt_us_ = std::max<std::uint32_t>(r, 1);
    rttvar_us_ = r / 2;
  } else {
    const auto delta = static_cast<std::uint32_t>(srtt_us_ > r ? srtt_us_ - r : r - srtt_us_);
    rttvar_us_ = static_cast<std::uint32_t>((static_cast<std::int64_t>(rttvar_us_) * 3 + delta) /
                                            4);  // += (|delta| - rttvar) / 4
    srtt_us_ = static_cast<std::uint32_t>((static_cast<std::int64_t>(srtt_us_) * 7 + r) / 8);
  }
  rto_us_ = std::max<std::uint32_t>(cfg_.min_rto_us, srtt_us_ + 4 * rttvar_us_);
}

void connection::ledbat(std::size_t bytes_acked, std::size_t flight_before, std::uint32_t sample, time_us now) {
  const double mss = static_cast<double>(payload_size());
  std::uint32_t qdelay = 0;
  if (sample != 0) {
    // Base delay: the minimum one-way delay over the last two minutes (and this one).
    if (base_rotated_ == 0) base_rotated_ = now;
    if (now - base_rotated_ >= minute_us) {
      base_rotated_ = now;
      base_min_[2] = base_min_[1];
      base_set_[2] = base_set_[1];
      base_min_[1] = base_min_[0];
      base_set_[1] = base_set_[0];
      base_set_[0] = false;
    }
    if (!base_set_[0] || delay_less(sample, base_min_[0])) {
      base_min_[0] = sample;
      base_set_[0] = true;
    }
    std::uint32_t base = base_min_[0];
    for (std::size_t i = 1; i < 3; ++i)
      if (base_set_[i] && delay_less(base_min_[i], base)) base = base_min_[i];
    // Noise filter: the smallest of the last few samples.
    recent_delay_[recent_n_++ % recent_delay_.size()] = sample - base;
    std::uint32_t filtered = recent_delay_[0];
    for (std::size_t i = 1; i < std::min(recent_n_, recent_delay_.size()); ++i)
      filtered = std::min(filtered, recent_delay_[i]);
    qdelay = filtered;
  }
  last_qdelay_us_ = qdelay;
  const double before = cwnd_;
  const double target = cfg_.target_delay_us;
  if (slow_start_ && qdelay > target / 2) slow_start_ = false;
  if (slow_start_ && cwnd_ < ssthresh_) {
    cwnd_ += static_cast<double>(bytes_acked);
  } else {
    const double off_target = (target - static_cast<double>(qdelay)) / target;
    if (off_target >= 0) {
      cwnd_ += cfg_.gain * off_target * static_cast<double>(bytes_acked) * mss / cwnd_;
    } else {
      // Above the target the decrease is multiplicative (as LEDBAT++ has it): per round
      // trip the window loses its share of the excess delay, at most half of it. RFC 6817's
      // linear decrease (a packet or two per round trip) would take a minute to make room
      // for a TCP flow that has filled a large queue.
      const double per_rtt = std::max(cfg_.gain * mss + cwnd_ * off_target, -cwnd_ / 2);
      cwnd_ += per_rtt * static_cast<double>(bytes_acked) / cwnd_;
    }
  }
  // Grow only while the window is used (RFC 6817 caps cwnd at the flight size plus a
  // little); a window that is not used is not cut either.
  const double max_allowed = static_cast<double>(flight_before) + 4 * mss;
  if (cwnd_ > before && cwnd_ > max_allowed) cwnd_ = std::max(before, max_allowed);
  cwnd_ = std::clamp(cwnd_, static_cast<double>(cfg_.min_cwnd_packets) * mss, static_cast<double>(cfg_.max_cwnd_bytes));
}

void connection::on_incoming_seq(const packet& p, time_us now) {
  const bool fin = p.h.type == packet_type::fin;
  if (eof_reached_) {
    send_state(now);
    return;
  }
  const auto d = static_cast<std::uint16_t>(p.h.seq_nr - u16(ack_nr_ + 1));
  if (d >= 0x8000) {
    // Old: our ACK was lost. Say again what we have.
    send_state(now);
    return;
  }
  if (eof_seen_ && seq_less(eof_seq_, p.h.seq_nr)) return;  // past the FIN
  if (d == 0) {
    if (r_size_ + ooo_bytes_ + p.payload.size() > cfg_.recv_buffer) {
      // Past our window (a zero-window probe): refuse it, and say the window again.
      ++stats_.dropped_out_of_window;
      send_state(now);
      return;
    }
    deliver(p.payload, fin);
    const bool had_ooo = ooo_count_ > 0;
    while (ooo_count_ > 0 && !eof_reached_) {
      auto& s = islot(u16(ack_nr_ + 1));
      if (!s.present) break;
      s.present = false;
      --ooo_count_;
      ooo_bytes_ -= s.data.size();
      deliver(s.data, s.fin);
    }
    ++ack_owed_;
    if (had_ooo || eof_reached_ || ack_owed_ >= cfg_.ack_every) send_state(now);
    return;
  }
  if (d >= max_sack_bytes * 8) {
    ++stats_.dropped_out_of_window;
    return;
  }
  auto& s = islot(p.h.seq_nr);
  if (!s.present) {
    if (r_size_ + ooo_bytes_ + p.payload.size() > cfg_.recv_buffer) {
      ++stats_.dropped_out_of_window;
      return;
    }
    s.present = true;
    s.fin = fin;
    s.data.assign(p.payload.begin(), p.payload.end());
    ooo_bytes_ += s.data.size();
    ++ooo_count_;
    if (fin) {
      eof_seen_ = true;
      eof_seq_ = p.h.seq_nr;
    }
  }
  send_state(now);  // with the selective ACK
}

void connection::deliver(std::span<const char> data, bool fin) {
  const std::size_t cap = cfg_.recv_buffer;
  if (!data.empty() && rbuf_.empty()) rbuf_.resize(cap);
  std::size_t done = 0;
  while (done < data.size()) {
    const std::size_t tail = (r_head_ + r_size_ + done) % cap;
    const std::size_t chunk = std::min(data.size() - done, cap - tail);
    std::memcpy(rbuf_.data() + tail, data.data() + done, chunk);
    done += chunk;
  }
  r_size_ += data.size();
  ack_nr_ = u16(ack_nr_ + 1);
  if (!data.empty()) events_ |= ev_readable;
  if (fin) {
    eof_seen_ = eof_reached_ = true;
    eof_seq_ = ack_nr_;
    events_ |= ev_readable;
  }
}

// --- timers ----------------------------------------------------------------------------

void connection::flush(time_us now) {
  if (ack_owed_ > 0 && state_ == conn_state::connected) send_state(now);
}

void connection::tick(time_us now) {
  if (state_ == conn_state::failed || state_ == conn_state::closed || state_ == conn_state::idle) return;
  if (state_ == conn_state::syn_recv) {
    if (now - created_ >= cfg_.syn_recv_timeout_us) {
      state_ = conn_state::closed;
      events_ |= ev_done;
    }
    return;
  }
  if (now - last_recv_ >= cfg_.idle_timeout_us) {
    fail(conn_error::timed_out);
    return;
  }
  if (rto_deadline_ != 0 && now >= rto_deadline_) {
    rto_deadline_ = 0;
    ++stats_.timeouts;
    if (state_ == conn_state::syn_sent) {
      if (++syn_retries_ > cfg_.max_syn_retries) {
        fail(conn_error::timed_out);
        return;
      }
      rto_us_ = std::min<std::uint32_t>(rto_us_ * 2, 60'000'000);
      emit(packet_type::syn, syn_seq_, {}, now, false);
      rto_deadline_ = now + rto_us_;
      return;
    }
    if (unacked_packets() > 0) {
      if (++timeouts_ > cfg_.max_timeouts) {
        fail(conn_error::timed_out);
        return;
      }
      // Everything not selectively acked goes again; the window restarts from its minimum.
      for (std::uint16_t s = u16(acked_ + 1); s != seq_nr_; ++s) {
        auto& o = slot(s);
        if (o.sacked || o.need_resend) continue;
        cur_window_ -= o.len;
        o.need_resend = true;
        o.fast_resent = false;
        ++resend_count_;
      }
      ssthresh_ = std::max(cwnd_ / 2, static_cast<double>(cfg_.min_cwnd_packets * payload_size()));
      cwnd_ = static_cast<double>(cfg_.min_cwnd_packets * payload_size());
      slow_start_ = true;
      in_recovery_ = false;
      rto_us_ = std::min<std::uint32_t>(rto_us_ * 2, 60'000'000);
      probe_ = true;
      try_send(now);
      arm_rto(now);
    } else if (s_next_ < s_end_) {
      // Data waits on a closed window: probe it with one packet.
      probe_ = true;
      try_send(now);
    }
    return;
  }
  if (unacked_packets() == 0 && s_next_ < s_end_ && rto_deadline_ == 0 && state_ == conn_state::connected) {
    rto_deadline_ = now + rto_us_;  // a closed window: the timer probes it
  }
  if (state_ == conn_state::connected && now - last_send_ >= cfg_.keepalive_us) send_state(now);
}

}  // namespace shoal::net::utp
