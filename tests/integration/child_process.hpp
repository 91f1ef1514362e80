// Test support: the real switchyard binary as a child process, and small
// blocking clients over 127.0.0.1. Every wait has a deadline that fails the
// test instead of hanging it; none sleeps to synchronise.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::test {

using namespace std::chrono_literals;

class child_process {
public:
    // Starts `argv[0]` with the rest as arguments; its stderr and stdout are
    // captured. With `input`, the child's stdin is a pipe holding exactly
    // that (it must fit in a pipe buffer, 64 KiB); otherwise stdin is inherited.
    explicit child_process(const std::vector<std::string>& argv,
                           std::optional<std::string_view> input = std::nullopt);
    ~child_process();  // kills the child if it is still running
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // Reads output until a line containing `needle` arrives; returns it, or
    // nullopt if the deadline passes or the output ends first.
    std::optional<std::string> wait_for_line(std::string_view needle, std::chrono::milliseconds timeout = 10s);
    // Everything the child printed so far.
    const std::string& output() const { return all_output_; }

    void signal(int sig);
    // Exit status, or nullopt if still running at the deadline. -N for death by signal N.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout = 15s);

private:
    bool read_some(std::chrono::steady_clock::time_point deadline);

    int pid_ = -1;
    int fd_ = -1;
    std::string buffer_;
    std::string all_output_;
    std::optional<int> status_;
};

// Runs a command to completion; returns its exit status and its output.
struct run_result {
    int status;
    std::string output;
};
run_result run_to_completion(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 30s);
// The same with `input` as the child's stdin.
run_result run_to_completion(const std::vector<std::string>& argv, std::string_view input,
                             std::chrono::milliseconds timeout = 30s);

// A connected TCP socket to 127.0.0.1:port with deadline-bounded I/O.
class tcp_client {
public:
    // From `source` when given (an address of 127.0.0.0/8), else from 127.0.0.1.
    explicit tcp_client(unsigned short port, const std::string& source = {});
    ~tcp_client();
    tcp_client(const tcp_client&) = delete;
    tcp_client& operator=(const tcp_client&) = delete;

    void send(std::string_view bytes);
    // Reads until `needle` is in what was received (returned whole), or nullopt at EOF/deadline.
    std::optional<std::string> read_until(std::string_view needle, std::chrono::milliseconds timeout = 10s);
    // Reads until the peer closes; returns everything received, or nullopt at the deadline.
    std::optional<std::string> read_to_eof(std::chrono::milliseconds timeout = 10s);
    // The next bytes to arrive ("" when the peer closed), or nullopt at the
    // deadline. Independent of what read_until keeps.
    std::optional<std::string> read_some(std::chrono::milliseconds timeout = 10s);
    void close();

private:
    int fd_ = -1;
    std::string received_;
};

struct http_response {
    int status = 0;
    std::string body;
};
// One HTTP/1.1 request with Connection: close and `headers` (each ending
// in CRLF).
http_response http_request(unsigned short port, std::string_view method, std::string_view target,
                           std::string_view headers = "Host: 127.0.0.1\r\n");

// A fresh directory under the system's temporary directory, removed with
// everything in it when this goes out of scope.
struct temp_dir {
    std::filesystem::path path;
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

void write_file(const std::filesystem::path& p, std::string_view text);

// Returns the value of `key=` in a key=value log line, unquoted ("" if absent).
std::string log_field(std::string_view line, std::string_view key);

}  // namespace switchyard::test
