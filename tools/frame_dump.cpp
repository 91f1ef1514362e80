// Prints frames as text, one to_text line per frame.
//
//   frame_dump [--single] [FILE]
//
// The input (FILE, or standard input when FILE is absent or "-") is a record
// stream as encode_record writes it and replay logs hold: a 4-byte big-endian
// length, then the frame, repeated. With --single it is one bare frame.
// A decode error is reported on stderr as "FILE: byte N: <error>" with exit
// status 1, where N is the offset in the input of the record (or frame) that
// failed; the error's own "at byte" offset counts from the start of that
// frame. Usage and I/O errors exit with status 2.
#include "protocols/frame/wire.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using namespace switchyard::frame;

void print(const frame& f) {
    std::string line = to_text(f);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
}

int decode_failed(const char* input, std::size_t at, const decode_error& e) {
    std::fprintf(stderr, "%s: byte %zu: %s\n", input, at, e.to_string().c_str());
    return 1;
}

int read_failed(const char* input) {
    std::fprintf(stderr, "%s: %s\n", input, std::strerror(errno));
    return 2;
}

int dump_single(std::FILE* in, const char* input) {
    std::string bytes;
    char buf[1 << 16];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) {
        bytes.append(buf, n);
    }
    if (std::ferror(in)) {
        return read_failed(input);
    }
    auto f = decode(bytes);
    if (!f) {
        return decode_failed(input, 0, f.error());
    }
    print(*f);
    return 0;
}

int dump_records(std::FILE* in, const char* input) {
    record_decoder records;
    std::size_t fed = 0;
    char buf[1 << 16];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) {
        records.feed(std::string_view(buf, n));
        fed += n;
        for (;;) {
            auto next = records.next();
            if (!next) {
                return decode_failed(input, fed - records.buffered(), next.error());
            }
            if (!*next) {
                break;
            }
            print(**next);
        }
    }
    if (std::ferror(in)) {
        return read_failed(input);
    }
    if (const std::size_t left = records.buffered(); left > 0) {
        const std::size_t frame_bytes = left > record_prefix ? left - record_prefix : 0;
        return decode_failed(input, fed - left, decode_error{errc::truncated, frame_bytes, {}});
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool single = false;
    const char* path = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--single") {
            single = true;
        } else if (path == nullptr && (arg == "-" || !arg.starts_with("-"))) {
            path = argv[i];
        } else {
            std::fputs("usage: frame_dump [--single] [FILE]\n", stderr);
            return 2;
        }
    }

    const bool from_stdin = path == nullptr || std::string_view(path) == "-";
    const char* input = from_stdin ? "<stdin>" : path;
    std::FILE* in = from_stdin ? stdin : std::fopen(path, "rb");
    if (in == nullptr) {
        return read_failed(input);
    }
    const int status = single ? dump_single(in, input) : dump_records(in, input);
    if (!from_stdin) {
        std::fclose(in);
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        std::fprintf(stderr, "frame_dump: cannot write output\n");
        return 2;
    }
    return status;
}
