#include "storage/resume.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "core/bencode.hpp"

namespace shoal {

namespace fs = std::filesystem;

std::string encode_resume(const resume_data& r) {
  bencode::dict d;
  d["file-format"] = "shoal resume";
  d["file-version"] = 1;
  d["info-hash"] = r.info_hash;
  d["num pieces"] = static_cast<std::int64_t>(r.pieces.size());
  d["pieces"] = r.pieces.bytes();
  d["uploaded"] = static_cast<std::int64_t>(r.uploaded);
  d["downloaded"] = static_cast<std::int64_t>(r.downloaded);
  return bencode::encode(d);
}

result<resume_data> decode_resume(std::string_view bytes, std::string_view info_hash, std::uint32_t num_pieces) {
  auto doc = bencode::decode(bytes);
  if (!doc) return error{doc.err().code, "resume data: " + doc.err().detail, doc.err().offset};
  auto root = doc->root();
  if (root.find("file-format").as_string() != "shoal resume") {
    return error{errc::syntax, "resume data: not a shoal resume file", no_offset};
  }
  if (root.find("info-hash").as_string() != info_hash) {
    return error{errc::invalid_argument, "resume data: belongs to another torrent", no_offset};
  }
  if (root.find("num pieces").as_int() != num_pieces) {
    return error{errc::syntax, "resume data: piece count does not match the torrent", no_offset};
  }
  resume_data r;
  r.info_hash = std::string(info_hash);
  r.pieces = bitfield(num_pieces);
  if (!r.pieces.assign(root.find("pieces").as_string())) {
    return error{errc::syntax, "resume data: piece bitfield has the wrong length", no_offset};
  }
  r.uploaded = static_cast<std::uint64_t>(std::max<std::int64_t>(0, root.find("uploaded").as_int()));
  r.downloaded = static_cast<std::uint64_t>(std::max<std::int64_t>(0, root.find("downloaded").as_int()));
  return r;
}

std::error_code save_resume_file(const fs::path& file, const std::string& bytes) {
  return write_file_atomically(file, bytes);
}

std::error_code write_file_atomically(const fs::path& file, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return ec;
  const fs::path tmp = file.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {errno, std::generic_category()};
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::error_code e(errno, std::generic_category());
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) {
    std::error_code e(errno, std::generic_category());
    ::close(fd);
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) return {errno, std::generic_category()};
  int dfd = ::open(file.parent_path().empty() ? "." : file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

result<resume_data> load_resume_file(const fs::path& file, std::string_view info_hash, std::uint32_t num_pieces) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) return error{errc::io, "resume data: " + ec.message(), no_offset};
  if (size > max_resume_size) return error{errc::limit_exceeded, "resume data: file too large", no_offset};
  std::ifstream in(file, std::ios::binary);
  std::string data(size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (!in) return error{errc::io, "resume data: short read", no_offset};
  return decode_resume(data, info_hash, num_pieces);
}

}  // namespace shoal
