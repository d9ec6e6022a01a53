// Decoding speed on real .torrent files: the bencode decoder alone, and the full
// metainfo parse (decode, structure checks, path sanitising, SHA-1/SHA-256 info-hashes).
//
// Usage: bench_bencode [--benchmark_* flags] LABEL=PATH [LABEL=PATH...]
// With no LABEL=PATH argument the list is read from SHOAL_BENCH_TORRENTS
// (LABEL=PATH entries separated by ':').
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/bencode.hpp"
#include "core/metainfo.hpp"

namespace {

struct input {
  std::string label;
  std::string path;
  std::string bytes;
};

bool read_file(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !f.bad();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

void bench_decode(benchmark::State& st, const input* in) {
  const std::string_view data = in->bytes;
  std::size_t tokens = 0;
  for (auto _ : st) {
    auto doc = shoal::bencode::decode(data);
    if (!doc) {
      st.SkipWithError("decode failed");
      break;
    }
    tokens = doc->token_count();
    benchmark::DoNotOptimize(doc);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * data.size()));
  st.counters["bytes"] = static_cast<double>(data.size());
  st.counters["tokens"] = static_cast<double>(tokens);
}

void bench_parse(benchmark::State& st, const input* in) {
  const std::string_view data = in->bytes;
  std::size_t files = 0;
  for (auto _ : st) {
    auto mi = shoal::parse_metainfo(data);
    if (!mi) {
      st.SkipWithError("parse_metainfo failed");
      break;
    }
    files = mi->files.size();
    benchmark::DoNotOptimize(mi);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * data.size()));
  st.counters["bytes"] = static_cast<double>(data.size());
  st.counters["files"] = static_cast<double>(files);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);

  std::vector<std::string> specs;
  for (int i = 1; i < argc; ++i)
    specs.emplace_back(argv[i]);
  if (specs.empty()) {
    if (const char* env = std::getenv("SHOAL_BENCH_TORRENTS")) specs = split(env, ':');
  }
  if (specs.empty()) {
    std::fprintf(stderr,
                 "usage: bench_bencode [--benchmark_* flags] LABEL=PATH [LABEL=PATH...]\n"
                 "       (or set SHOAL_BENCH_TORRENTS=LABEL=PATH[:LABEL=PATH...])\n");
    return 2;
  }

  // Inputs live until the end of main; benchmarks hold plain pointers to them.
  std::vector<std::unique_ptr<input>> inputs;
  for (const auto& spec : specs) {
    auto in = std::make_unique<input>();
    const auto eq = spec.find('=');
    in->label = eq == std::string::npos ? spec : spec.substr(0, eq);
    in->path = eq == std::string::npos ? spec : spec.substr(eq + 1);
    if (!read_file(in->path, in->bytes)) {
      std::fprintf(stderr, "bench_bencode: cannot read %s\n", in->path.c_str());
      return 1;
    }
    // Refuse to time a failure path: both must succeed on the input.
    if (auto d = shoal::bencode::decode(in->bytes); !d) {
      std::fprintf(stderr, "bench_bencode: %s does not decode: %s\n", in->path.c_str(), d.err().message().c_str());
      return 1;
    }
    if (auto m = shoal::parse_metainfo(in->bytes); !m) {
      std::fprintf(stderr, "bench_bencode: %s does not parse: %s\n", in->path.c_str(), m.err().message().c_str());
      return 1;
    }
    inputs.push_back(std::move(in));
  }
  for (const auto& in : inputs) {
    benchmark::RegisterBenchmark(("bencode_decode/" + in->label).c_str(), bench_decode, in.get());
  }
  for (const auto& in : inputs) {
    benchmark::RegisterBenchmark(("parse_metainfo/" + in->label).c_str(), bench_parse, in.get());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
