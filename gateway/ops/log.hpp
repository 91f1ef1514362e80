// Structured logging: one line per event, key=value, to stderr.
//   ts=2026-11-27T08:00:00.123Z level=info event=listening listener=msnp address=127.0.0.1 port=1863
#pragma once

#include "gateway/config/config.hpp"

#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>

namespace switchyard::gateway::log {

using config::log_level;

struct field {
    std::string_view key;
    std::string value;

    field(std::string_view k, std::string_view v) : key(k), value(v) {}
    field(std::string_view k, const char* v) : key(k), value(v) {}
    field(std::string_view k, const std::string& v) : key(k), value(v) {}
    template <std::integral I> field(std::string_view k, I v) : key(k), value(std::to_string(v)) {}
};

void set_level(log_level l);
bool enabled(log_level l);
void write(log_level l, std::string_view event, std::initializer_list<field> fields = {});

inline void debug(std::string_view event, std::initializer_list<field> f = {}) { write(log_level::debug, event, f); }
inline void info(std::string_view event, std::initializer_list<field> f = {}) { write(log_level::info, event, f); }
inline void warn(std::string_view event, std::initializer_list<field> f = {}) { write(log_level::warn, event, f); }
inline void error(std::string_view event, std::initializer_list<field> f = {}) { write(log_level::error, event, f); }

// For lines anyone on the network can cause (a connection closed before it
// signed in, a refused request): at most `burst` at once and `per_second`
// after that, so a flood of them cannot fill the disk. The next line let
// through says how many were left out (suppressed=N). Thread-safe.
class limited {
public:
    limited(unsigned burst, unsigned per_second) : burst_(burst), per_second_(per_second), tokens_(burst) {}
    void write(log_level l, std::string_view event, std::initializer_list<field> fields);

private:
    const unsigned burst_;
    const unsigned per_second_;
    std::mutex mutex_;
    double tokens_;
    std::chrono::steady_clock::time_point last_{};
    std::uint64_t suppressed_ = 0;
};

// "2026-11-27T08:00:00Z": a Unix time in milliseconds, to the second, UTC.
std::string iso_time(std::uint64_t ms);

// The line write() would print, without the timestamp (for tests).
std::string format(log_level l, std::string_view event, std::initializer_list<field> fields);

}  // namespace switchyard::gateway::log
