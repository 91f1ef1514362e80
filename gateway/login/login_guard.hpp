// Throttling of password guesses, for every login that checks a secret:
// MSNP2-7 MD5 (`USR MD5 S`), Passport login2.srf and RST.srf, and WebSocket
// password logins. No Asio: the rules are unit-tested with a clock passed in.
//
// Two parts, used together by password_checker (gateway/login/passport.hpp)
// and msnp_services:
//
// * login_guard remembers failures per (handle, address), per address and
//   per handle, and successes per (handle, address). A few failures are
//   free; after that each further failure doubles the wait before the next
//   attempt of that pair (or from that address), up to a cap, so a guesser
//   gets a handful of tries an hour instead of hundreds a second. A refused
//   attempt is not checked at all, so the right password does not get in
//   either until the wait is over. The failures of one handle from many
//   addresses never lock the account: they only lower the priority of
//   attempts from addresses that have not signed in to it before, and an
//   address that has signed in to an account keeps its priority and is not
//   held back by the failures other handles caused from the same address
//   (a shared NAT).
// * login_queue runs at most a fixed number of slow checks (scrypt) at once
//   and keeps the rest in priority order: addresses that signed in to the
//   account before first, then first attempts, then clean addresses trying
//   an account with recent failures, then addresses with failures of their
//   own. When the queue is full,
//   a better attempt pushes out the worst waiting one, so a flood of wrong
//   passwords delays a legitimate login by at most the checks already
//   running.
//
// Addresses are keyed per IPv4 address and per IPv6 /64 (one customer's
// usual allocation), so one host cannot spread itself over 2^64 keys.
// State is per process and bounded; it is lost on restart.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <unordered_map>

namespace switchyard::gateway {

struct login_guard_options {
    // Failures of one handle from one address before waits start.
    std::uint32_t free_failures = 3;
    // Failures from one address, whatever the handles, before waits start.
    std::uint32_t free_failures_per_address = 10;
    // The first wait; each further failure doubles it, up to max_delay.
    std::chrono::milliseconds base_delay{1000};
    std::chrono::milliseconds max_delay{std::chrono::minutes(15)};
    // Failures are forgotten this long after the last one.
    std::chrono::milliseconds forget_failures{std::chrono::hours(1)};
    // Failures of one handle (from any address) above which attempts from
    // addresses that never signed in to it lose priority.
    std::uint32_t account_failures_suspect = 5;
    // Records kept per table; past it expired ones go, then the oldest.
    std::size_t max_records = 1u << 17;
};

// Lower goes first.
enum class login_priority : std::uint8_t {
    known = 0,    // this address signed in to this account before
    first = 1,    // no recent failures from the address, for the pair, or many for the account
    wary = 2,     // a clean address, but many recent failures for the account (from elsewhere)
    suspect = 3,  // recent failures from this address or for this pair, or not its only attempt
};

struct login_admission {
    bool allowed = true;
    login_priority priority = login_priority::first;
    std::chrono::seconds retry_after{0};  // when refused: whole seconds, at least 1
};

class login_guard {
public:
    using clock = std::chrono::steady_clock;

    explicit login_guard(login_guard_options options = {});
    login_guard(const login_guard&) = delete;
    login_guard& operator=(const login_guard&) = delete;

    // Whether an attempt for `handle` (normalised) from `address` may be
    // checked now, and with which priority. Refusals are logged, at most
    // once per 10 s per address with the number refused since.
    login_admission admit(std::string_view address, std::string_view handle, clock::time_point now);
    // The outcome of a check that admit() let through. Wrong secrets and
    // unknown handles alike are failures.
    void failed(std::string_view address, std::string_view handle, clock::time_point now);
    void succeeded(std::string_view address, std::string_view handle, clock::time_point now);

    const login_guard_options& options() const { return options_; }

    // The key an address is counted under: IPv4 as is, IPv6 its /64.
    static std::string address_key(std::string_view address);

private:
    struct record {
        std::uint32_t failures = 0;
        clock::time_point last_failure{};
        clock::time_point signed_in{};  // pairs: the last success
        bool known = false;
        // Log rate limiting, for failures and for refusals apart.
        clock::time_point logged{};
        std::uint32_t unlogged = 0;
        clock::time_point refusal_logged{};
        std::uint32_t unlogged_refusals = 0;
    };
    using table = std::unordered_map<std::string, record>;

    record* find(table& t, const std::string& key, clock::time_point now);
    record& at(table& t, const std::string& key, clock::time_point now);
    clock::time_point free_at(const record& r, std::uint32_t free) const;
    static bool should_log(clock::time_point& logged, std::uint32_t& unlogged, clock::time_point now);

    login_guard_options options_;
    std::mutex mutex_;
    table pairs_;      // handle + ' ' + address key
    table addresses_;  // address key
    table accounts_;   // handle
};

// At most `running` checks at once, of which suspects may use all but one
// (when `running` is 2 or more); up to `waiting` more in priority order
// (then arrival); at most `per_address` running and waiting from one
// address, of which only the first counts as a first attempt. Thread-safe;
// callbacks run outside its lock.
class login_queue {
public:
    struct job {
        login_priority priority = login_priority::first;
        std::string address;          // the address key
        std::function<void()> start;  // begins the check; finish() must follow
        std::function<void()> refuse; // the check will not run: too many waiting
    };

    login_queue(std::size_t running, std::size_t waiting, std::size_t per_address);
    login_queue(const login_queue&) = delete;
    login_queue& operator=(const login_queue&) = delete;

    // Starts the job, queues it, or refuses it (at once, on the caller's
    // thread). A queued job may still be refused later, pushed out by a
    // better one.
    void submit(job j);
    // A started job's check is over: the next waiting one starts.
    void finish(const std::string& address);

    std::size_t running() const;
    std::size_t waiting() const;

private:
    bool may_start(login_priority p) const;  // under mutex_

    const std::size_t max_running_;
    const std::size_t max_waiting_;
    const std::size_t per_address_;
    mutable std::mutex mutex_;
    std::size_t running_ = 0;
    std::uint64_t next_ = 0;
    std::map<std::pair<login_priority, std::uint64_t>, job> waiting_;
    std::unordered_map<std::string, std::size_t> per_address_count_;
};

// Runs calls after a delay, on a thread of its own: refusals of logins
// (throttled, busy) are answered late, so a client that retries at once
// on the same connection (a guesser's loop) makes one attempt a second
// instead of thousands, each of which would cost the I/O thread a TLS
// record in and out. At most `max_pending` calls wait; past that a call
// runs at once. Calls still waiting when it is destroyed are dropped.
class delay_line {
public:
    explicit delay_line(std::size_t max_pending);
    ~delay_line();
    delay_line(const delay_line&) = delete;
    delay_line& operator=(const delay_line&) = delete;

    void after(std::chrono::milliseconds delay, std::function<void()> call);

private:
    void run();

    const std::size_t max_pending_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> pending_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace switchyard::gateway
