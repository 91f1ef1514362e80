#include "child_process.hpp"

#include <arpa/inet.h>
#include <fstream>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace switchyard::test {

namespace {

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until fd is readable; false at the deadline.
bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return -1000;
}

}  // namespace

child_process::child_process(const std::vector<std::string>& argv, std::optional<std::string_view> input) {
    // The whole input is in the pipe before the child starts, so writing it
    // can neither block on a child that is slow to read nor raise SIGPIPE
    // from one that exits without reading. A non-blocking write end turns
    // input too large for the pipe into an error instead of a hang.
    int stdin_read = -1;
    if (input) {
        int in[2];
        if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        ::fcntl(in[1], F_SETFL, O_NONBLOCK);
        const ssize_t n = input->empty() ? 0 : ::write(in[1], input->data(), input->size());
        ::close(in[1]);
        if (n != static_cast<ssize_t>(input->size())) {
            ::close(in[0]);
            throw std::runtime_error("the child's input does not fit in a pipe buffer");
        }
        stdin_read = in[0];
    }
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_read >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_read, 0);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (stdin_read >= 0) ::close(stdin_read);
    ::close(pipefd[1]);
    fd_ = pipefd[0];
    if (rc != 0) throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(rc));
}

child_process::~child_process() {
    if (!status_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
    }
    if (fd_ >= 0) ::close(fd_);
}

bool child_process::read_some(std::chrono::steady_clock::time_point deadline) {
    if (!wait_readable(fd_, deadline)) return false;
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<std::size_t>(n));
    all_output_.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::optional<std::string> child_process::wait_for_line(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::size_t nl;
        while ((nl = buffer_.find('\n')) != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            if (line.find(needle) != std::string::npos) return line;
        }
        if (!read_some(deadline)) return std::nullopt;
    }
}

void child_process::signal(int sig) { ::kill(pid_, sig); }

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // Drain output while waiting so the child never blocks on a full pipe.
    while (read_some(deadline)) {
    }
    // Output at EOF before the deadline: the child has exited or is exiting,
    // so block on it; at the deadline, only look.
    const bool at_eof = remaining_ms(deadline) > 0;
    int st = 0;
    if (::waitpid(pid_, &st, at_eof ? 0 : WNOHANG) != pid_) return std::nullopt;
    status_ = decode_status(st);
    return status_;
}

namespace {

run_result run_with(const std::vector<std::string>& argv, std::optional<std::string_view> input,
                    std::chrono::milliseconds timeout) {
    child_process p(argv, input);
    const auto status = p.wait_exit(timeout);
    if (!status) throw std::runtime_error("command did not finish in time: " + argv.front());
    return {*status, p.output()};
}

}  // namespace

run_result run_to_completion(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    return run_with(argv, std::nullopt, timeout);
}

run_result run_to_completion(const std::vector<std::string>& argv, std::string_view input,
                             std::chrono::milliseconds timeout) {
    return run_with(argv, input, timeout);
}

tcp_client::tcp_client(unsigned short port, const std::string& source) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!source.empty()) {
        // Linux routes all of 127.0.0.0/8 to lo: any of it is a source address.
        sockaddr_in from{};
        from.sin_family = AF_INET;
        if (::inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
            ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
            throw std::runtime_error("bind to " + source + ": " + std::strerror(errno));
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
    }
}

tcp_client::~tcp_client() { close(); }

void tcp_client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void tcp_client::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::optional<std::string> tcp_client::read_until(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received_.find(needle) == std::string::npos) {
        if (!wait_readable(fd_, deadline)) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return std::nullopt;
        received_.append(buf, static_cast<std::size_t>(n));
    }
    return received_;
}

std::optional<std::string> tcp_client::read_some(std::chrono::milliseconds timeout) {
    if (!wait_readable(fd_, std::chrono::steady_clock::now() + timeout)) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return std::string{};
    return std::string(buf, static_cast<std::size_t>(n));
}

std::optional<std::string> tcp_client::read_to_eof(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (!wait_readable(fd_, deadline)) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return received_;
        if (n < 0) return std::nullopt;
        received_.append(buf, static_cast<std::size_t>(n));
    }
}

http_response http_request(unsigned short port, std::string_view method, std::string_view target,
                           std::string_view headers) {
    tcp_client c(port);
    c.send(std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n" + std::string(headers) +
           "Content-Length: 0\r\nConnection: close\r\n\r\n");
    const auto raw = c.read_to_eof();
    if (!raw) throw std::runtime_error("no HTTP response for " + std::string(target));
    http_response r;
    if (raw->rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(raw->substr(9, 3));
    const auto body_at = raw->find("\r\n\r\n");
    if (body_at != std::string::npos) r.body = raw->substr(body_at + 4);
    return r;
}

temp_dir::temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

void write_file(const std::filesystem::path& p, std::string_view text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string log_field(std::string_view line, std::string_view key) {
    const std::string k = " " + std::string(key) + "=";
    const auto at = line.find(k);
    if (at == std::string_view::npos) return {};
    std::string_view rest = line.substr(at + k.size());
    if (rest.empty() || rest.front() != '"') return std::string(rest.substr(0, rest.find(' ')));
    std::string value;
    for (std::size_t i = 1; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i]);
    }
    return value;
}

}  // namespace switchyard::test
