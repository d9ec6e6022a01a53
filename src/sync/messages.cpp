#include "sync/messages.hpp"

#include "core/bencode.hpp"
#include "sync/index.hpp"
#include "sync/secure_channel.hpp"

namespace shoal::sync {

namespace {

template <class... F>
struct overload : F... {
  using F::operator()...;
};
template <class... F>
overload(F...) -> overload<F...>;

error bad(const std::string& what) {
  return error{errc::syntax, "sync message: " + what};
}

std::int64_t as_i(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}

}  // namespace

std::string encode(const message& m) {
  bencode::dict d;
  std::visit(overload{
                 [&](const msg_have& h) {
                   d["t"] = "have";
                   d["seq"] = as_i(h.seq);
                 },
                 [&](const msg_index_request& r) {
                   d["t"] = "ireq";
                   d["since"] = as_i(r.since);
                 },
                 [&](const msg_index& ix) {
                   d["t"] = "index";
                   d["done"] = ix.done ? 1 : 0;
                   bencode::list recs;
                   recs.reserve(ix.records.size());
                   for (const auto& r : ix.records) {
                     bencode::list one;
                     one.emplace_back(r.canonical);
                     one.emplace_back(r.signature);
                     one.emplace_back(as_i(r.seq));
                     recs.emplace_back(std::move(one));
                   }
                   d["recs"] = std::move(recs);
                 },
                 [&](const msg_block_request& r) {
                   d["t"] = "breq";
                   d["id"] = as_i(r.id);
                   d["path"] = r.path;
                   d["block"] = as_i(r.block);
                   d["hash"] = r.hash;
                   d["off"] = static_cast<std::int64_t>(r.offset);
                   d["len"] = static_cast<std::int64_t>(r.length);
                 },
                 [&](const msg_block& b) {
                   d["t"] = "block";
                   d["id"] = as_i(b.id);
                   if (b.error.empty()) {
                     d["data"] = b.data;
                   } else {
                     d["err"] = b.error;
                   }
                 },
             },
             m);
  return bencode::encode(d);
}

result<message> decode_message(std::string_view bytes) {
  if (bytes.size() > max_message_bytes) return bad("past the message bound");
  bencode::limits lim;
  lim.depth = 3;
  lim.tokens = 16 + 4 * max_batch_records;
  auto doc = bencode::decode(bytes, bencode::mode::strict, lim);
  if (!doc) return bad(doc.err().message());
  const auto root = doc->root();
  if (!root.is_dict()) return bad("not a dictionary");
  const auto t = root.find("t");
  if (!t.is_string()) return bad("no type");
  auto uint_of = [&](std::string_view k, std::uint64_t& out) {
    const auto n = root.find(k);
    if (!n.is_int() || n.as_int() < 0) return false;
    out = static_cast<std::uint64_t>(n.as_int());
    return true;
  };
  const std::string_view type = t.as_string();
  if (type == "have") {
    msg_have h;
    if (!uint_of("seq", h.seq)) return bad("have: no seq");
    return message{h};
  }
  if (type == "ireq") {
    msg_index_request r;
    if (!uint_of("since", r.since)) return bad("ireq: no since");
    return message{r};
  }
  if (type == "index") {
    msg_index ix;
    std::uint64_t done = 0;
    if (!uint_of("done", done) || done > 1) return bad("index: no done");
    ix.done = done == 1;
    const auto recs = root.find("recs");
    if (!recs.is_list()) return bad("index: no recs");
    if (recs.size() > max_batch_records)
      return bad("index: more than " + std::to_string(max_batch_records) + " records");
    for (const auto e : recs) {
      if (!e.is_list() || e.size() != 3) return bad("index: a record is not [canonical, signature, seq]");
      auto it = e.begin();
      const auto canon = *it;
      ++it;
      const auto sig = *it;
      ++it;
      const auto seq = *it;
      if (!canon.is_string() || !sig.is_string() || !seq.is_int() || seq.as_int() <= 0 ||
          canon.as_string().size() > max_record_bytes || sig.as_string().size() != 64) {
        return bad("index: a malformed record entry");
      }
      ix.records.push_back(wire_record{std::string(canon.as_string()), std::string(sig.as_string()),
                                       static_cast<std::uint64_t>(seq.as_int())});
    }
    return message{std::move(ix)};
  }
  if (type == "breq") {
    msg_block_request r;
    std::uint64_t off = 0;
    std::uint64_t len = 0;
    const auto path = root.find("path");
    const auto hash = root.find("hash");
    if (!uint_of("id", r.id) || !uint_of("block", r.block) || !uint_of("off", off) || !uint_of("len", len) ||
        !path.is_string() || !hash.is_string() || hash.as_string().size() != 32 ||
        path.as_string().size() > max_path_bytes || r.block >= max_blocks || off >= max_block_size || len == 0 ||
        len > max_chunk_bytes) {
      return bad("breq: malformed or out of bounds");
    }
    r.path = std::string(path.as_string());
    r.hash = std::string(hash.as_string());
    r.offset = static_cast<std::uint32_t>(off);
    r.length = static_cast<std::uint32_t>(len);
    return message{std::move(r)};
  }
  if (type == "block") {
    msg_block b;
    if (!uint_of("id", b.id)) return bad("block: no id");
    const auto data = root.find("data");
    const auto err = root.find("err");
    if (data.is_string() && data.as_string().size() <= max_chunk_bytes) {
      b.data = std::string(data.as_string());
    } else if (err.is_string() && !err.as_string().empty() && err.as_string().size() <= 1024) {
      b.error = std::string(err.as_string());
    } else {
      return bad("block: neither data nor an error");
    }
    return message{std::move(b)};
  }
  return bad("unknown type");
}

}  // namespace shoal::sync
