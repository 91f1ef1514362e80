// Threads of the embedded backend that hash and check passwords, so that no
// shard (a single writer for its objects) spends scrypt's fraction of a
// second on one. Internal to the embedded backend.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace switchyard::gateway::embedded {

class password_pool {
public:
    password_pool(unsigned threads, std::size_t queue) : threads_(threads == 0 ? 1 : threads), queue_(queue) {}
    ~password_pool() { stop(); }
    password_pool(const password_pool&) = delete;
    password_pool& operator=(const password_pool&) = delete;

    // Runs `job` on a pool thread; false when `queue` jobs wait already
    // (or the pool stopped): the caller answers that itself. Threads start
    // with the first job.
    bool post(std::function<void()> job) {
        {
            const std::lock_guard lock(mutex_);
            if (stopping_ || waiting_.size() >= queue_) {
                return false;
            }
            while (running_.size() < threads_) {
                running_.emplace_back([this] { run(); });
            }
            waiting_.push_back(std::move(job));
        }
        wake_.notify_one();
        return true;
    }

    // Finishes the jobs under way; those still waiting are dropped, so each
    // job must own what it needs to answer (its destructor may be the last
    // word).
    void stop() {
        std::vector<std::thread> running;
        {
            const std::lock_guard lock(mutex_);
            stopping_ = true;
            waiting_.clear();
            running.swap(running_);
        }
        wake_.notify_all();
        for (auto& t : running) {
            t.join();
        }
    }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
                if (stopping_) {
                    return;
                }
                job = std::move(waiting_.front());
                waiting_.pop_front();
            }
            job();
        }
    }

    const unsigned threads_;
    const std::size_t queue_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> waiting_;
    std::vector<std::thread> running_;
    bool stopping_ = false;
};

}  // namespace switchyard::gateway::embedded
