#include "gateway/backends/embedded/sqlite.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>

namespace switchyard::gateway::embedded {

statement::~statement() {
    if (stmt_) {
        sqlite3_finalize(stmt_);
    }
}

void statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

void statement::bind_one(int i, std::int64_t v) {
    if (const int rc = sqlite3_bind_int64(stmt_, i, v); rc != SQLITE_OK) db_->record_error(rc);
}

void statement::bind_one(int i, std::string_view v) {
    if (const int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
        rc != SQLITE_OK) {
        db_->record_error(rc);
    }
}

bool statement::step() {
    if (db_->failed()) {
        return false;
    }
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc != SQLITE_DONE) {
        db_->record_error(rc);
    }
    sqlite3_reset(stmt_);
    return false;
}

std::string statement::text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string{};
}

// The rule for this file and its -wal and -shm: only SQLite opens them.
//
// SQLite's locks are POSIX record locks, which belong to the process, not to
// the descriptor: closing *any* descriptor of the file drops every lock that
// all of this process's connections hold on it. A connection in another
// process (an operator command beside a running gateway) then finds no other
// user when it closes, checkpoints, and deletes the WAL that this process is
// still writing into: every commit after that is acknowledged and lost.
// SQLite itself never closes a descriptor while a lock on the inode is held
// in the process; code here must not open(2), fopen or stream these files.
//
// The one exception is creating the file, to give it mode 0600 before any
// credential is written (SQLite gives its -wal and -shm the same mode):
// O_EXCL succeeds only for a path that did not exist, so no connection can
// hold a lock on that inode yet, and the mutex keeps every connection of this
// process from opening it before the descriptor is closed.
database::database(const std::filesystem::path& file, durability d) {
    {
        static std::mutex opening;
        const std::lock_guard lock(opening);
        if (const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); fd >= 0) {
            ::close(fd);
        }
        const int rc = sqlite3_open_v2(file.c_str(), &db_,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) {
            std::string msg =
                file.string() + ": cannot open database: " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
            sqlite3_close(db_);
            throw std::runtime_error(msg);
        }
    }
    // Other shards and operator commands write the same file: wait for the
    // write lock instead of failing.
    sqlite3_busy_timeout(db_, 10000);
    exec("PRAGMA journal_mode=WAL");
    // FULL: a commit survives power loss. NORMAL: it survives the process
    // being killed, which is what acknowledgement promises at minimum.
    exec(d == durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    if (failed()) {
        std::string msg = file.string() + ": " + error();
        sqlite3_close(db_);
        throw std::runtime_error(msg);
    }
}

database::~database() {
    by_address_.clear();
    cache_.clear();
    sqlite3_close(db_);
}

statement& database::prepare(const char* literal) {
    if (auto it = by_address_.find(literal); it != by_address_.end()) {
        return *it->second;
    }
    statement& s = prepare(std::string_view(literal));
    by_address_.emplace(literal, &s);
    return s;
}

statement& database::prepare(std::string_view sql) {
    auto it = cache_.find(std::string(sql));
    if (it != cache_.end()) {
        return *it->second;
    }
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                                      nullptr);
    if (rc != SQLITE_OK) {
        // A typo in our own SQL: fail loudly and early.
        throw std::logic_error("cannot prepare \"" + std::string(sql) + "\": " + sqlite3_errmsg(db_));
    }
    auto [pos, inserted] = cache_.emplace(std::string(sql), std::make_unique<statement>(*this, s));
    return *pos->second;
}

void database::exec(std::string_view sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        if (!error_) {
            error_ = std::string(sql.substr(0, 40)) + ": " + (err ? err : "unknown error");
        }
        sqlite3_free(err);
    }
}

void database::record_error(int rc) {
    if (!error_) {
        error_ = std::string(sqlite3_errstr(rc)) + ": " + sqlite3_errmsg(db_);
    }
}

}  // namespace switchyard::gateway::embedded
