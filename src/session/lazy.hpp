// A container allocated on first write: 8 bytes in an object until then. A torrent keeps
// a dozen tables (peers that failed, bans, suspects, hash exchange ...) that most of
// 10,000 idle torrents never touch; as plain members they cost ~48 bytes each, each torrent.
// Reads through a const lazy see an empty container and allocate nothing.
#pragma once

#include <memory>
#include <utility>

namespace shoal {

template <class T>
class lazy {
 public:
  T& operator*() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }
  T* operator->() { return &**this; }
  template <class K>
  auto& operator[](K&& k) {
    return (**this)[std::forward<K>(k)];
  }
  const T& operator*() const { return p_ ? *p_ : none(); }
  const T* operator->() const { return &**this; }
  // Reads that must not allocate, from a non-const owner.
  [[nodiscard]] const T& view() const { return **this; }
  // The container if it was ever written, else nullptr (writes that need not allocate).
  [[nodiscard]] T* get() { return p_.get(); }

 private:
  static const T& none() {
    static const T e;
    return e;
  }
  std::unique_ptr<T> p_;
};

}  // namespace shoal
