#include "gateway/ops/capture.hpp"

#include "gateway/ops/log.hpp"
#include "tools/replay/transcript.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>

namespace switchyard::gateway {

namespace replay = switchyard::replay;

capture_writer::capture_writer(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("capture_dir " + dir_.string() + ": " + ec.message());
    ::chmod(dir_.c_str(), 0700);
    thread_ = std::thread([this] { run(); });
}

capture_writer::~capture_writer() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

std::uint64_t capture_writer::open(std::string_view peer) {
    std::uint64_t id = 0;
    {
        const std::lock_guard lock(mutex_);
        id = ++next_id_;
    }
    push(id, kind::open, peer);
    return id;
}

void capture_writer::push(std::uint64_t id, kind what, std::string_view bytes) {
    bool was_empty = false;
    {
        const std::lock_guard lock(mutex_);
        was_empty = queue_.empty();
        queue_.push_back({id, what, std::string(bytes), std::chrono::steady_clock::now()});
    }
    // One wake-up per batch: the writer takes everything queued at once.
    if (was_empty) wake_.notify_one();
}

namespace {

// One recorded connection on the writer thread.
struct recording {
    int fd = -1;
    std::chrono::steady_clock::time_point start;
    replay::splitter from_client{true, false};
    replay::splitter from_server{false, false};
    replay::redactor redact;
    std::string name;       // NS or SB, from the client's first command
    bool last_was_out = false;
    std::string pending;    // formatted, not yet written

    ~recording() {
        if (fd >= 0) ::close(fd);
    }

    void add(std::vector<replay::step> steps) {
        for (auto& s : steps) {
            if (name.empty()) name = s.client && !s.text.starts_with("VER ") ? "SB" : "NS";
            s.connection = name;
            if (s.client) last_was_out = s.text == "OUT";
            pending += replay::format_step(redact.process(std::move(s)));
        }
    }

    void flush() {
        std::string_view left = pending;
        while (!left.empty() && fd >= 0) {
            const ssize_t n = ::write(fd, left.data(), left.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // a full disk loses the rest of the recording, never the session
            left.remove_prefix(static_cast<std::size_t>(n));
        }
        pending.clear();
    }
};

std::string utc_stamp() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

}  // namespace

void capture_writer::run() {
    std::map<std::uint64_t, std::unique_ptr<recording>> open;
    std::vector<event> batch;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty() && stopping_) break;
            batch.swap(queue_);
        }
        std::map<std::uint64_t, recording*> touched;
        for (auto& e : batch) {
            if (e.what == kind::open) {
                auto r = std::make_unique<recording>();
                r->start = e.at;
                const auto path = dir_ / (utc_stamp() + "-" + std::to_string(::getpid()) + "-" + std::to_string(e.id) + ".txt");
                r->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (r->fd < 0) {
                    log::warn("capture_failed", {{"file", path.string()}, {"error", std::strerror(errno)}});
                }
                r->pending = "# recorded by switchyard: MSNP from " + e.bytes + ", " + utc_stamp() + "\n";
                open[e.id] = std::move(r);
                continue;
            }
            const auto it = open.find(e.id);
            if (it == open.end()) continue;
            recording& r = *it->second;
            const double at = std::chrono::duration<double>(e.at - r.start).count();
            if (e.what == kind::client) {
                r.from_client.feed(e.bytes, at);
                r.add(r.from_client.take());
            } else if (e.what == kind::server) {
                r.from_server.feed(e.bytes, at);
                r.add(r.from_server.take());
            } else {
                // The server's close is part of the exchange; a client that
                // simply went away is the end of the trace.
                if (e.what == kind::closed_by_server || r.last_was_out) {
                    replay::step closed;
                    closed.at = at;
                    closed.connection = r.name.empty() ? "NS" : r.name;
                    closed.text = "(closed)";
                    r.pending += replay::format_step(closed);
                }
                r.flush();
                touched.erase(e.id);
                open.erase(it);
                continue;
            }
            touched[e.id] = &r;
        }
        batch.clear();
        for (auto& [id, r] : touched) r->flush();
    }
    for (auto& [id, r] : open) r->flush();
}

}  // namespace switchyard::gateway
