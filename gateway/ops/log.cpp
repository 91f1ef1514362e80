#include "gateway/ops/log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <utility>

namespace switchyard::gateway::log {

namespace {

std::atomic<int> current_level{static_cast<int>(log_level::info)};
std::mutex output_mutex;

bool needs_quotes(std::string_view v) {
    if (v.empty()) {
        return true;
    }
    for (const char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || c == '"' || c == '=' || c == '\\' || u == 0x7f) {
            return true;
        }
    }
    return false;
}

void append_value(std::string& out, std::string_view v) {
    if (!needs_quotes(v)) {
        out += v;
        return;
    }
    out.push_back('"');
    for (const char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (u < 0x20 || u == 0x7f) {
            // One event must stay one line whatever a client sent us.
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
}

std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

}  // namespace

std::string iso_time(std::uint64_t ms) {
    const auto seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

void set_level(log_level l) { current_level.store(static_cast<int>(l), std::memory_order_relaxed); }

bool enabled(log_level l) { return static_cast<int>(l) >= current_level.load(std::memory_order_relaxed); }

std::string format(log_level l, std::string_view event, std::initializer_list<field> fields) {
    std::string line = "level=";
    line += config::to_string(l);
    line += " event=";
    append_value(line, event);
    for (const field& f : fields) {
        line.push_back(' ');
        line += f.key;
        line.push_back('=');
        append_value(line, f.value);
    }
    return line;
}

namespace {

void emit(std::string line) {
    line += '\n';
    const std::lock_guard lock(output_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace

void write(log_level l, std::string_view event, std::initializer_list<field> fields) {
    if (enabled(l)) {
        emit("ts=" + timestamp() + ' ' + format(l, event, fields));
    }
}

void limited::write(log_level l, std::string_view event, std::initializer_list<field> fields) {
    if (!enabled(l)) {
        return;
    }
    std::uint64_t suppressed = 0;
    {
        const std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        const std::chrono::duration<double> elapsed = now - last_;
        last_ = now;
        tokens_ = std::min<double>(burst_, tokens_ + elapsed.count() * per_second_);
        if (tokens_ < 1) {
            ++suppressed_;
            return;
        }
        tokens_ -= 1;
        suppressed = std::exchange(suppressed_, 0);
    }
    std::string line = "ts=" + timestamp() + ' ' + format(l, event, fields);
    if (suppressed != 0) {
        line += " suppressed=" + std::to_string(suppressed);
    }
    emit(std::move(line));
}

}  // namespace switchyard::gateway::log
