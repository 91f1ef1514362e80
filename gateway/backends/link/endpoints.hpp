// The live endpoints a gateway registered through a backend link, kept as
// the frames that registered them. The gateway keeps them to register its
// sessions again with a backend that restarted (and lost every endpoint);
// the backend keeps them to end a gateway's endpoints when its lease runs
// out. No I/O: both sides feed it the requests they pass on.
#pragma once

#include "protocols/frame/frame.hpp"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchyard::gateway::link {

class endpoint_registry {
public:
    // Notes what the request `f` registers (hello, presence_set, room_join)
    // or ends (bye, room_leave). Other frames change nothing.
    void note(const frame::frame& f);

    // Frames (corr 0) that register every live endpoint again: each user
    // endpoint's hello and its latest presence, then the room joins.
    std::vector<frame::frame> registrations() const;
    // Frames (corr 0) that end every live endpoint as its dead connection
    // would have: bye{normal=false} to each user object, and room_leave
    // reason dropped to each room, each with the endpoint's user as sender.
    std::vector<frame::frame> endings(const std::string& reason) const;

    std::size_t size() const { return users_.size() + rooms_.size(); }
    bool empty() const { return users_.empty() && rooms_.empty(); }

private:
    struct user_endpoint {
        std::optional<frame::frame> hello;
        std::optional<frame::frame> presence;
    };
    using key = std::pair<std::string, std::string>;  // (object, endpoint)
    std::map<key, user_endpoint> users_;
    std::map<key, frame::frame> rooms_;               // the room_join
};

}  // namespace switchyard::gateway::link
