// One uTP connection's protocol logic (BEP 29 with LEDBAT, RFC 6817), apart from any socket
// or clock: packets and the time come in as arguments, packets to send go out through a
// callback. The socket manager (utp.hpp) drives it; unit tests and the fuzz target drive it
// directly, deterministically.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "net/utp_packet.hpp"

namespace shoal::net::utp {

using time_us = std::uint64_t;  // microseconds on any monotonic clock

struct connection_config {
  std::size_t send_buffer = std::size_t{1} << 20;  // bytes queued by write() and not yet acked
  std::size_t recv_buffer = std::size_t{1} << 20;  // in-order + out-of-order bytes not yet read
  // The largest UDP payload we send: 1400 over IPv4, 1380 over IPv6 (40-byte IP header);
  // with the UDP and IP headers that stays well below 1452 bytes on the wire.
  std::size_t max_datagram = 1400;
  std::uint32_t target_delay_us = 100'000;  // LEDBAT's target queueing delay
  double gain = 1.0;                        // LEDBAT: packets of growth per RTT at zero delay
  std::size_t min_cwnd_packets = 2;
  std::size_t max_cwnd_bytes = std::size_t{8} << 20;
  std::uint32_t min_rto_us = 500'000;
  std::uint32_t initial_rto_us = 1'000'000;
  int max_timeouts = 6;     // consecutive retransmission timeouts before giving up
  int max_syn_retries = 4;  // SYNs resent before connect fails
  time_us keepalive_us = 20'000'000;
  time_us idle_timeout_us = 120'000'000;    // nothing heard for this long: timed out
  time_us syn_recv_timeout_us = 8'000'000;  // an accepted SYN never confirmed: forgotten
  std::size_t ack_every = 8;                // data packets received before an ACK goes out at once
  bool nagle = true;                        // hold a partial packet while data is in flight
};

enum class conn_state : std::uint8_t { idle, syn_sent, syn_recv, connected, closed, failed };
enum class conn_error : std::uint8_t { none, reset, timed_out, refused };

// Bits returned by take_events(): what changed since the last call.
inline constexpr unsigned ev_connected = 1, ev_readable = 2, ev_writable = 4, ev_failed = 8, ev_done = 16;

struct connection_stats {
  std::uint64_t packets_sent = 0, packets_received = 0, retransmits = 0, fast_retransmits = 0, timeouts = 0,
                acks_sent = 0, dropped_out_of_window = 0;
};

class connection {
 public:
  using send_fn = std::function<void(std::span<const char>)>;
  static constexpr std::size_t window_slots = 1024;  // packets in flight, and out-of-order slots

  connection(connection_config cfg, send_fn send);

  // Initiator: sends SYN with connection id `recv_id` (we send with recv_id + 1).
  void connect(std::uint16_t recv_id, std::uint16_t initial_seq, time_us now);
  // Acceptor: answers a SYN with STATE only; no data goes out until the remote proves it
  // receives our packets (it echoes our sequence number in its ack_nr).
  void accept(const packet& syn, std::uint16_t initial_seq, time_us now);
  // A packet already matched to this connection.
  void on_packet(const packet& p, time_us now);
  // Timers: retransmission, keep-alive, idle and SYN timeouts. Call every few tens of ms.
  void tick(time_us now);
  // End of a receive batch: sends the ACK owed, if any.
  void flush(time_us now);

  // Queues bytes to send; returns how many fitted into the send buffer.
  std::size_t write(std::span<const char> data, time_us now);
  // Takes received in-order bytes; 0 when none (see eof()).
  std::size_t read(std::span<char> out, time_us now);
  // Graceful close: FIN after the queued data; done() once the FIN is acked.
  void close(time_us now);
  // Abortive close: sends RESET.
  void abort(time_us now);

  [[nodiscard]] unsigned take_events() {
    unsigned e = events_;
    events_ = 0;
    return e;
  }
  [[nodiscard]] conn_state state() const { return state_; }
  [[nodiscard]] conn_error error() const { return error_; }
  [[nodiscard]] std::size_t readable() const { return r_size_; }
  [[nodiscard]] bool eof() const { return eof_reached_ && r_size_ == 0; }
  [[nodiscard]] std::size_t send_space() const { return cfg_.send_buffer - (s_end_ - s_base_); }
  [[nodiscard]] std::size_t unsent_or_unacked() const { return s_end_ - s_base_; }
  [[nodiscard]] bool done() const;
  [[nodiscard]] std::uint16_t recv_id() const { return recv_id_; }
  [[nodiscard]] std::uint16_t send_id() const { return send_id_; }
  [[nodiscard]] std::size_t cwnd() const { return static_cast<std::size_t>(cwnd_); }
  [[nodiscard]] std::uint32_t rto_us() const { return rto_us_; }
  [[nodiscard]] std::uint32_t srtt_us() const { return srtt_us_; }
  [[nodiscard]] std::uint32_t queuing_delay_us() const { return last_qdelay_us_; }
  [[nodiscard]] std::size_t payload_size() const { return cfg_.max_datagram - header_size; }
  [[nodiscard]] const connection_stats& stats() const { return stats_; }

 private:
  struct out_pkt {
    std::uint64_t off = 0;  // stream offset of the first byte
    time_us sent = 0;
    std::uint16_t len = 0;
    std::uint8_t tx = 0;  // transmissions
    bool fin = false, sacked = false, need_resend = false, fast_resent = false;
  };
  struct in_pkt {
    bool present = false, fin = false;
    std::vector<char> data;  // capacity kept between uses
  };

  void fail(conn_error e);
  void send_state(time_us now);
  void send_packet(std::uint16_t seq, time_us now);
  void emit(packet_type type, std::uint16_t seq, std::span<const char> payload, time_us now, bool with_sack);
  void try_send(time_us now);
  void on_ack(const packet& p, time_us now);
  void on_incoming_seq(const packet& p, time_us now);
  void deliver(std::span<const char> data, bool fin);
  void mark_lost(std::uint16_t seq);
  void on_loss();
  void rtt_sample(time_us sample);
  void ledbat(std::size_t bytes_acked, std::size_t flight_before, std::uint32_t delay_sample, time_us now);
  void arm_rto(time_us now);
  [[nodiscard]] std::uint32_t advertised_window() const;
  [[nodiscard]] std::size_t unacked_packets() const { return static_cast<std::uint16_t>(seq_nr_ - acked_ - 1); }
  out_pkt& slot(std::uint16_t seq) { return out_[seq & (window_slots - 1)]; }
  in_pkt& islot(std::uint16_t seq) { return in_[seq & (window_slots - 1)]; }

  connection_config cfg_;
  send_fn send_;
  conn_state state_ = conn_state::idle;
  conn_error error_ = conn_error::none;
  unsigned events_ = 0;
  connection_stats stats_;

  std::uint16_t recv_id_ = 0, send_id_ = 0;
  std::uint16_t seq_nr_ = 0;  // next sequence number to send
  std::uint16_t acked_ = 0;   // the remote's cumulative ack: everything up to here is acked
  std::uint16_t ack_nr_ = 0;  // the last in-order sequence number received
  std::uint16_t syn_seq_ = 0;
  std::uint32_t reply_micro_ = 0;
  std::uint32_t peer_wnd_ = 0;
  std::uint32_t last_adv_wnd_ = 0;
  time_us created_ = 0, last_recv_ = 0, last_send_ = 0;

  // Send side: a ring of bytes [s_base_, s_end_) by stream offset; [s_next_, s_end_) unsent.
  std::vector<char> sbuf_;
  std::uint64_t s_base_ = 0, s_next_ = 0, s_end_ = 0;
  std::vector<out_pkt> out_;
  std::size_t cur_window_ = 0;  // bytes in flight (not acked, sacked or waiting for resend)
  std::size_t resend_count_ = 0;
  bool local_closed_ = false, fin_sent_ = false, fin_acked_ = false;
  int dup_acks_ = 0;

  // Receive side: in-order bytes not yet read, and out-of-order packets.
  std::vector<char> rbuf_;
  std::size_t r_head_ = 0, r_size_ = 0;
  std::vector<in_pkt> in_;
  std::size_t ooo_bytes_ = 0, ooo_count_ = 0;
  std::size_t ack_owed_ = 0;
  bool eof_seen_ = false, eof_reached_ = false;
  std::uint16_t eof_seq_ = 0;

  // Timers and congestion control.
  std::uint32_t srtt_us_ = 0, rttvar_us_ = 0, rto_us_ = 0;
  time_us rto_deadline_ = 0;  // 0: not armed
  int timeouts_ = 0, syn_retries_ = 0;
  bool probe_ = false;  // zero-window probe: one packet may go out past the window
  double cwnd_ = 0;
  bool slow_start_ = true;
  double ssthresh_ = 0;
  bool in_recovery_ = false;
  std::uint16_t recovery_until_ = 0;
  // LEDBAT base delay: minima of the current and the previous two minutes.
  std::array<std::uint32_t, 3> base_min_{};
  std::array<bool, 3> base_set_{};
  time_us base_rotated_ = 0;
  std::array<std::uint32_t, 3> recent_delay_{};  // the last samples (noise filter)
  std::size_t recent_n_ = 0;
  std::uint32_t last_qdelay_us_ = 0;

  std::array<char, 1500> pkt_{};  // scratch for one outgoing datagram
};

}  // namespace shoal::net::utp
