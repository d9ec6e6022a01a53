#include "storage/thread_pool.hpp"

namespace shoal {

thread_pool::thread_pool(unsigned threads) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i)
    threads_.emplace_back([this] { run(); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

void thread_pool::post(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::size_t thread_pool::queued() const {
  std::lock_guard lk(mu_);
  return jobs_.size() + busy_;
}

std::uint64_t thread_pool::failed_jobs() const {
  std::lock_guard lk(mu_);
  return failed_;
}

void thread_pool::drain() {
  std::unique_lock lk(mu_);
  idle_cv_.wait(lk, [&] { return jobs_.empty() && busy_ == 0; });
}

void thread_pool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++busy_;
    }
    std::string failure;
    try {
      job();
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "unknown error";
    } catch (...) {
      failure = "unknown exception";
    }
    if (!failure.empty()) {
      {
        std::lock_guard lk(mu_);
        ++failed_;
      }
      if (on_error_) on_error_(failure);
    }
    {
      std::lock_guard lk(mu_);
      --busy_;
      if (jobs_.empty() && busy_ == 0) idle_cv_.notify_all();
    }
  }
}

}  // namespace shoal
