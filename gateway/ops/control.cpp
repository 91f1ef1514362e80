#include "gateway/ops/control.hpp"

#include "gateway/ops/log.hpp"

#include "protocols/frame/link.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>

namespace switchyard::gateway::control {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
namespace wire = frame::link;

namespace {

constexpr std::string_view directory_prefix = "accounts:";

// A connected Unix socket to `path`, or -1 with errno set.
int connect_to(const std::filesystem::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.native().size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

// One operator command's connection.
class session : public std::enable_shared_from_this<session> {
public:
    session(local::socket socket, hub& objects) : socket_(std::move(socket)), objects_(objects) {}

    void start() { read(); }

private:
    void read() {
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                   std::size_t n) {
            if (ec) return;
            self->decoder_.feed({self->buffer_.data(), n});
            for (;;) {
                auto m = self->decoder_.next();
                if (!m) {
                    log::warn("control_refused", {{"error", m.error()}});
                    return;
                }
                if (!*m) break;
                if (!self->handle(std::move(**m))) return;
            }
            self->read();
        });
    }

    bool handle(wire::message m) {
        if (std::holds_alternative<wire::open>(m)) {
            const auto& o = std::get<wire::open>(m);
            if (o.highest < wire::lowest_version || o.lowest > wire::highest_version) {
                send(wire::refuse{"no common version"});
                return false;
            }
            send(wire::accept{std::min(o.highest, wire::highest_version), {}, 0, false});
            open_ = true;
            return true;
        }
        auto* r = std::get_if<wire::request>(&m);
        if (!open_ || r == nullptr) {
            log::warn("control_refused", {{"error", "unexpected " + std::string(wire::name(m))}});
            return false;
        }
        frame::frame f = std::move(r->f);
        const auto answer = [weak = weak_from_this(), executor = socket_.get_executor()](frame::frame reply) {
            asio::post(executor, [weak, reply = std::move(reply)]() mutable {
                if (auto self = weak.lock()) self->send(wire::reply{std::move(reply)});
            });
        };
        const auto refuse = [&](frame::error_code code, std::string why) {
            answer(frame::frame{f.corr, f.object, {}, frame::error{code, std::move(why)}});
        };
        if (!frame::is_account_frame(f)) {
            refuse(frame::error_code::not_allowed, "the control socket takes account frames only");
            return true;
        }
        f.sender.clear();
        log::info("operator_request", {{"type", frame::type_name(f)}, {"object", f.object}});
        if (f.object.starts_with(directory_prefix) && f.object.size() > directory_prefix.size()) {
            const std::string name = f.object.substr(directory_prefix.size());
            auto backend = objects_.backend(name);
            if (!backend) {
                refuse(frame::error_code::unknown_object, "no backend " + name);
                return true;
            }
            f.object = std::string(directory_prefix);
            backend->send(std::move(f), answer);
            return true;
        }
        const auto corr = f.corr;
        std::string object = f.object;
        if (!objects_.send(std::move(f), answer)) {
            answer(frame::frame{corr, std::move(object), {},
                                frame::error{frame::error_code::backend_unavailable, "no backend serves it"}});
        }
        return true;
    }

    void send(const wire::message& m) {
        const bool idle = out_.empty();
        out_.emplace_back();
        wire::encode(m, out_.back());
        if (idle) write();
    }

    void write() {
        asio::async_write(socket_, asio::buffer(out_.front()),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                              if (ec) return;
                              self->out_.pop_front();
                              if (!self->out_.empty()) self->write();
                          });
    }

    local::socket socket_;
    hub& objects_;
    std::array<char, 4096> buffer_{};
    wire::decoder decoder_;
    std::deque<std::string> out_;
    bool open_ = false;
};

}  // namespace

class server::impl : public std::enable_shared_from_this<impl> {
public:
    impl(asio::io_context& ctx, hub& objects) : acceptor_(ctx), objects_(objects) {}

    tl::expected<void, std::string> listen(const std::filesystem::path& path) {
        if (path.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
            return tl::unexpected(path.string() + ": too long for a Unix socket");
        }
        if (const int fd = connect_to(path); fd >= 0) {
            ::close(fd);
            return tl::unexpected(path.string() + ": another switchyard process serves this data directory");
        }
        std::error_code ignored;
        std::filesystem::remove(path, ignored);  // a socket left by a process that is gone
        boost::system::error_code ec;
        // Owner-only from the start: no moment in which others may connect.
        const mode_t before = ::umask(0077);
        acceptor_.open(local(), ec);
        if (!ec) acceptor_.bind(local::endpoint(path.string()), ec);
        ::umask(before);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) return tl::unexpected(path.string() + ": " + ec.message());
        path_ = path;
        return {};
    }

    void accept() {
        acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, local::socket socket) {
            if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
            if (!ec) std::make_shared<session>(std::move(socket), self->objects_)->start();
            self->accept();
        });
    }

    void close() {
        asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
            boost::system::error_code ignored;
            self->acceptor_.close(ignored);
            if (!self->path_.empty()) {
                std::error_code gone;
                std::filesystem::remove(self->path_, gone);
                self->path_.clear();
            }
        });
    }

private:
    local::acceptor acceptor_;
    hub& objects_;
    std::filesystem::path path_;
};

server::server(asio::io_context& ctx, hub& objects) : impl_(std::make_shared<impl>(ctx, objects)) {}
server::~server() = default;
tl::expected<void, std::string> server::listen(const std::filesystem::path& path) { return impl_->listen(path); }
void server::start() { impl_->accept(); }
void server::close() { impl_->close(); }

// ------------------------------------------------------------ client

namespace {

class connection {
public:
    explicit connection(int fd) : fd_(fd) {}
    ~connection() { ::close(fd_); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    tl::expected<void, std::string> send(const wire::message& m) {
        std::string bytes;
        wire::encode(m, bytes);
        std::size_t at = 0;
        while (at < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return tl::unexpected("cannot write to the gateway: " + std::string(std::strerror(errno)));
            at += static_cast<std::size_t>(n);
        }
        return {};
    }

    tl::expected<wire::message, std::string> receive(std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            auto m = decoder_.next();
            if (!m) return tl::unexpected("the gateway sent something unreadable: " + m.error());
            if (*m) return std::move(**m);
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
                return tl::unexpected(std::string("the gateway did not answer in time"));
            }
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return tl::unexpected(std::string("the gateway closed the connection"));
            decoder_.feed({buf, static_cast<std::size_t>(n)});
        }
    }

private:
    int fd_;
    wire::decoder decoder_;
};

}  // namespace

tl::expected<frame::frame, std::string> call(const std::filesystem::path& path, frame::frame f,
                                             std::chrono::milliseconds timeout) {
    const int fd = connect_to(path);
    if (fd < 0) {
        return tl::unexpected("cannot reach the running gateway at " + path.string() + ": " + std::strerror(errno));
    }
    connection c(fd);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (auto sent = c.send(wire::open{wire::lowest_version, wire::highest_version, "operator", {}, 0}); !sent) {
        return tl::unexpected(sent.error());
    }
    auto accepted = c.receive(deadline);
    if (!accepted) return tl::unexpected(accepted.error());
    if (const auto* refused = std::get_if<wire::refuse>(&*accepted)) {
        return tl::unexpected("the gateway refused: " + refused->reason);
    }
    f.corr = 1;
    if (auto sent = c.send(wire::request{std::move(f)}); !sent) return tl::unexpected(sent.error());
    for (;;) {
        auto m = c.receive(deadline);
        if (!m) return tl::unexpected(m.error());
        if (auto* r = std::get_if<wire::reply>(&*m)) return std::move(r->f);
    }
}

}  // namespace switchyard::gateway::control
