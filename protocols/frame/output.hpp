// What a client codec returns after it was fed, for every transport: the
// one protocol-neutral value the gateway's session core carries out
// (gateway/README.md section 1). Codecs never touch a socket; they say what to write,
// which frames to route, which objects to watch and whether to close.
#pragma once

#include "protocols/frame/frame.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace switchyard::frame {

struct output {
    // To write, in order: the next bytes of a byte stream (MSNP) ...
    std::string bytes;
    // ... or whole messages of a message transport (one WebSocket text
    // message each). A codec uses one of the two.
    std::vector<std::string> messages;
    std::vector<frame> frames;          // to route; replies come back through on_frame
    std::vector<std::string> watch;     // object ids to subscribe this connection to
    std::vector<std::string> unwatch;
    bool close = false;                 // close once what is written is sent
    std::uint16_t close_code = 0;       // a WebSocket close code (RFC 6455 section 7.4.1); 0 on a byte stream
    std::string close_reason;           // for the log, and a WebSocket close frame

    // Appends `other` after this; the first close decision stands.
    void append(output&& other);
};

// The calls every client codec answers with an output, whatever its wire
// form: frames from objects, the gateway stopping, the connection gone.
// How bytes or messages are fed in is each codec's own.
class codec {
public:
    virtual output on_frame(const frame& f) = 0;
    virtual output on_shutdown() = 0;  // the gateway is stopping: tell the client why
    virtual output on_closed() = 0;    // the connection is gone: tell the objects

protected:
    ~codec() = default;
};

}  // namespace switchyard::frame
