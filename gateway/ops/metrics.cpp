#include "gateway/ops/metrics.hpp"

#include <algorithm>
#include <iterator>

namespace switchyard::gateway {

std::string_view to_string(listener_protocol p) {
    switch (p) {
    case listener_protocol::msnp: return "msnp";
    case listener_protocol::ws: return "ws";
    case listener_protocol::https: return "https";
    case listener_protocol::admin: return "admin";
    }
    return "?";
}

namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out.push_back(' ');
    out += help;
    out += "\n# TYPE ";
    out += name;
    out.push_back(' ');
    out += type;
    out.push_back('\n');
}

template <class T>
void sample(std::string& out, std::string_view name, std::string_view label, std::string_view value, T n) {
    out += name;
    if (!label.empty()) {
        out.push_back('{');
        out += label;
        out += "=\"";
        out += value;
        out += "\"}";
    }
    out.push_back(' ');
    out += std::to_string(n);
    out.push_back('\n');
}

}  // namespace

std::string metrics::render() const {
    std::string out;
    out.reserve(4096);
    header(out, "switchyard_connections", "gauge", "Open client connections by protocol.");
    for (std::size_t i = 0; i < listener_protocol_count; ++i) {
        sample(out, "switchyard_connections", "protocol", to_string(static_cast<listener_protocol>(i)),
               open_[i].load(std::memory_order_relaxed));
    }
    header(out, "switchyard_connections_accepted_total", "counter", "Accepted connections by protocol.");
    for (std::size_t i = 0; i < listener_protocol_count; ++i) {
        sample(out, "switchyard_connections_accepted_total", "protocol",
               to_string(static_cast<listener_protocol>(i)), accepted_[i].load(std::memory_order_relaxed));
    }
    header(out, "switchyard_frames_in_total", "counter", "Frames received from clients and backends, by type.");
    for (std::size_t i = 0; i < frame::type_count; ++i) {
        sample(out, "switchyard_frames_in_total", "type", frame::type_name(i),
               frames_in_[i].load(std::memory_order_relaxed));
    }
    header(out, "switchyard_frames_out_total", "counter", "Frames sent to clients and backends, by type.");
    for (std::size_t i = 0; i < frame::type_count; ++i) {
        sample(out, "switchyard_frames_out_total", "type", frame::type_name(i),
               frames_out_[i].load(std::memory_order_relaxed));
    }
    header(out, "switchyard_errors_total", "counter", "Errors by frame error code.");
    for (std::size_t i = 1; i < errors_.size(); ++i) {
        sample(out, "switchyard_errors_total", "code", frame::to_string(static_cast<frame::error_code>(i)),
               errors_[i].load(std::memory_order_relaxed));
    }
    header(out, "switchyard_routes_version", "gauge", "Version of the active routes table (1 = loaded at start).");
    sample(out, "switchyard_routes_version", {}, {}, routes_version_.load(std::memory_order_relaxed));
    header(out, "switchyard_routes_rejected_total", "counter", "Routes reloads rejected because the file was invalid.");
    sample(out, "switchyard_routes_rejected_total", {}, {}, routes_rejected_.load(std::memory_order_relaxed));
    header(out, "switchyard_throttled_total", "counter",
           "Times a connection over its rate limits was not read until it was back within them.");
    sample(out, "switchyard_throttled_total", {}, {}, throttled_.load(std::memory_order_relaxed));
    header(out, "switchyard_connections_refused_total", "counter",
           "Connections closed on accept for being over max_connections or max_connections_per_address.");
    sample(out, "switchyard_connections_refused_total", "limit", "max_connections",
           refused_[0].load(std::memory_order_relaxed));
    sample(out, "switchyard_connections_refused_total", "limit", "max_connections_per_address",
           refused_[1].load(std::memory_order_relaxed));
    // One header per name, whichever source gave the samples.
    std::vector<extra_sample> extra;
    for (const auto& source : sources_) {
        auto more = source();
        extra.insert(extra.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    std::stable_sort(extra.begin(), extra.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (std::size_t i = 0; i < extra.size(); ++i) {
        const auto& e = extra[i];
        if (i == 0 || extra[i - 1].name != e.name) header(out, e.name, e.type, e.help);
        gateway::sample(out, e.name, e.label, e.label_value, e.value);  // not std::sample
    }
    return out;
}

}  // namespace switchyard::gateway
