// MSNP connection codec (sans-I/O): bytes from a client in, bytes to write
// and connection decisions out.
//
// This build frames command lines and answers each with `502` (command
// disabled), the reply real servers gave to commands they had switched off;
// the NS and SB state machines replace that answer, behind this same interface.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace switchyard::msnp {

// The outcome of feeding bytes: what to write, and whether to close after writing it.
struct step {
    std::string output;
    bool close = false;
    std::string close_reason;  // for the log; MSNP has no way to tell the client
};

class connection {
public:
    explicit connection(std::size_t max_line) : max_line_(max_line) {}

    step feed(std::string_view bytes);

    // Written to every session when the gateway shuts down (reason SSD,
    // "server shutting down", understood by every dialect).
    static constexpr std::string_view shutdown_notice = "OUT SSD\r\n";

private:
    std::string pending_;
    std::size_t max_line_;
};

}  // namespace switchyard::msnp
