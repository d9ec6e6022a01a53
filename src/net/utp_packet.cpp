#include "net/utp_packet.hpp"

#include <string>

namespace shoal::net::utp {

namespace {

std::uint16_t get16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t get32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void put16(char* p, std::uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}
void put32(char* p, std::uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

error fail(errc c, std::string what, std::size_t at) {
  return error{c, "utp: " + std::move(what), at};
}

}  // namespace

bool looks_like_utp(std::span<const char> d) noexcept {
  if (d.size() < header_size) return false;
  const auto b = static_cast<unsigned char>(d[0]);
  return (b & 0x0f) == protocol_version && (b >> 4) <= static_cast<unsigned>(packet_type::syn);
}

result<packet> parse_packet(std::span<const char> d) {
  if (d.size() < header_size) {
    return fail(errc::syntax, "packet of " + std::to_string(d.size()) + " bytes is shorter than the header", 0);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(d.data());
  if ((p[0] & 0x0f) != protocol_version) {
    return fail(errc::syntax, "version " + std::to_string(p[0] & 0x0f) + " is not 1", 0);
  }
  if ((p[0] >> 4) > static_cast<unsigned>(packet_type::syn)) {
    return fail(errc::syntax, "unknown packet type " + std::to_string(p[0] >> 4), 0);
  }
  packet out;
  out.h.type = static_cast<packet_type>(p[0] >> 4);
  out.h.extension = p[1];
  out.h.connection_id = get16(p + 2);
  out.h.timestamp_us = get32(p + 4);
  out.h.timestamp_diff_us = get32(p + 8);
  out.h.wnd_size = get32(p + 12);
  out.h.seq_nr = get16(p + 16);
  out.h.ack_nr = get16(p + 18);

  std::size_t pos = header_size;
  std::uint8_t ext = out.h.extension;
  std::size_t count = 0;
  while (ext != ext_none) {
    if (++count > max_extensions) {
      return fail(errc::limit_exceeded, "more than " + std::to_string(max_extensions) + " extensions", pos);
    }
    if (d.size() - pos < 2) return fail(errc::syntax, "extension header truncated", pos);
    const std::uint8_t next = p[pos];
    const std::size_t len = p[pos + 1];
    if (d.size() - pos - 2 < len) {
      return fail(
          errc::syntax,
          "extension " + std::to_string(ext) + " of " + std::to_string(len) + " bytes runs past the end of the packet",
          pos);
    }
    if (ext == ext_sack) {
      if (!out.sack.empty()) return fail(errc::syntax, "second selective ACK extension", pos);
      // BEP 29 asks for a multiple of 4 bytes, but libtorrent sends other lengths (6, 10):
      // any non-empty mask is taken. Bits past the ones we can track are ignored.
      if (len == 0) return fail(errc::syntax, "empty selective ACK", pos);
      out.sack = std::span<const std::uint8_t>(p + pos + 2, std::min(len, max_sack_bytes));
    }
    // Unknown extensions are skipped, as BEP 29 says.
    pos += 2 + len;
    ext = next;
  }
  out.payload = d.subspan(pos);
  if (!out.payload.empty() && out.h.type != packet_type::data && out.h.type != packet_type::fin) {
    return fail(errc::syntax, "payload on a packet of type " + std::to_string(static_cast<int>(out.h.type)), pos);
  }
  return out;
}

std::size_t write_header(char* out, const header& h, std::span<const std::uint8_t> sack) noexcept {
  out[0] = static_cast<char>((static_cast<unsigned>(h.type) << 4) | protocol_version);
  out[1] = static_cast<char>(sack.empty() ? ext_none : ext_sack);
  put16(out + 2, h.connection_id);
  put32(out + 4, h.timestamp_us);
  put32(out + 8, h.timestamp_diff_us);
  put32(out + 12, h.wnd_size);
  put16(out + 16, h.seq_nr);
  put16(out + 18, h.ack_nr);
  if (sack.empty()) return header_size;
  out[20] = static_cast<char>(ext_none);
  out[21] = static_cast<char>(sack.size());
  for (std::size_t i = 0; i < sack.size(); ++i)
    out[22 + i] = static_cast<char>(sack[i]);
  return header_size + 2 + sack.size();
}

}  // namespace shoal::net::utp
