// libFuzzer target for the frame decoders. It aborts when
//  - a frame that decoded does not survive encode -> decode -> encode
//    unchanged (the input's own bytes may differ from the re-encoding:
//    unknown fields, field order and non-minimal varints are not kept), or
//  - a record stream fed in two chunks yields other frames or another error
//    than the same stream fed at once.
#include "protocols/frame/wire.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace switchyard::frame;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

void check_round_trip(const frame& f) {
    const std::string wire = encode(f);
    const auto again = decode(wire);
    require(again.has_value());
    require(*again == f);
    require(encode(*again) == wire);
    require(to_text(*again) == to_text(f));
}

struct stream_result {
    std::vector<frame> frames;
    std::optional<decode_error> error;
};

void drain(record_decoder& d, stream_result& out) {
    while (!out.error) {
        auto next = d.next();
        if (!next) {
            out.error = next.error();
        } else if (!*next) {
            return;
        } else {
            out.frames.push_back(std::move(**next));
        }
    }
}

stream_result read_stream(std::string_view bytes, std::size_t split) {
    record_decoder d;
    stream_result out;
    d.feed(bytes.substr(0, split));
    drain(d, out);
    d.feed(bytes.substr(split));
    drain(d, out);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);

    if (const auto f = decode(bytes)) {
        check_round_trip(*f);
    }

    const stream_result whole = read_stream(bytes, bytes.size());
    const stream_result halves = read_stream(bytes, bytes.size() / 2);
    require(halves.frames == whole.frames);
    require(halves.error.has_value() == whole.error.has_value());
    if (whole.error) {
        require(halves.error->code == whole.error->code && halves.error->offset == whole.error->offset &&
                halves.error->field == whole.error->field);
    }
    for (const frame& f : whole.frames) {
        check_round_trip(f);
    }
    return 0;
}

// For the seed runner: whether a seed is a frame, or a stream of records,
// that decodes. Seeds named invalid_* must not; every other seed must, so a
// change that stops committed frames from decoding fails the corpus check.
extern "C" int SwitchyardSeedAccepted(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (decode(bytes)) {
        return 1;
    }
    const stream_result records = read_stream(bytes, bytes.size());
    return !records.error && !records.frames.empty() ? 1 : 0;
}
