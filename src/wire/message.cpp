#include "wire/message.hpp"

#include <algorithm>
#include <cstring>

namespace shoal::wire {

namespace {

std::uint32_t get32(const char* p) {
  auto b = [&](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void put32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}

error bad(msg m, const std::string& why) {
  return error{errc::syntax, "peer message " + std::string(msg_name(m)) + ": " + why, no_offset};
}

}  // namespace

std::string_view msg_name(msg m) {
  switch (m) {
    case msg::choke:
      return "choke";
    case msg::unchoke:
      return "unchoke";
    case msg::interested:
      return "interested";
    case msg::not_interested:
      return "not interested";
    case msg::have:
      return "have";
    case msg::bitfield:
      return "bitfield";
    case msg::request:
      return "request";
    case msg::piece:
      return "piece";
    case msg::cancel:
      return "cancel";
    case msg::port:
      return "port";
    case msg::suggest:
      return "suggest";
    case msg::have_all:
      return "have all";
    case msg::have_none:
      return "have none";
    case msg::reject:
      return "reject";
    case msg::allowed_fast:
      return "allowed fast";
    case msg::extended:
      return "extended";
    case msg::hash_request:
      return "hash request";
    case msg::hashes:
      return "hashes";
    case msg::hash_reject:
      return "hash reject";
    case msg::keep_alive:
      return "keep-alive";
  }
  return "unknown";
}

std::string encode_handshake(const handshake& h) {
  std::string out;
  out.reserve(handshake_size);
  out += static_cast<char>(protocol_name.size());
  out.append(protocol_name);
  out.append(reinterpret_cast<const char*>(h.reserved.data()), 8);
  out.append(as_view(h.info_hash));
  out.append(reinterpret_cast<const char*>(h.id.data()), 20);
  return out;
}

result<handshake> decode_handshake(std::string_view b) {
  if (b.size() != handshake_size) {
    return error{errc::syntax, "handshake: expected 68 bytes, got " + std::to_string(b.size()), no_offset};
  }
  if (static_cast<unsigned char>(b[0]) != protocol_name.size() || b.substr(1, 19) != protocol_name) {
    return error{errc::syntax, "handshake: not the BitTorrent protocol", 0};
  }
  handshake h;
  std::memcpy(h.reserved.data(), b.data() + 20, 8);
  std::memcpy(h.info_hash.data(), b.data() + 28, 20);
  std::memcpy(h.id.data(), b.data() + 48, 20);
  return h;
}

std::optional<std::uint32_t> peek_length(std::string_view buf) {
  if (buf.size() < 4) return std::nullopt;
  return get32(buf.data());
}

result<message> decode_message(std::string_view body) {
  message m;
  if (body.empty()) return m;  // keep-alive
  m.type = static_cast<msg>(static_cast<unsigned char>(body[0]));
  const std::string_view rest = body.substr(1);
  auto need = [&](std::size_t n) { return rest.size() == n; };
  switch (m.type) {
    case msg::choke:
    case msg::unchoke:
    case msg::interested:
    case msg::not_interested:
    case msg::have_all:
    case msg::have_none:
      if (!need(0)) return bad(m.type, "expected no payload, got " + std::to_string(rest.size()) + " bytes");
      return m;
    case msg::have:
    case msg::suggest:
    case msg::allowed_fast:
      if (!need(4)) return bad(m.type, "expected 4 bytes, got " + std::to_string(rest.size()));
      m.index = get32(rest.data());
      return m;
    case msg::bitfield:
      m.payload = rest;
      return m;
    case msg::request:
    case msg::cancel:
    case msg::reject:
      if (!need(12)) return bad(m.type, "expected 12 bytes, got " + std::to_string(rest.size()));
      m.index = get32(rest.data());
      m.begin = get32(rest.data() + 4);
      m.length = get32(rest.data() + 8);
      return m;
    case msg::piece:
      if (rest.size() < 8) return bad(m.type, "shorter than its 8-byte header");
      m.index = get32(rest.data());
      m.begin = get32(rest.data() + 4);
      m.payload = rest.substr(8);
      m.length = static_cast<std::uint32_t>(m.payload.size());
      return m;
    case msg::port:
      if (!need(2)) return bad(m.type, "expected 2 bytes, got " + std::to_string(rest.size()));
      m.port =
          static_cast<std::uint16_t>(static_cast<unsigned char>(rest[0]) << 8 | static_cast<unsigned char>(rest[1]));
      return m;
    case msg::extended:
      if (rest.empty()) return bad(m.type, "missing the extended message id");
      m.ext_id = static_cast<std::uint8_t>(rest[0]);
      m.payload = rest.substr(1);
      return m;
    case msg::hash_request:
    case msg::hashes:
    case msg::hash_reject:
      m.payload = rest;
      return m;
    case msg::keep_alive:
      break;
  }
  return error{
      errc::syntax,
      "peer message: unknown type " + std::to_string(static_cast<unsigned>(static_cast<unsigned char>(body[0]))),
      no_offset};
}

void put_simple(std::string& out, msg m) {
  put32(out, 1);
  out += static_cast<char>(m);
}

void put_keep_alive(std::string& out) {
  put32(out, 0);
}

void put_have(std::string& out, std::uint32_t index) {
  put_index(out, msg::have, index);
}

void put_bitfield(std::string& out, std::string_view bits) {
  put32(out, static_cast<std::uint32_t>(bits.size() + 1));
  out += static_cast<char>(msg::bitfield);
  out.append(bits);
}

void put_request(std::string& out, msg m, std::uint32_t index, std::uint32_t begin, std::uint32_t length) {
  put32(out, 13);
  out += static_cast<char>(m);
  put32(out, index);
  put32(out, begin);
  put32(out, length);
}

void put_piece_header(std::string& out, std::uint32_t index, std::uint32_t begin, std::uint32_t length) {
  put32(out, 9 + length);
  out += static_cast<char>(msg::piece);
  put32(out, index);
  put32(out, begin);
}

void put_index(std::string& out, msg m, std::uint32_t index) {
  put32(out, 5);
  out += static_cast<char>(m);
  put32(out, index);
}

void put_port(std::string& out, std::uint16_t port) {
  put32(out, 3);
  out += static_cast<char>(msg::port);
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
}

void put_extended(std::string& out, std::uint8_t ext_id, std::string_view payload) {
  put32(out, static_cast<std::uint32_t>(payload.size() + 2));
  out += static_cast<char>(msg::extended);
  out += static_cast<char>(ext_id);
  out.append(payload);
}

}  // namespace shoal::wire

namespace shoal::wire {

namespace {
hash_request read_hash_request(std::string_view p) {
  hash_request r;
  std::memcpy(r.root.data(), p.data(), 32);
  r.base = get32(p.data() + 32);
  r.index = get32(p.data() + 36);
  r.length = get32(p.data() + 40);
  r.proof_layers = get32(p.data() + 44);
  return r;
}
std::optional<std::string> check_shape(const hash_request& r) {
  if (r.length < 2 || (r.length & (r.length - 1)) != 0) {
    return "length " + std::to_string(r.length) + " is not a power of two of at least 2";
  }
  if (r.index % r.length != 0) {
    return "index " + std::to_string(r.index) + " is not a multiple of length " + std::to_string(r.length);
  }
  if (r.base > 40 || r.proof_layers > 64) return "base layer or proof layers out of range";
  return std::nullopt;
}
}  // namespace

result<hash_request> decode_hash_request(std::string_view payload) {
  if (payload.size() != hash_request_size) {
    return bad(msg::hash_request, "expected 48 bytes, got " + std::to_string(payload.size()));
  }
  hash_request r = read_hash_request(payload);
  if (auto why = check_shape(r)) return bad(msg::hash_request, *why);
  return r;
}

result<hashes_message> decode_hashes(std::string_view payload) {
  if (payload.size() < hash_request_size) {
    return bad(msg::hashes, "expected at least 48 bytes, got " + std::to_string(payload.size()));
  }
  hashes_message m;
  m.req = read_hash_request(payload);
  if (auto why = check_shape(m.req)) return bad(msg::hashes, *why);
  const std::string_view rest = payload.substr(hash_request_size);
  if (rest.size() % 32 != 0) return bad(msg::hashes, std::to_string(rest.size()) + " bytes of hashes");
  const std::size_t n = rest.size() / 32;
  if (n < m.req.length) {
    return bad(msg::hashes, std::to_string(n) + " hashes for a request of " + std::to_string(m.req.length));
  }
  m.hashes.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    std::memcpy(m.hashes[i].data(), rest.data() + i * 32, 32);
  return m;
}

namespace {
void put_hash_body(std::string& out, const hash_request& r) {
  out.append(reinterpret_cast<const char*>(r.root.data()), 32);
  put32(out, r.base);
  put32(out, r.index);
  put32(out, r.length);
  put32(out, r.proof_layers);
}
}  // namespace

void put_hash_request(std::string& out, msg m, const hash_request& r) {
  put32(out, 1 + static_cast<std::uint32_t>(hash_request_size));
  out.push_back(static_cast<char>(m));
  put_hash_body(out, r);
}

void put_hashes(std::string& out, const hash_request& r, std::span<const sha256_digest> hashes) {
  put32(out, 1 + static_cast<std::uint32_t>(hash_request_size + hashes.size() * 32));
  out.push_back(static_cast<char>(msg::hashes));
  put_hash_body(out, r);
  for (const auto& h : hashes)
    out.append(reinterpret_cast<const char*>(h.data()), 32);
}

}  // namespace shoal::wire
