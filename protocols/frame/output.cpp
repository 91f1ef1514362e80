#include "protocols/frame/output.hpp"

#include <iterator>

namespace switchyard::frame {

void output::append(output&& other) {
    bytes += other.bytes;
    std::move(other.messages.begin(), other.messages.end(), std::back_inserter(messages));
    std::move(other.frames.begin(), other.frames.end(), std::back_inserter(frames));
    std::move(other.watch.begin(), other.watch.end(), std::back_inserter(watch));
    std::move(other.unwatch.begin(), other.unwatch.end(), std::back_inserter(unwatch));
    if (other.close && !close) {
        close = true;
        close_code = other.close_code;
        close_reason = std::move(other.close_reason);
    }
}

}  // namespace switchyard::frame
