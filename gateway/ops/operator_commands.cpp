#include "gateway/ops/operator_commands.hpp"

#include "gateway/ops/log.hpp"
#include "gateway/login/user_accounts.hpp"

#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/object.hpp"

#include "protocols/frame/frame.hpp"
#include "protocols/text/text.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <vector>

namespace switchyard::gateway::operator_commands {

namespace {

constexpr int failure = 1;
constexpr std::string_view room_prefix = "room:";

// Client-supplied text (display names, messages, handles typed by the
// operator) made safe for a terminal: control characters, C1 ones included,
// could move the cursor or rewrite the screen, and line breaks would split a
// table row.
std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        const bool c1 = b == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0 &&
                        static_cast<unsigned char>(s[i + 1]) >= 0x80;
        char escaped[8];
        if (b == '\n') {
            out += "\\n";
        } else if (b == '\t') {
            out += "\\t";
        } else if (b < 0x20 || b == 0x7f) {
            std::snprintf(escaped, sizeof escaped, "\\x%02x", b);
            out += escaped;
        } else if (c1) {
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(s[++i]));
            out += escaped;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

// Columns are aligned by code points: close enough for names in a terminal.
std::size_t display_width(std::string_view s) {
    std::size_t n = 0;
    for (const char c : s) {
        if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
    }
    return n;
}

// Rows of printable cells, the first one the header; two spaces between columns.
void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(widths[i] - display_width(row[i]) + 2, ' ');
        }
        std::printf("%s\n", line.c_str());
    }
}


int report(std::string_view message) {
    std::fprintf(stderr, "%s\n", printable(message).c_str());
    return failure;
}

// One line of stdin without its line break; a trailing CR too, for files
// written on Windows.
std::optional<std::string> read_line() {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (line.ends_with('\r')) line.pop_back();
    return line;
}

tl::expected<std::string, std::string> read_hidden(const char* prompt) {
    termios shown{};
    if (::tcgetattr(STDIN_FILENO, &shown) != 0) {
        return tl::unexpected(std::string("cannot read the terminal's settings"));
    }
    termios hidden = shown;
    hidden.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &hidden) != 0) {
        return tl::unexpected(std::string("cannot turn off echo on the terminal"));
    }
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    auto line = read_line();
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &shown);
    // The Enter the user typed was not echoed either.
    std::fprintf(stderr, "\n");
    if (!line) return tl::unexpected(std::string("no password entered; nothing was changed"));
    return std::move(*line);
}

tl::expected<std::string, std::string> read_new_password() {
    if (!::isatty(STDIN_FILENO)) {
        auto line = read_line();
        if (!line) return tl::unexpected(std::string("expected the password on a line of standard input"));
        return std::move(*line);
    }
    auto first = read_hidden("New password: ");
    if (!first) return first;
    auto second = read_hidden("Retype new password: ");
    if (!second) return second;
    if (*first != *second) return tl::unexpected(std::string("the passwords do not match; nothing was changed"));
    return first;
}

// With several embedded backends, listings say which one each row is from.
bool several_backends(const config::settings& s) { return s.backends.size() > 1; }

}  // namespace

int user_add(const config::settings& s, const config::route_table& routes, const std::string& handle,
             bool legacy_md5, const std::string& display_name) {
    auto db = open_backend_database(s, user_backend(routes, handle));
    if (!db) return report(db.error());
    auto accounts = accounts_of(**db, s);
    auto checked = accounts.check_add(handle, display_name);
    if (!checked) return report(checked.error().message);
    auto password = read_new_password();
    if (!password) return report(password.error());
    auto added = accounts.add(*checked, *password, legacy_md5, display_name);
    if (!added) return report(added.error().message);
    std::printf("added user %s%s\n", printable(*added).c_str(), legacy_md5 ? " with MSNP2-7 MD5 login" : "");
    return 0;
}

int user_passwd(const config::settings& s, const config::route_table& routes, const std::string& handle,
                std::optional<bool> legacy_md5) {
    auto db = open_backend_database(s, user_backend(routes, handle));
    if (!db) return report(db.error());
    auto accounts = accounts_of(**db, s);
    auto checked = accounts.check_set_password(handle);
    if (!checked) return report(checked.error().message);
    auto password = read_new_password();
    if (!password) return report(password.error());
    if (auto changed = accounts.set_password(*checked, *password, legacy_md5); !changed) {
        return report(changed.error().message);
    }
    std::printf("changed the password of %s%s\n", printable(*checked).c_str(),
                !legacy_md5 ? "" : *legacy_md5 ? "; MSNP2-7 MD5 login on" : "; MSNP2-7 MD5 login off");
    return 0;
}

int user_del(const config::settings& s, const config::route_table& routes, const std::string& handle) {
    auto db = open_backend_database(s, user_backend(routes, handle));
    if (!db) return report(db.error());
    auto accounts = accounts_of(**db, s);
    if (auto removed = accounts.remove(handle); !removed) return report(removed.error().message);
    std::printf("removed user %s\n", printable(*text::normalize_handle(handle)).c_str());
    return 0;
}

int user_list(const config::settings& s) {
    std::vector<std::vector<std::string>> rows{{"HANDLE", "DISPLAY NAME", "LEGACY MD5", "CREATED"}};
    if (several_backends(s)) rows[0].emplace_back("BACKEND");
    for (const auto& b : s.backends) {
        auto db = open_backend_database(s, b.name);
        if (!db) return report(db.error());
        for (const auto& user : accounts_of(**db, s).list()) {
            rows.push_back({printable(user.handle), printable(user.display_name), user.legacy_md5 ? "yes" : "no",
                            log::iso_time(user.created_ms)});
            if (several_backends(s)) rows.back().push_back(b.name);
        }
        if ((*db)->failed()) return report(b.name + ": " + (*db)->error());
    }
    print_table(rows);
    return 0;
}

int room_list(const config::settings& s) {
    std::vector<std::vector<std::string>> rows{{"ROOM", "POLICY", "TITLE", "MEMBERS", "LAST SEQ"}};
    if (several_backends(s)) rows[0].emplace_back("BACKEND");
    for (const auto& b : s.backends) {
        auto db = open_backend_database(s, b.name);
        if (!db) return report(db.error());
        // The ring's newest message carries the room's last seq.
        auto& q = (*db)->prepare(
            "SELECT r.id, r.policy, r.title, (SELECT count(*) FROM room_members m WHERE m.room = r.id), "
            "coalesce((SELECT max(seq) FROM messages g WHERE g.room = r.id), 0) "
            "FROM rooms r ORDER BY r.id");
        q.bind();
        while (q.step()) {
            rows.push_back({printable(std::string(room_prefix) + q.text(0)),
                            std::string(frame::to_string(static_cast<frame::room_policy>(q.integer(1)))),
                            printable(q.text(2)), std::to_string(q.integer(3)), std::to_string(q.integer(4))});
            if (several_backends(s)) rows.back().push_back(b.name);
        }
        if ((*db)->failed()) return report(b.name + ": " + (*db)->error());
    }
    print_table(rows);
    return 0;
}

int room_history(const config::settings& s, const config::route_table& routes, const std::string& room,
                 std::size_t limit) {
    const std::string id = room.starts_with(room_prefix) ? room.substr(room_prefix.size()) : room;
    auto db = open_backend_database(s, routes.lookup(std::string(room_prefix) + id).backend);
    if (!db) return report(db.error());
    auto& exists = (*db)->prepare("SELECT 1 FROM rooms WHERE id = ?1");
    exists.bind(id);
    const bool found = exists.step();
    exists.run();
    if ((*db)->failed()) return report((*db)->error());
    if (!found) return report("no room " + std::string(room_prefix) + id);

    std::vector<std::vector<std::string>> rows{{"SEQ", "TIME", "SENDER", "TEXT"}};
    // The newest `limit` by seq, then oldest first. Slots are seq % 100, so
    // slot order is not message order once the ring wraps.
    auto& q = (*db)->prepare(
        "SELECT seq, ts_ms, sender, text FROM "
        "(SELECT seq, ts_ms, sender, text FROM messages WHERE room = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq");
    q.bind(id, static_cast<std::uint64_t>(limit));
    while (q.step()) {
        rows.push_back({std::to_string(q.integer(0)), log::iso_time(static_cast<std::uint64_t>(q.integer(1))),
                        printable(q.text(2)), printable(q.text(3))});
    }
    if ((*db)->failed()) return report((*db)->error());
    print_table(rows);
    return 0;
}

}  // namespace switchyard::gateway::operator_commands
