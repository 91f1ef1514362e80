// pcap and pcapng files (through libpcap) to MSNP steps: TCP reassembled
// per connection and direction, then split into commands and payloads.
#pragma once

#include "tools/replay/transcript.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace switchyard::replay {

struct capture_options {
    std::set<std::uint16_t> ports{1863};        // MSNP server ports
    std::set<std::uint16_t> http_ports{80};     // HTTP gateway (gateway.dll) server ports
};

struct capture_connection {
    std::string client;            // address:port
    std::string server;
    std::string role;              // "NS" or "SB" (from its first commands)
    bool http = false;             // carried in HTTP gateway polling
    bool start_missing = false;    // no SYN: resynchronised on the first command
    double first = 0, last = 0;    // seconds since the capture began
    std::size_t gaps = 0;          // bytes never seen (lost segments)
    std::vector<step> steps;       // in the order they happened, connection names unset
};

struct capture {
    std::size_t packets = 0;
    double span = 0;
    std::vector<capture_connection> connections;
};

// Reads a whole file. A truncated or unreadable file is an error with the
// packet number where reading stopped.
std::optional<parse_error> read_capture(const std::string& path, const capture_options& options, capture& out);

// The capture as a transcript: connections named NS1, SB1, ... in order of
// appearance, steps timed and merged in time order, secrets redacted.
transcript to_transcript(const capture& c);

// Human-readable summary: connections, commands per direction, dialect,
// handles, errors, durations.
std::string summarize(const capture& c);

}  // namespace switchyard::replay
