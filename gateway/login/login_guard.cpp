#include "gateway/login/login_guard.hpp"

#include "gateway/ops/log.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <vector>

namespace switchyard::gateway {

namespace {

// One log line per record at most this often; the next one says how many
// attempts went unlogged in between.
constexpr auto log_interval = std::chrono::seconds(10);
// A success is remembered this long (while the table has room).
constexpr auto remember_sign_in = std::chrono::hours(24 * 30);

std::string pair_key(std::string_view handle, const std::string& address) {
    std::string key(handle);
    key += ' ';
    key += address;
    return key;
}

std::chrono::seconds whole_seconds(login_guard::clock::duration d) {
    const auto s = std::chrono::ceil<std::chrono::seconds>(d);
    return std::max(s, std::chrono::seconds(1));
}

}  // namespace

// ------------------------------------------------------------ login_guard

login_guard::login_guard(login_guard_options options) : options_(options) {}

std::string login_guard::address_key(std::string_view address) {
    std::array<unsigned char, 16> v6{};
    const std::string text(address);
    if (inet_pton(AF_INET6, text.c_str(), v6.data()) == 1) {
        // An IPv4-mapped address is the IPv4 address.
        static constexpr std::array<unsigned char, 12> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(mapped.begin(), mapped.end(), v6.begin())) {
            return std::to_string(v6[12]) + "." + std::to_string(v6[13]) + "." + std::to_string(v6[14]) + "." +
                   std::to_string(v6[15]);
        }
        std::fill(v6.begin() + 8, v6.end(), 0);
        char out[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, v6.data(), out, sizeof out)) return std::string(out) + "/64";
    }
    return text;
}

login_guard::record* login_guard::find(table& t, const std::string& key, clock::time_point now) {
    const auto it = t.find(key);
    if (it == t.end()) return nullptr;
    record& r = it->second;
    if (r.failures > 0 && now - r.last_failure >= options_.forget_failures) r.failures = 0;
    return &r;
}

login_guard::record& login_guard::at(table& t, const std::string& key, clock::time_point now) {
    if (record* r = find(t, key, now)) return *r;
    if (t.size() >= options_.max_records) {
        // Expired records first; if that is not enough, the half least
        // recently active (a flood of made-up handles must not grow memory).
        std::erase_if(t, [&](const auto& kv) {
            const record& r = kv.second;
            return (r.failures == 0 || now - r.last_failure >= options_.forget_failures) &&
                   (!r.known || now - r.signed_in >= remember_sign_in);
        });
        if (t.size() >= options_.max_records) {
            std::vector<clock::time_point> active;
            active.reserve(t.size());
            for (const auto& [k, r] : t) active.push_back(std::max(r.last_failure, r.signed_in));
            auto middle = active.begin() + static_cast<std::ptrdiff_t>(active.size() / 2);
            std::nth_element(active.begin(), middle, active.end());
            const auto cut = *middle;
            std::erase_if(t, [&](const auto& kv) { return std::max(kv.second.last_failure, kv.second.signed_in) <= cut; });
        }
    }
    return t[key];
}

login_guard::clock::time_point login_guard::free_at(const record& r, std::uint32_t free) const {
    if (r.failures < free) return {};
    const std::uint32_t doublings = std::min<std::uint32_t>(r.failures - free, 30);
    const auto delay = std::min(options_.max_delay, options_.base_delay * (std::int64_t{1} << doublings));
    return r.last_failure + delay;
}

bool login_guard::should_log(clock::time_point& logged, std::uint32_t& unlogged, clock::time_point now) {
    if (logged != clock::time_point{} && now - logged < log_interval) {
        ++unlogged;
        return false;
    }
    logged = now;
    return true;
}

login_admission login_guard::admit(std::string_view address_text, std::string_view handle, clock::time_point now) {
    const std::string address = address_key(address_text);
    const std::lock_guard lock(mutex_);
    record* pair = find(pairs_, pair_key(handle, address), now);
    record* from = find(addresses_, address, now);
    const record* account = find(accounts_, std::string(handle), now);
    const bool known = pair && pair->known && now - pair->signed_in < remember_sign_in;

    clock::time_point until{};
    if (pair) until = free_at(*pair, options_.free_failures);
    // An address that signed in to this account before is not held back by
    // what else comes from it (a shared NAT): only its own pair's failures count.
    if (from && !known) until = std::max(until, free_at(*from, options_.free_failures_per_address));
    if (until > now) {
        // Logged against the address: one line per 10 s however many handles it tries.
        record& r = from ? *from : *pair;
        if (should_log(r.refusal_logged, r.unlogged_refusals, now)) {
            log::warn("login_throttled", {{"handle", handle},
                                          {"address", address_text},
                                          {"refused_since_last_line", r.unlogged_refusals + 1},
                                          {"retry_after_s", whole_seconds(until - now).count()}});
            r.unlogged_refusals = 0;
        }
        return {false, login_priority::suspect, whole_seconds(until - now)};
    }
    login_priority priority = login_priority::first;
    if (known) {
        priority = login_priority::known;
    } else if ((pair && pair->failures > 0) || (from && from->failures > 0)) {
        priority = login_priority::suspect;
    } else if (account && account->failures >= options_.account_failures_suspect) {
        // The owner from a new place ranks below first attempts, but above
        // the addresses whose own guesses failed.
        priority = login_priority::wary;
    }
    return {true, priority, {}};
}

void login_guard::failed(std::string_view address_text, std::string_view handle, clock::time_point now) {
    const std::string address = address_key(address_text);
    const std::lock_guard lock(mutex_);
    record& pair = at(pairs_, pair_key(handle, address), now);
    record& from = at(addresses_, address, now);
    record& account = at(accounts_, std::string(handle), now);
    for (record* r : {&pair, &from, &account}) {
        ++r->failures;
        r->last_failure = now;
    }
    // Logged once waits begin for the pair or the address, then at most
    // once per 10 s for that address.
    if (pair.failures >= options_.free_failures || from.failures >= options_.free_failures_per_address) {
        if (should_log(from.logged, from.unlogged, now)) {
            const auto until = std::max(free_at(pair, options_.free_failures),
                                        free_at(from, options_.free_failures_per_address));
            log::warn("login_failures", {{"handle", handle},
                                         {"address", address_text},
                                         {"handle_failures", pair.failures},
                                         {"address_failures", from.failures},
                                         {"account_failures", account.failures},
                                         {"unlogged", from.unlogged},
                                         {"retry_after_s", whole_seconds(until - now).count()}});
            from.unlogged = 0;
        }
    }
}

void login_guard::succeeded(std::string_view address_text, std::string_view handle, clock::time_point now) {
    const std::string address = address_key(address_text);
    const std::lock_guard lock(mutex_);
    record& pair = at(pairs_, pair_key(handle, address), now);
    pair.failures = 0;
    pair.known = true;
    pair.signed_in = now;
    // The address's and the account's failures stay: a guesser who also
    // holds an account of its own must not wipe them by signing in to it.
}

// ------------------------------------------------------------ login_queue

login_queue::login_queue(std::size_t running, std::size_t waiting, std::size_t per_address)
    : max_running_(std::max<std::size_t>(running, 1)), max_waiting_(waiting), per_address_(std::max<std::size_t>(per_address, 1)) {}

void login_queue::submit(job j) {
    std::function<void()> now_start;
    std::function<void()> now_refuse;
    {
        const std::lock_guard lock(mutex_);
        const std::string address = j.address;
        const auto count = per_address_count_.find(address);
        const std::size_t mine = count == per_address_count_.end() ? 0 : count->second;
        bool taken = false;
        // Only one attempt at a time per address counts as a first one: a
        // guesser opening many connections at once gets one in early.
        if ((j.priority == login_priority::first || j.priority == login_priority::wary) && mine > 0) {
            j.priority = login_priority::suspect;
        }
        if (mine >= per_address_) {
            now_refuse = std::move(j.refuse);
        } else if (may_start(j.priority)) {
            ++running_;
            now_start = std::move(j.start);
            taken = true;
        } else if (waiting_.size() < max_waiting_) {
            waiting_.emplace(std::pair{j.priority, next_++}, std::move(j));
            taken = true;
        } else if (!waiting_.empty() && std::prev(waiting_.end())->first.first > j.priority) {
            // Full: the worst waiting job (lowest priority, last to come)
            // gives its place to a better one.
            auto worst = std::prev(waiting_.end());
            now_refuse = std::move(worst->second.refuse);
            if (--per_address_count_[worst->second.address] == 0) per_address_count_.erase(worst->second.address);
            waiting_.erase(worst);
            waiting_.emplace(std::pair{j.priority, next_++}, std::move(j));
            taken = true;
        } else {
            now_refuse = std::move(j.refuse);
        }
        if (taken) ++per_address_count_[address];
    }
    if (now_refuse) now_refuse();
    if (now_start) now_start();
}

void login_queue::finish(const std::string& address) {
    std::function<void()> next;
    {
        const std::lock_guard lock(mutex_);
        if (const auto it = per_address_count_.find(address); it != per_address_count_.end() && --it->second == 0) {
            per_address_count_.erase(it);
        }
        --running_;
        if (!waiting_.empty() && may_start(waiting_.begin()->first.first)) {
            ++running_;
            next = std::move(waiting_.begin()->second.start);
            waiting_.erase(waiting_.begin());
        }
    }
    if (next) next();
}

// Suspects never take the last free slot (when there are two or more): a
// known or first attempt arriving during a flood then waits for its own
// check only, not for a wrong guess's to end.
bool login_queue::may_start(login_priority p) const {
    const std::size_t limit = p == login_priority::suspect && max_running_ > 1 ? max_running_ - 1 : max_running_;
    return running_ < limit;
}

std::size_t login_queue::running() const {
    const std::lock_guard lock(mutex_);
    return running_;
}

std::size_t login_queue::waiting() const {
    const std::lock_guard lock(mutex_);
    return waiting_.size();
}

// ------------------------------------------------------------ delay_line

delay_line::delay_line(std::size_t max_pending) : max_pending_(max_pending) {}

delay_line::~delay_line() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void delay_line::after(std::chrono::milliseconds delay, std::function<void()> call) {
    {
        const std::lock_guard lock(mutex_);
        if (!stopping_ && pending_.size() < max_pending_) {
            if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
            pending_.emplace(std::chrono::steady_clock::now() + delay, std::move(call));
            call = nullptr;
        }
    }
    if (call) {
        call();
    } else {
        wake_.notify_one();
    }
}

void delay_line::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (pending_.empty()) {
            wake_.wait(lock);
            continue;
        }
        const auto due = pending_.begin()->first;
        if (std::chrono::steady_clock::now() < due) {
            wake_.wait_until(lock, due);
            continue;
        }
        auto call = std::move(pending_.begin()->second);
        pending_.erase(pending_.begin());
        lock.unlock();
        call();
        lock.lock();
    }
    pending_.clear();
}

}  // namespace switchyard::gateway
