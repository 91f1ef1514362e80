// Process-wide counters, rendered in the Prometheus text format at /metrics.
#pragma once

#include "protocols/frame/frame.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::gateway {

enum class listener_protocol : std::uint8_t { msnp, ws, https, admin };
inline constexpr std::size_t listener_protocol_count = 4;
std::string_view to_string(listener_protocol p);

class metrics {
public:
    void connection_opened(listener_protocol p) {
        open_[index(p)].fetch_add(1, std::memory_order_relaxed);
        accepted_[index(p)].fetch_add(1, std::memory_order_relaxed);
    }
    void connection_closed(listener_protocol p) { open_[index(p)].fetch_sub(1, std::memory_order_relaxed); }
    void frame_in(const frame::frame& f) { frames_in_[f.content.index()].fetch_add(1, std::memory_order_relaxed); }
    void frame_out(const frame::frame& f) { frames_out_[f.content.index()].fetch_add(1, std::memory_order_relaxed); }
    void error(frame::error_code c) { errors_[static_cast<std::size_t>(c)].fetch_add(1, std::memory_order_relaxed); }
    void routes_loaded(std::uint64_t version) { routes_version_.store(version, std::memory_order_relaxed); }
    void routes_rejected() { routes_rejected_.fetch_add(1, std::memory_order_relaxed); }
    // A connection over its rate limits stopped being read for a while.
    void throttled() { throttled_.fetch_add(1, std::memory_order_relaxed); }
    // A connection closed on accept: over max_connections (`per_address`
    // false) or max_connections_per_address.
    void refused(bool per_address) { refused_[per_address ? 1 : 0].fetch_add(1, std::memory_order_relaxed); }

    std::int64_t open_connections(listener_protocol p) const {
        return open_[index(p)].load(std::memory_order_relaxed);
    }

    // Samples from parts made at start (backend links), asked for at each
    // render on the thread that serves /metrics, after the counters above.
    struct extra_sample {
        std::string name;
        std::string type;  // "gauge" or "counter"
        std::string help;
        std::string label;  // empty: none
        std::string label_value;
        std::uint64_t value = 0;
    };
    void add_source(std::function<std::vector<extra_sample>()> source) { sources_.push_back(std::move(source)); }

    std::string render() const;

private:
    std::vector<std::function<std::vector<extra_sample>()>> sources_;  // fixed after start
    static std::size_t index(listener_protocol p) { return static_cast<std::size_t>(p); }

    std::array<std::atomic<std::int64_t>, listener_protocol_count> open_{};
    std::array<std::atomic<std::uint64_t>, listener_protocol_count> accepted_{};
    std::array<std::atomic<std::uint64_t>, frame::type_count> frames_in_{};
    std::array<std::atomic<std::uint64_t>, frame::type_count> frames_out_{};
    std::array<std::atomic<std::uint64_t>, frame::enum_traits<frame::error_code>::max_value + 1> errors_{};
    std::atomic<std::uint64_t> routes_version_{0};
    std::atomic<std::uint64_t> routes_rejected_{0};
    std::atomic<std::uint64_t> throttled_{0};
    std::array<std::atomic<std::uint64_t>, 2> refused_{};
};

}  // namespace switchyard::gateway
