// A fixed pool of worker threads with a FIFO job queue. Disk I/O and hashing each get
// one, so neither ever runs on the network thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shoal {

class thread_pool {
 public:
  explicit thread_pool(unsigned threads);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  void post(std::function<void()> job);
  // A job that throws does not end the process: the exception's text goes here (on the
  // worker thread; set before the first post) and the pool goes on with the next job.
  void set_error_handler(std::function<void(const std::string&)> f) { on_error_ = std::move(f); }
  [[nodiscard]] std::uint64_t failed_jobs() const;
  [[nodiscard]] std::size_t queued() const;
  // Blocks until every queued job has run.
  void drain();

 private:
  void run();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> jobs_;
  unsigned busy_ = 0;
  bool stop_ = false;
  std::uint64_t failed_ = 0;
  std::function<void(const std::string&)> on_error_;
  std::vector<std::thread> threads_;
};

}  // namespace shoal
